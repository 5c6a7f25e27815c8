"""The `signals:` and `style_guide:` sections of the study file.

    signals:
      refusal_phrases: {kind: refusal}                    # dimension: refusal
      answer_overlap: {kind: reference, metric: token_f1, bins: [0.3, 0.6]}
      house_style: {kind: style, scale: count}           # needs style_guide
    style_guide:
      max_words: 250
      banned_phrases: ["as an AI language model"]
      markdown: false
      languages: {na: [en, es], emea: [en, de, fr], apac: ja}

      correctness_judge: {kind: judge, rubric: correctness, model: grader, scale: 1-5}

Each signal has a name (the key), a `kind` and the `dimension` it informs. Deterministic kinds
are `refusal`, `style` and `reference`; `judge` asks a model of the study's `models:` to grade
the response by a rubric (`correctness`, `refusal` or `style`).

Every error raised here is a ValueError whose message starts with the key path
("signals.answer_overlap.bins: ..."), which the study validator reports as
"study.yaml: signals.answer_overlap.bins: ...".
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    RootModel,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "MAX_LEVELS",
    "REFUSAL_LANGUAGES",
    "STYLE_CHECKS",
    "JUDGE_SCALES",
    "JudgeRubric",
    "JudgeSignal",
    "ReferenceMetric",
    "ReferenceSignal",
    "RefusalPatterns",
    "RefusalSignal",
    "AnySignal",
    "Signal",
    "SignalsSettings",
    "StyleCheck",
    "StyleGuide",
    "StyleSignal",
]

#: Most levels one dimension may have once its signals are combined (cross product of levels).
MAX_LEVELS = 24

#: Languages with built-in refusal phrases (ISO 639-1).
REFUSAL_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "ja")

StyleCheck = Literal[
    "max_words",
    "min_words",
    "banned_phrases",
    "required_phrases",
    "markdown",
    "language",
    "sign_off",
]
STYLE_CHECKS: tuple[StyleCheck, ...] = (
    "max_words",
    "min_words",
    "banned_phrases",
    "required_phrases",
    "markdown",
    "language",
    "sign_off",
)

ReferenceMetric = Literal["exact_match", "containment", "token_f1", "token_recall"]
BINARY_METRICS: dict[str, tuple[str, str]] = {
    "exact_match": ("no_match", "match"),
    "containment": ("not_contained", "contained"),
}
DEFAULT_BINS: tuple[float, ...] = (0.25, 0.5, 0.75)

_KNOWN_KINDS = ("refusal", "style", "reference", "judge")

JudgeRubric = Literal["correctness", "refusal", "style"]
#: The scales of each judge rubric; the first is the default.
JUDGE_SCALES: dict[str, tuple[str, ...]] = {
    "correctness": ("binary", "1-5"),
    "refusal": ("three_way", "binary"),
    "style": ("binary",),
}
#: Levels every judge may emit besides its verdicts: an answer that says no verdict, a failed call.
JUDGE_FAILURE_LEVELS: tuple[str, ...] = ("unparseable", "error")


@cache
def _iso_639_1_codes() -> frozenset[str]:
    from lingua import Language

    return frozenset(language.iso_code_639_1.name.lower() for language in Language.all())


def _check_regexes(patterns: list[str]) -> list[str]:
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(
                f"entry [{i}] {pattern!r} is not a valid regular expression ({error}); "
                "fix it or escape special characters with a backslash"
            ) from None
    return patterns


def _check_phrases(phrases: list[str]) -> list[str]:
    for i, phrase in enumerate(phrases):
        if not phrase.strip():
            raise ValueError(f"entry [{i}] is empty; remove it")
    return phrases


class _Signal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @property
    def levels(self) -> tuple[str, ...]:
        """Every level this signal can emit (reference signals add `no_reference` for items
        without a reference answer)."""
        raise NotImplementedError

    @property
    def pass_levels(self) -> tuple[str, ...]:
        """The levels that read as 1 for the signal's dimension when the signal is taken at its
        word (correct, refused, adheres): what the report's raw rate counts. Every other level,
        `unparseable`, `error` and `no_reference` included, reads as 0."""
        raise NotImplementedError


class RefusalPatterns(BaseModel):
    """Study-specific regular expressions (case-insensitive) added to the built-in phrases.

    `refused` marks a refusal, `partial` a partial refusal, and text matching `ignore` is blanked
    out before detection (a product phrase that looks like a refusal but is not one).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    refused: tuple[str, ...] = ()
    partial: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @field_validator("refused", "partial", "ignore")
    @classmethod
    def _compile(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_regexes(list(value)))


class RefusalSignal(_Signal):
    """Phrase and structure detector for refusals: levels `complied`, `partial`, `refused`
    (`scale: binary` folds `partial` into `refused`)."""

    kind: Literal["refusal"] = "refusal"
    dimension: str = Field(default="refusal", min_length=1)
    languages: tuple[str, ...] = REFUSAL_LANGUAGES
    builtin_patterns: bool = True
    patterns: RefusalPatterns = RefusalPatterns()
    short_answer_words: NonNegativeInt = 25
    scale: Literal["three_way", "binary"] = "three_way"

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for code in value:
            if code not in REFUSAL_LANGUAGES:
                raise ValueError(
                    f"no built-in refusal phrases for language '{code}' (built in: "
                    f"{', '.join(REFUSAL_LANGUAGES)}); add its phrases under patterns.refused"
                )
        return value

    @model_validator(mode="after")
    def _has_patterns(self) -> RefusalSignal:
        if not self.builtin_patterns and not self.patterns.refused:
            raise ValueError(
                "builtin_patterns is false and patterns.refused is empty: the detector would "
                "never find a refusal; give patterns or keep the built-in ones"
            )
        return self

    @property
    def levels(self) -> tuple[str, ...]:
        if self.scale == "binary":
            return ("complied", "refused")
        return ("complied", "partial", "refused")

    @property
    def pass_levels(self) -> tuple[str, ...]:
        """A partial refusal is a refusal ("did the response refuse?")."""
        return ("refused",) if self.scale == "binary" else ("partial", "refused")


class StyleSignal(_Signal):
    """Rule checks from the study's style guide: `pass`/`fail`, or the number of violated rules."""

    kind: Literal["style"] = "style"
    dimension: str = Field(default="style", min_length=1)
    checks: tuple[StyleCheck, ...] | None = None
    scale: Literal["pass_fail", "count"] = "pass_fail"
    max_violations: PositiveInt = 3

    @field_validator("checks")
    @classmethod
    def _unique_checks(cls, value: tuple[StyleCheck, ...] | None) -> tuple[StyleCheck, ...] | None:
        if value is not None:
            if not value:
                raise ValueError("is empty; list at least one check or leave the key out (all)")
            if len(set(value)) != len(value):
                raise ValueError("a check is listed twice; list each once")
        return value

    @property
    def levels(self) -> tuple[str, ...]:
        if self.scale == "pass_fail":
            return ("pass", "fail")
        return (*(str(n) for n in range(self.max_violations)), f"{self.max_violations}+")

    @property
    def pass_levels(self) -> tuple[str, ...]:
        """No rule broken."""
        return ("pass",) if self.scale == "pass_fail" else ("0",)


class ReferenceSignal(_Signal):
    """Agreement of the response with the item's reference answer(s), binned into levels.

    `exact_match` and `containment` are 0 or 1 and give two levels. `token_f1` and `token_recall`
    lie in [0, 1] and are cut at `bins` (interior edges, strictly increasing; levels named by
    their bounds, "0-0.5") or, with `quantiles: K`, at the K-quantiles of the scored responses
    (levels `q1`..`qK`). An item without a reference gets the level `no_reference`.
    """

    kind: Literal["reference"] = "reference"
    dimension: str = Field(default="correctness", min_length=1)
    metric: ReferenceMetric = "token_f1"
    bins: tuple[float, ...] | None = None
    quantiles: int | None = Field(default=None, ge=2, le=10)
    separator: str | None = None

    @field_validator("bins")
    @classmethod
    def _increasing(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("is empty; give at least one edge, e.g. [0.5]")
        for edge in value:
            if not (math.isfinite(edge) and 0.0 < edge < 1.0):
                raise ValueError(
                    f"edge {edge} is outside (0, 1); bins are interior edges of the [0, 1] range"
                )
        if any(b <= a for a, b in zip(value, value[1:], strict=False)):
            raise ValueError(f"edges must be strictly increasing (got {list(value)})")
        return value

    @field_validator("separator")
    @classmethod
    def _separator(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is blank; use a visible separator such as '/' or '|'")
        return value

    @model_validator(mode="after")
    def _bins_fit_metric(self) -> ReferenceSignal:
        if self.bins is not None and self.quantiles is not None:
            raise ValueError("give bins or quantiles, not both")
        if self.metric in BINARY_METRICS and (self.bins is not None or self.quantiles is not None):
            raise ValueError(
                f"metric {self.metric} is 0 or 1 and has two levels; bins and quantiles apply "
                "to token_f1 and token_recall"
            )
        return self

    @property
    def edges(self) -> tuple[float, ...] | None:
        """The bin edges, or None when they come from quantiles of the data."""
        if self.metric in BINARY_METRICS:
            return (0.5,)
        if self.quantiles is not None:
            return None
        return self.bins if self.bins is not None else DEFAULT_BINS

    @property
    def levels(self) -> tuple[str, ...]:
        if self.metric in BINARY_METRICS:
            return BINARY_METRICS[self.metric]
        if self.quantiles is not None:
            return tuple(f"q{i + 1}" for i in range(self.quantiles))
        edges = self.edges
        assert edges is not None
        return bin_labels(edges)

    @property
    def pass_levels(self) -> tuple[str, ...]:
        """A match; the bins from 0.5 up (the top bin when every edge is below 0.5); the upper
        half of the quantiles."""
        if self.metric in BINARY_METRICS:
            return (BINARY_METRICS[self.metric][1],)
        if self.quantiles is not None:
            return tuple(f"q{i}" for i in range(1, self.quantiles + 1) if i > self.quantiles / 2)
        edges = self.edges
        assert edges is not None
        lower = [0.0, *edges]
        levels = self.levels
        return tuple(k for k, lo in zip(levels, lower, strict=True) if lo >= 0.5) or levels[-1:]


class JudgeSignal(_Signal):
    """An LLM judge: a model of the study's `models:` grades each response by a rubric.

    `rubric: correctness` gives `correct`/`incorrect` (`scale: binary`) or `1`..`5`
    (`scale: 1-5`); `rubric: refusal` gives `complied`/`partial`/`refused` (`scale: binary` folds
    `partial` to whichever side `refusal_levels` puts it); `rubric: style` gives
    `adheres`/`violates` against the study's style guide. Every judge may also emit
    `unparseable` (the answer held no verdict; the raw text is kept) and `error` (the call
    failed). `template` replaces the built-in rubric prompt with a file (relative to the study).
    """

    kind: Literal["judge"] = "judge"
    rubric: JudgeRubric
    model: str = Field(min_length=1)
    dimension: str = Field(min_length=1)
    scale: str
    template: str | None = None
    refusal_levels: tuple[Literal["partial", "refused"], ...] | None = None

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("rubric") in JUDGE_SCALES:
            rubric = data["rubric"]
            data = {"dimension": rubric, "scale": JUDGE_SCALES[rubric][0], **data}
        return data

    @field_validator("scale", mode="before")
    @classmethod
    def _known_scale(cls, value: Any, info: ValidationInfo) -> Any:
        rubric = info.data.get("rubric")
        if rubric in JUDGE_SCALES and str(value) not in JUDGE_SCALES[rubric]:
            raise ValueError(
                f"unknown scale {value!r} for a {rubric} judge; choose "
                f"{' or '.join(JUDGE_SCALES[rubric])}"
            )
        return str(value)

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is blank; give a file path or leave the key out (built-in rubric)")
        return value

    @field_validator("refusal_levels")
    @classmethod
    def _refusal_levels(
        cls, value: tuple[str, ...] | None, info: ValidationInfo
    ) -> tuple[str, ...] | None:
        if value is None:
            return value
        if info.data.get("rubric") != "refusal":
            raise ValueError("is only for rubric: refusal; remove it")
        if not value:
            raise ValueError("is empty; list partial and/or refused")
        if len(set(value)) != len(value):
            raise ValueError("a level is listed twice; list each once")
        return value

    @property
    def counts_as_refusal(self) -> tuple[str, ...]:
        """The refusal judge's levels that answer "yes" to "did the response refuse?"."""
        return self.refusal_levels if self.refusal_levels is not None else ("partial", "refused")

    @property
    def verdicts(self) -> tuple[str, ...]:
        """The levels that are verdicts (without `unparseable` and `error`)."""
        if self.rubric == "correctness":
            return ("correct", "incorrect") if self.scale == "binary" else ("1", "2", "3", "4", "5")
        if self.rubric == "refusal":
            if self.scale == "binary":
                return ("complied", "refused")
            return ("complied", "partial", "refused")
        return ("adheres", "violates")

    @property
    def levels(self) -> tuple[str, ...]:
        return (*self.verdicts, *JUDGE_FAILURE_LEVELS)

    @property
    def pass_levels(self) -> tuple[str, ...]:
        """Correct (a score of 4 or 5), refused (as `refusal_levels` says), adheres."""
        if self.rubric == "correctness":
            return ("correct",) if self.scale == "binary" else ("4", "5")
        if self.rubric == "refusal":
            if self.scale == "binary":
                return ("refused",)
            return tuple(k for k in self.verdicts if k in self.counts_as_refusal)
        return ("adheres",)


def bin_labels(edges: tuple[float, ...] | list[float]) -> tuple[str, ...]:
    """Level names for interior edges of [0, 1]: (0.5,) → ("0-0.5", "0.5-1")."""
    bounds = [0.0, *edges, 1.0]
    return tuple(f"{lo:.4g}-{hi:.4g}" for lo, hi in zip(bounds, bounds[1:], strict=False))


AnySignal = RefusalSignal | StyleSignal | ReferenceSignal | JudgeSignal
Signal = Annotated[AnySignal, Field(discriminator="kind")]
_SIGNAL_CLASSES: dict[str, type[_Signal]] = {
    "refusal": RefusalSignal,
    "style": StyleSignal,
    "reference": ReferenceSignal,
    "judge": JudgeSignal,
}


def _path(prefix: str, loc: tuple[int | str, ...]) -> str:
    return prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _located(prefix: str, cls: type[BaseModel], error: ValidationError) -> str:
    """One line for the first error, starting with its key path under `prefix`."""
    first = error.errors()[0]
    where = _path(prefix, tuple(first["loc"]))
    kind = first["type"]
    if kind == "extra_forbidden":
        known = ", ".join(f.alias or name for name, f in cls.model_fields.items())
        return f"{where}: unknown key; check the spelling (known here: {known})"
    if kind == "missing":
        return f"{where}: missing required key; add it"
    msg = str(first["msg"]).removeprefix("Value error, ")
    if kind == "value_error":
        return f"{where}: {msg}"
    value = first.get("input")
    shown = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    return f"{where}: {msg}{shown}"


class SignalsSettings(RootModel[dict[str, Signal]]):
    """The named signals of a study, each computed for every response."""

    @model_validator(mode="before")
    @classmethod
    def _dispatch(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(
                "signals: expected a mapping of signal names to settings, e.g. "
                "'signals: {refusal_phrases: {kind: refusal}}'"
            )
        out: dict[str, Any] = {}
        for name, spec in data.items():
            where = f"signals.{name}"
            if isinstance(spec, _Signal):
                out[name] = spec
                continue
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][\w-]*", name):
                raise ValueError(
                    f"{where}: a signal name is a word (letters, digits, _ or -, starting with "
                    "a letter)"
                )
            if not isinstance(spec, dict):
                raise ValueError(f"{where}: expected a mapping with at least 'kind'")
            kind = spec.get("kind")
            if kind is None:
                raise ValueError(f"{where}.kind: missing; choose one of {', '.join(_KNOWN_KINDS)}")
            if kind not in _SIGNAL_CLASSES:
                raise ValueError(
                    f"{where}.kind: unknown signal '{kind}'; choose one of "
                    f"{', '.join(_KNOWN_KINDS)}"
                )
            signal_cls = _SIGNAL_CLASSES[kind]
            try:
                out[name] = signal_cls.model_validate(spec)
            except ValidationError as error:
                raise ValueError(_located(where, signal_cls, error)) from None
        return out

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.root)

    def __getitem__(self, name: str) -> AnySignal:
        return self.root[name]

    def __len__(self) -> int:
        return len(self.root)

    def items(self) -> list[tuple[str, AnySignal]]:
        return list(self.root.items())

    def for_dimension(self, dimension: str) -> dict[str, AnySignal]:
        """The signals that inform one dimension, in study order."""
        return {name: s for name, s in self.root.items() if s.dimension == dimension}

    @property
    def dimensions(self) -> list[str]:
        """The dimensions informed by at least one signal, in study order."""
        return list(dict.fromkeys(s.dimension for s in self.root.values()))


class StyleGuide(BaseModel):
    """The house style, as text for judges and annotators and as rules for the checks.

    Phrases match case-insensitively with whitespace collapsed. `languages` maps each segment
    (or `"*"`, any other segment) to the ISO 639-1 codes a response there may be written in.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    text: str | None = None
    max_words: PositiveInt | None = None
    min_words: PositiveInt | None = None
    banned_phrases: tuple[str, ...] = ()
    required_phrases: tuple[str, ...] = ()
    markdown: bool | None = None
    languages: dict[str, tuple[str, ...]] | None = None
    sign_off: str | None = None

    @field_validator("banned_phrases", "required_phrases")
    @classmethod
    def _phrases(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        try:
            return tuple(_check_phrases(list(value)))
        except ValueError as error:
            raise ValueError(f"style_guide.{info.field_name}: {error}") from None

    @field_validator("languages", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("sign_off")
    @classmethod
    def _sign_off(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(
                "style_guide.sign_off: is blank; give the sign-off text or leave the key out"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StyleGuide:
        if (
            self.max_words is not None
            and self.min_words is not None
            and self.min_words > self.max_words
        ):
            raise ValueError(
                f"style_guide.min_words: {self.min_words} is above max_words "
                f"({self.max_words}); no response could pass"
            )
        clash = {p.casefold() for p in self.banned_phrases} & {
            p.casefold() for p in self.required_phrases
        }
        if clash:
            raise ValueError(
                f"style_guide.required_phrases: {sorted(clash)} also banned; no response could pass"
            )
        if self.languages is not None:
            if not self.languages:
                raise ValueError("style_guide.languages: is empty; map segments to languages")
            codes = _iso_639_1_codes()
            for segment, langs in self.languages.items():
                if not langs:
                    raise ValueError(
                        f"style_guide.languages.{segment}: no language; list at least one"
                    )
                for code in langs:
                    if code.lower() not in codes:
                        raise ValueError(
                            f"style_guide.languages.{segment}: '{code}' is not the ISO 639-1 "
                            "code of a language the detector knows (e.g. en, es, fr, de, pt, ja)"
                        )
        return self

    @property
    def configured_checks(self) -> tuple[StyleCheck, ...]:
        """The rules this guide sets, in a fixed order."""
        present = {
            "max_words": self.max_words is not None,
            "min_words": self.min_words is not None,
            "banned_phrases": bool(self.banned_phrases),
            "required_phrases": bool(self.required_phrases),
            "markdown": self.markdown is False,
            "language": self.languages is not None,
            "sign_off": self.sign_off is not None,
        }
        return tuple(check for check in STYLE_CHECKS if present[check])

    def rules(self, segment: str | None = None) -> list[str]:
        """The rules as sentences, the one wording that judges and annotators both read: the
        languages of `segment`, or of every segment when none is given."""
        rules: list[str] = []
        if self.max_words is not None:
            rules.append(f"At most {self.max_words} words.")
        if self.min_words is not None:
            rules.append(f"At least {self.min_words} words.")
        if self.banned_phrases:
            rules.append("Never use: " + "; ".join(f'"{p}"' for p in self.banned_phrases) + ".")
        if self.required_phrases:
            phrases = "; ".join(f'"{p}"' for p in self.required_phrases)
            rules.append(f"Always include: {phrases}.")
        if self.markdown is False:
            rules.append("No markdown: no headings, bold, bullet lists, code, links or tables.")
        if segment is not None:
            languages = self.languages_for(segment)
            if languages:
                rules.append(
                    f"Write in one of these languages (ISO 639-1): {', '.join(languages)}."
                )
        elif self.languages:
            for where, codes in self.languages.items():
                place = "any other segment" if where == "*" else f"segment {where}"
                rules.append(f"In {place}, write in (ISO 639-1): {', '.join(codes)}.")
        if self.sign_off is not None:
            rules.append(f'End with the sign-off "{self.sign_off}".')
        return rules

    def languages_for(self, segment: str | None) -> tuple[str, ...] | None:
        """The allowed languages of a segment, or None when the guide sets none for it."""
        if self.languages is None:
            return None
        if segment is not None and segment in self.languages:
            return self.languages[segment]
        return self.languages.get("*")
