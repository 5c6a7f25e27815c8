"""The study file: which models, which segments and how much traffic each carries, which gates.

A study is written in YAML and validated here, at the boundary, so that everything downstream can
trust it. Unknown keys are errors (a typo in a gate must not silently disable it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from changeover.errors import StudyError
from changeover.providers.settings import ModelSettings
from changeover.signals.settings import SignalsSettings, StyleGuide, check_signals

__all__ = ["Decision", "Gate", "Study", "load_study", "parse_study"]

Scope = Literal["overall", "segments", "both"]
Better = Literal["higher", "lower"]


class Decision(BaseModel):
    """Study-wide decision settings."""

    model_config = ConfigDict(extra="forbid")

    probability: float = Field(default=0.95, gt=0.5, lt=1.0)


class Gate(BaseModel):
    """A non-inferiority condition a candidate must meet against the incumbent.

    `margin` is absolute, in rate units: `better: higher` holds when
    rate(candidate) - rate(incumbent) > -margin, `better: lower` when it is < margin.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    dimension: str = Field(min_length=1)
    group: str | None = None
    better: Better
    margin: float = Field(ge=0.0, le=1.0)
    probability: float | None = Field(default=None, gt=0.5, lt=1.0)
    scope: Scope = "overall"
    segment_margin: float | None = Field(default=None, ge=0.0, le=1.0)

    @property
    def group_key(self) -> str:
        """The group as it appears in results: the group name, or "all"."""
        return self.group or "all"

    @property
    def margin_for_segments(self) -> float:
        return self.margin if self.segment_margin is None else self.segment_margin


class Study(BaseModel):
    """A validated study file."""

    model_config = ConfigDict(extra="forbid")

    incumbent: str = Field(min_length=1)
    candidates: list[str] = Field(min_length=1)
    segments: dict[str, float] = Field(min_length=1)
    dimensions: list[str] | None = None
    decision: Decision = Field(default_factory=Decision)
    gates: list[Gate] = Field(default_factory=list)
    workspace: str = "changeover.db"
    models: dict[str, ModelSettings] | None = None
    signals: SignalsSettings | None = None
    style_guide: StyleGuide | None = None

    path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _check_consistency(self) -> Study:
        if self.incumbent in self.candidates:
            raise ValueError(
                f"candidates: the incumbent '{self.incumbent}' is also listed as a candidate; "
                "remove it from candidates"
            )
        if len(set(self.candidates)) != len(self.candidates):
            raise ValueError("candidates: a candidate is listed twice; list each model once")
        for name, weight in self.segments.items():
            if not weight > 0:
                raise ValueError(
                    f"segments.{name}: traffic weight must be > 0 (got {weight}); "
                    "drop the segment or give it its share of traffic"
                )
        seen: set[str] = set()
        for i, gate in enumerate(self.gates):
            if gate.name in seen:
                raise ValueError(
                    f"gates[{i}].name: '{gate.name}' is used twice; gate names must be unique"
                )
            seen.add(gate.name)
            if self.dimensions is not None and gate.dimension not in self.dimensions:
                raise ValueError(
                    f"gates[{i}].dimension: '{gate.dimension}' is not among dimensions "
                    f"{self.dimensions}; add it there or fix the gate"
                )
        if self.models is not None:
            for model in self.model_names:
                if model not in self.models:
                    raise ValueError(
                        f"models: '{model}' is named as incumbent or candidate but has no entry "
                        f"under models; add one (known: {sorted(self.models)})"
                    )
        check_signals(self)
        return self

    @property
    def model_names(self) -> list[str]:
        """The incumbent first, then the candidates in study order."""
        return [self.incumbent, *self.candidates]

    @property
    def segment_names(self) -> list[str]:
        return list(self.segments)

    @property
    def weights(self) -> dict[str, float]:
        """Traffic weights normalised to sum to one."""
        total = sum(self.segments.values())
        return {s: w / total for s, w in self.segments.items()}

    def gate_probability(self, gate: Gate) -> float:
        return self.decision.probability if gate.probability is None else gate.probability

    @property
    def workspace_path(self) -> Path:
        """The workspace file, relative to the study file's folder."""
        return self.resolve(self.workspace)

    def resolve(self, relative: str) -> Path:
        """A path from the study file, taken relative to the study file's folder."""
        base = self.path.parent if self.path is not None else Path.cwd()
        return base / relative


def _format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _format_error(source: str, error: ValidationError) -> str:
    first = error.errors()[0]
    loc = _format_location(tuple(first["loc"]))
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"{source}: unknown key '{loc}'; check the spelling (the README lists every key)"
    if kind == "missing":
        return f"{source}: missing required key '{loc}'; add it"
    msg = first["msg"].removeprefix("Value error, ")
    if kind == "value_error":
        # Our own validators name the key themselves.
        return f"{source}: {msg}"
    value = first.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    return f"{source}: {loc}: {msg}{shown}"


def parse_study(data: Any, *, source: str = "study", path: Path | None = None) -> Study:
    """Validate a study given as a mapping (already parsed YAML)."""
    if not isinstance(data, dict):
        raise StudyError(
            f"{source}: expected a mapping of keys (incumbent, candidates, ...) at the top"
        )
    try:
        study = Study.model_validate(data)
    except ValidationError as error:
        raise StudyError(_format_error(source, error)) from None
    study.path = path
    return study


def load_study(path: str | Path) -> Study:
    """Read and validate a study file."""
    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path}: study file not found; pass --study or run in the study's folder")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise StudyError(f"{path}:{where}: {problem}; fix the YAML syntax") from None
    return parse_study(data, source=str(path), path=path.resolve())
