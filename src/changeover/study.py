"""The study file: which models, which segments and how much traffic each carries, which gates.

A study is written in YAML and validated here, at the boundary, so that everything downstream can
trust it. Unknown keys are errors (a typo in a gate must not silently disable it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    ValidationError,
    model_validator,
)

from changeover.errors import StudyError
from changeover.providers.settings import ModelSettings
from changeover.records import lone_surrogate
from changeover.signals.rubric import load_template
from changeover.signals.settings import (
    MAX_LEVELS,
    JudgeSignal,
    SignalsSettings,
    StyleGuide,
    StyleSignal,
)

__all__ = [
    "MEASURES",
    "Budget",
    "Decision",
    "Gate",
    "Measure",
    "Study",
    "as_measure",
    "dimension_group",
    "feeds_dimension",
    "load_study",
    "parse_study",
]

Scope = Literal["overall", "segments", "both"]
Better = Literal["higher", "lower"]
#: What a model costs and how fast it answers, at the study's traffic mix (docs/engine.md,
#: *Cost and latency*): US dollars per 1,000 interactions, and the median and 95th percentile
#: of the latency in seconds. A gate on one of them is decided from the measured responses, not
#: from labels.
Measure = Literal["cost", "latency_p50", "latency_p95"]
MEASURES: tuple[Measure, ...] = ("cost", "latency_p50", "latency_p95")


def as_measure(dimension: str) -> Measure | None:
    """The cost or latency measure a gate's dimension names, or None for a quality dimension."""
    return next((m for m in MEASURES if m == dimension), None)


def dimension_group(dimension: str, expected_behaviour: str) -> str | None:
    """The group a response joins in `dimension`, or None when it does not inform it.

    DESIGN.md: refusal is judged on every item, grouped by its expected behaviour (the
    over-refusal rate on should-answer items, the refusal rate on should-refuse ones);
    correctness only on should-answer items (a should-refuse item has no answer to be correct
    against); every other dimension (style, ...) on every item, in one group ("").
    """
    if dimension == "refusal":
        return expected_behaviour
    if dimension == "correctness" and expected_behaviour == "refuse":
        return None
    return ""


def feeds_dimension(dimension: str, expected_behaviour: str) -> bool:
    """Whether a response to an item with this expected behaviour informs `dimension` (so that
    it is worth scoring or labelling for it)."""
    return dimension_group(dimension, expected_behaviour) is not None


class Decision(BaseModel):
    """Study-wide decision settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    probability: float = Field(default=0.95, gt=0.5, lt=1.0)


class Budget(BaseModel):
    """The most a study may spend on provider calls, in US dollars: in one run (one `generate`
    or `score`) and in all (the workspace's recorded spend). A run stops before a request that
    could take it past either (docs/generate.md, *Budget*)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    per_run: PositiveFloat | None = None
    per_study: PositiveFloat | None = None

    @model_validator(mode="after")
    def _check_some_limit(self) -> Budget:
        if self.per_run is None and self.per_study is None:
            raise ValueError(
                "budget: set per_run and/or per_study (US dollars), e.g. "
                "budget: {per_run: 5.00, per_study: 50.00}; or remove the section"
            )
        return self


class Gate(BaseModel):
    """A non-inferiority condition a candidate must meet against the incumbent.

    On a quality dimension `margin` is absolute, in rate units: `better: higher` holds when
    rate(candidate) - rate(incumbent) > -margin, `better: lower` when it is < margin.
    On a measure (`cost`, `latency_p50`, `latency_p95`; lower is better) it is in the measure's
    units (US dollars per 1,000 interactions, seconds): candidate - incumbent < margin; with
    `relative: true` a fraction of the incumbent's: candidate / incumbent - 1 < margin.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1)
    dimension: str = Field(min_length=1)
    group: str | None = None
    better: Better
    margin: float = Field(ge=0.0)
    probability: float | None = Field(default=None, gt=0.5, lt=1.0)
    scope: Scope = "overall"
    segment_margin: float | None = Field(default=None, ge=0.0, le=1.0)
    relative: bool = False

    @property
    def group_key(self) -> str:
        """The group as it appears in results: the group name, or "all"."""
        return self.group or "all"

    @property
    def margin_for_segments(self) -> float:
        return self.margin if self.segment_margin is None else self.segment_margin

    @property
    def measure(self) -> Measure | None:
        """The cost or latency measure the gate is on, or None for a quality dimension."""
        return as_measure(self.dimension)


class Study(BaseModel):
    """A validated study file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

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
    budget: Budget | None = None

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
        for i, dimension in enumerate(self.dimensions or ()):
            if dimension in MEASURES:
                raise ValueError(
                    f"dimensions[{i}]: '{dimension}' is a measure of cost or latency, not a "
                    "quality dimension; remove it from dimensions (a gate on it needs no entry)"
                )
        seen: set[str] = set()
        for i, gate in enumerate(self.gates):
            if gate.name in seen:
                raise ValueError(
                    f"gates[{i}].name: '{gate.name}' is used twice; gate names must be unique"
                )
            seen.add(gate.name)
            if gate.measure is not None:
                _check_measure_gate(i, gate)
                continue
            _check_quality_gate(i, gate)
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
        _check_signals(self)
        _check_budget(self)
        return self

    @property
    def quality_gates(self) -> list[Gate]:
        """The gates on quality dimensions (decided from labels and signals), in study order."""
        return [gate for gate in self.gates if gate.measure is None]

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


def _check_measure_gate(i: int, gate: Gate) -> None:
    """A cost or latency gate: lower is better, decided once at the traffic mix."""
    where = f"gates[{i}]"
    if gate.better != "lower":
        raise ValueError(
            f"{where}.better: a gate on {gate.dimension} keeps it from growing; set better: lower"
        )
    for key, value in (("group", gate.group), ("segment_margin", gate.segment_margin)):
        if value is not None:
            raise ValueError(
                f"{where}.{key}: a gate on {gate.dimension} has no {key} (it is decided once, "
                "at the study's traffic mix); remove it"
            )
    if gate.scope != "overall":
        raise ValueError(
            f"{where}.scope: a gate on {gate.dimension} is decided at the study's traffic mix "
            "(scope: overall); remove scope"
        )


def _check_quality_gate(i: int, gate: Gate) -> None:
    """A quality gate: its margin is in rate units, and it is never relative."""
    if gate.margin > 1:
        raise ValueError(
            f"gates[{i}].margin: a gate on {gate.dimension} has its margin in rate units "
            f"(0 to 1; 0.05 is 5 points); got {gate.margin}"
        )
    if gate.relative:
        raise ValueError(
            f"gates[{i}].relative: only gates on {', '.join(MEASURES)} take a relative margin; "
            "remove relative"
        )


def _check_signals(study: Study) -> None:
    """Cross-checks between signals and the rest of the study; raise ValueError naming the key."""
    guide = study.style_guide
    if guide is not None and guide.languages is not None:
        for segment in guide.languages:
            if segment != "*" and segment not in study.segments:
                raise ValueError(
                    f"style_guide.languages.{segment}: '{segment}' is not a segment of the study "
                    f"(segments: {', '.join(study.segments)}); fix the name or use '*' for all"
                )
        missing = [s for s in study.segments if guide.languages_for(s) is None]
        if missing:
            raise ValueError(
                f"style_guide.languages: no language for segment(s) {', '.join(missing)}; "
                "list them or add a '*' entry for every other segment"
            )
    if study.signals is None:
        return
    for name, signal in study.signals.items():
        where = f"signals.{name}"
        if signal.dimension in MEASURES:
            raise ValueError(
                f"{where}.dimension: '{signal.dimension}' is measured from every response's "
                "tokens and latency, not by a signal; name the quality dimension the signal informs"
            )
        if study.dimensions is not None and signal.dimension not in study.dimensions:
            raise ValueError(
                f"{where}.dimension: '{signal.dimension}' is not among dimensions "
                f"{study.dimensions}; add it there or fix the signal"
            )
        if isinstance(signal, StyleSignal):
            if guide is None:
                raise ValueError(
                    f"{where}: a style signal checks the rules of the style guide, and the study "
                    "has no style_guide section; add one (e.g. style_guide: {max_words: 200})"
                )
            configured = guide.configured_checks
            if not configured:
                raise ValueError(
                    f"{where}: style_guide sets no rule to check (max_words, min_words, "
                    "banned_phrases, required_phrases, markdown: false, languages, sign_off); "
                    "add one"
                )
            for i, check in enumerate(signal.checks or ()):
                if check not in configured:
                    raise ValueError(
                        f"{where}.checks[{i}]: '{check}' is not set in style_guide "
                        f"(set: {', '.join(configured)}); set it or drop the check"
                    )
        if isinstance(signal, JudgeSignal):
            _check_judge(study, where, signal)
    informed = study.signals.dimensions
    for i, gate in enumerate(study.gates):
        if gate.measure is None and study.dimensions is None and gate.dimension not in informed:
            raise ValueError(
                f"gates[{i}].dimension: no signal informs '{gate.dimension}' (the signals inform "
                f"{', '.join(informed)}); fix the gate's dimension, add a signal for it, or list "
                "it under `dimensions:` if its signal is imported"
            )
    for dimension in study.signals.dimensions:
        signals = study.signals.for_dimension(dimension)
        total = math.prod(len(s.levels) for s in signals.values())
        if total > MAX_LEVELS:
            raise ValueError(
                f"signals: dimension '{dimension}' combines {', '.join(signals)} into {total} "
                f"levels (the cross product), more than {MAX_LEVELS}; use fewer bins or signals"
            )


def _check_budget(study: Study) -> None:
    """A budget needs what a request can cost at worst: every called model's prices and a bound
    on its output (`max_tokens`)."""
    if study.budget is None or study.models is None:
        return
    for name, settings in study.models.items():
        if settings.provider == "replay":
            continue
        for key in ("price_input_per_million", "price_output_per_million"):
            if getattr(settings, key) is None:
                raise ValueError(
                    f"models.{name}.{key}: the study has a budget, which needs every model's "
                    "prices (US dollars per million tokens; 0 for a free local model); add it"
                )
        if settings.effective_max_tokens is None:
            raise ValueError(
                f"models.{name}.max_tokens: the study has a budget, and without max_tokens a "
                "request's cost has no upper bound; set max_tokens"
            )


def _check_judge(study: Study, where: str, signal: JudgeSignal) -> None:
    models = study.models
    if models is None:
        raise ValueError(
            f"{where}.model: the study has no models: section; add the judging model "
            f"'{signal.model}' there (see docs/generate.md)"
        )
    if signal.model not in models:
        raise ValueError(
            f"{where}.model: unknown model '{signal.model}'; the study's models are "
            f"{', '.join(models)}"
        )
    if models[signal.model].provider == "replay":
        raise ValueError(
            f"{where}.model: '{signal.model}' replays recorded responses (provider replay) and "
            "cannot judge; name a model served by openai or anthropic"
        )
    if signal.rubric == "style":
        guide = study.style_guide
        if guide is None:
            raise ValueError(
                f"{where}: a style judge grades adherence to the style guide, and the study has "
                "no style_guide section; add one (e.g. style_guide: {text: 'Friendly, brief.'})"
            )
        if not guide.text and not guide.configured_checks:
            raise ValueError(
                f"{where}: style_guide has neither text nor rules for the judge to apply; add "
                "style_guide.text (the house style in prose)"
            )
    if signal.template is not None and Path(signal.template).is_absolute():
        # A relative path is relative to the study file, which validation does not know:
        # `changeover score` checks it before any call.
        try:
            load_template(Path(signal.template))
        except ValueError as error:
            raise ValueError(f"{where}.template: {error}") from None


def _format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _format_error(source: str, error: ValidationError) -> str:
    # An unknown key first: a typo (`provder:`) also makes the key it misspells go missing.
    errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
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


#: Most values a study may hold once its aliases are expanded: a billion-laughs file (aliases of
#: aliases) holds billions, which any later walk over the settings would expand.
MAX_YAML_VALUES = 100_000


class _StudyLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (YAML says a key is unique; PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key '{key}' appears twice (first at line {seen[key]}); keep one",
                    key_node.start_mark,
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many values the node stands for once every alias is expanded (aliases share nodes,
    so each is counted once and its size reused)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[id(node)] = size
    return size


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except IsADirectoryError:
        raise StudyError(f"{path}: is a folder; pass the study file (--study FILE)") from None
    except UnicodeDecodeError as error:
        raise StudyError(
            f"{path}: byte {error.start}: not UTF-8 text; save the study file as UTF-8"
        ) from None
    except OSError as error:
        raise StudyError(f"{path}: cannot read the study file ({error.strerror})") from None
    loader = _StudyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_VALUES:
            raise StudyError(
                f"{path}: the YAML expands to more than {MAX_YAML_VALUES:,} values through its "
                "aliases (*name); write the values out instead of nesting aliases"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise StudyError(f"{path}:{where}: {problem}; fix the YAML") from None
    except RecursionError:
        raise StudyError(f"{path}: the YAML is nested too deeply; flatten it") from None
    finally:
        loader.dispose()


def load_study(path: str | Path) -> Study:
    """Read and validate a study file: UTF-8 YAML, each key once, aliases within reason."""
    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path}: study file not found; pass --study or run in the study's folder")
    data = _read_yaml(path)
    if (where := lone_surrogate(data)) is not None:
        raise StudyError(
            f"{path}: {where}: holds a lone surrogate (an escape such as \\ud800 with no pair), "
            "which is not text; remove it"
        )
    study = parse_study(data, source=str(path), path=path.resolve())
    if study.workspace_path.is_dir():
        raise StudyError(
            f"{path}: workspace: '{study.workspace}' is a folder; name the SQLite file "
            "(e.g. changeover.db)"
        )
    return study
