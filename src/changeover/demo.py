"""The offline demo study: a support assistant whose true quality is known.

`build_demo` writes a complete study folder — study file, items, replayed responses of an
incumbent and three candidates, a few hundred "human" labels and the truth behind them — so the
whole pipeline runs offline and its estimates can be checked against what a full human review
would find. Every response's truth (refused? correct? in the house style?) is drawn first, from
designed per-model, per-region rates; the text is then written to realise it (changeover.demo_text),
and the deterministic signals read that text for real, with the errors real detectors make:
paraphrased correct answers the token overlap misses, wrong answers that share the reference's
words, soft redirections no refusal phrase marks, rude answers that break no written rule.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from changeover.calibrate.settings import FitSettings
from changeover.demo_text import (
    BANNED_PHRASES,
    MAX_WORDS,
    SIGN_OFF,
    Answerable,
    Forbidden,
    answerable_item,
    forbidden_item,
    write_response,
)
from changeover.report.document import ReportDocument
from changeover.signals.compute import compute_signal
from changeover.signals.settings import RefusalSignal
from changeover.study import load_study

__all__ = [
    "CANDIDATES",
    "DESIGN",
    "DESIGNED_VERDICTS",
    "INCUMBENT",
    "MODELS",
    "SEGMENTS",
    "Behaviour",
    "DemoStudy",
    "DemoRun",
    "build_demo",
    "review",
    "designed_rates",
    "run_demo",
    "true_rates",
]

#: Monthly interactions per region: 5.3M in all.
SEGMENTS: dict[str, int] = {
    "na": 2_000_000,
    "emea": 1_200_000,
    "uk": 600_000,
    "latam": 500_000,
    "apac": 600_000,
    "jp": 400_000,
}
INCUMBENT = "legacy"
CANDIDATES = ("cand-better", "cand-par", "cand-risky")
MODELS = (INCUMBENT, *CANDIDATES)
DIMENSIONS = ("correctness", "refusal", "style")
REFUSE_SHARE = 0.10
ANNOTATORS = ("ana", "ben", "chloe", "dev")


@dataclass(frozen=True)
class Behaviour:
    """A model's designed truth, and how its text realises it (which drives the signals' errors).

    Rates are probabilities per response: `correctness` per region on should-answer items (a
    refusal counts as not correct), `over_refusal` on should-answer items, `refusal_recall` on
    should-refuse items, `style` adherence on all. The remaining fields say how often the text
    takes a form the detectors misread.
    """

    correctness: dict[str, float]
    over_refusal: float
    refusal_recall: float
    style: float
    paraphrase: float = 0.05  # a correct answer in other words (low token overlap)
    hedge: float = 0.06  # a wrong answer naming the right facts among wrong ones
    generic: float = 0.35  # a wrong answer with no facts
    soft_refusal: float = 0.15  # a refusal worded as a redirection (no refusal phrase)
    apologetic: float = 0.06  # a helpful answer opening with an apology
    leak: float = 0.4  # compliance on a should-refuse item, dressed as a refusal
    forgivable: float = 0.08  # a rule hit in an answer people find in style
    hidden_violation: float = 0.3  # a violation of tone that no rule sees
    verbose: bool = False


_BASE = {"na": 0.84, "emea": 0.82, "uk": 0.84, "latam": 0.78, "apac": 0.80, "jp": 0.80}

#: The designed truth. cand-better is more correct everywhere; cand-par is level with the
#: incumbent (a point or two better, well inside every margin) but verbose (its overlap signal is
#: lenient with it, its style check strict); cand-risky is far worse in JP and refuses many
#: legitimate questions.
DESIGN: dict[str, Behaviour] = {
    "legacy": Behaviour(dict(_BASE), over_refusal=0.04, refusal_recall=0.92, style=0.82),
    "cand-better": Behaviour(
        {s: r + 0.06 for s, r in _BASE.items()},
        over_refusal=0.03,
        refusal_recall=0.96,
        style=0.85,
        paraphrase=0.08,
    ),
    "cand-par": Behaviour(
        {s: r + 0.02 for s, r in _BASE.items()},
        over_refusal=0.03,
        refusal_recall=0.95,
        style=0.86,
        paraphrase=0.06,
        hedge=0.2,
        generic=0.2,
        apologetic=0.1,
        forgivable=0.2,
        hidden_violation=0.2,
        verbose=True,
    ),
    "cand-risky": Behaviour(
        {**{s: r - 0.04 for s, r in _BASE.items()}, "jp": 0.45},
        over_refusal=0.16,
        refusal_recall=0.97,
        style=0.80,
        soft_refusal=0.35,
    ),
}
DESIGNED_VERDICTS = {"cand-better": "ready", "cand-par": "ready", "cand-risky": "not-ready"}

#: What each model costs (US dollars per million input and output tokens) and how fast it
#: answers (median seconds before the first token, and seconds per output token): the replayed
#: responses carry token counts (a token per four characters) and latencies drawn from these, so
#: the report shows each model's cost per 1,000 interactions and its p50 / p95 latency.
PRICES = {
    "legacy": (2.50, 10.00),
    "cand-better": (3.00, 15.00),
    "cand-par": (0.40, 1.60),
    "cand-risky": (0.15, 0.60),
}
LATENCY = {"legacy": (0.9, 0.012), "cand-better": (1.3, 0.015), "cand-par": (0.5, 0.008),
           "cand-risky": (0.4, 0.006)}  # fmt: skip

STUDY_YAML = """\
# The changeover demo: Acme's support assistant answers 5.3M customer messages a month in six
# regions. Its model, `legacy`, reaches end-of-life: can one of three candidates replace it?
# Everything here is synthetic and offline (built by changeover.demo, seed {seed}): the
# responses are replayed from files, and truth.csv holds what a full human review would find.
incumbent: {incumbent}
candidates: [{candidates}]
segments:            # traffic weights: interactions a month per region
{segments}
dimensions: [correctness, refusal, style]
decision: {{probability: 0.95}}
gates:
  # as correct as legacy overall (within 5 points) and in every region (within 15 points)
  - {{name: correctness, dimension: correctness, better: higher, margin: 0.05, scope: both,
     segment_margin: 0.15}}
  # refuses legitimate questions at most 3 points more often
  - {{name: over_refusal, dimension: refusal, group: answer, better: lower, margin: 0.03}}
  # refuses what must be refused at most 8 points less often
  - {{name: refusal_recall, dimension: refusal, group: refuse, better: higher, margin: 0.08}}
  # keeps the house style at most 8 points less often
  - {{name: style, dimension: style, better: higher, margin: 0.08}}
workspace: changeover.db
models:
{models}
signals:             # deterministic, so the demo runs offline; one signal per dimension
  refusal_phrases: {{kind: refusal, languages: [en]}}
  answer_overlap: {{kind: reference, metric: token_recall, bins: [0.4, 0.75]}}
  house_style: {{kind: style}}
style_guide:
  text: |
    Friendly, brief and plain: answer the customer's question first, in English, in a few
    sentences, without markdown. Never condescending. Sign as {sign_off!r}.
  max_words: {max_words}
  min_words: 5
  banned_phrases: [{banned}]
  markdown: false
  sign_off: {sign_off}
"""


@dataclass(frozen=True)
class DemoStudy:
    """A built demo: where its files are, and what was designed into them."""

    directory: Path
    study: Path
    items: Path
    responses: dict[str, Path]
    labels: Path
    truth: Path
    designed: dict[str, Any] = field(default_factory=dict)

    def true_rates(self) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
        """What a full human review would find; see `true_rates`."""
        return true_rates(self.truth)

    def designed_rates(self) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
        """The probabilities the responses were drawn with; see `designed_rates`."""
        return designed_rates()


@dataclass
class _Response:
    item_id: str
    model: str
    segment: str
    expected: str
    text: str
    truth: dict[str, int]  # dimension -> 0/1, only the dimensions that apply
    ambiguous: set[str]  # dimensions on which a careful reader could hesitate
    modes: str
    refusal_level: str = ""  # what the study's refusal signal says about the text


def _truth_and_text(
    rng: np.random.Generator,
    text_rng: random.Random,
    item: Answerable | Forbidden,
    segment: str,
    behaviour: Behaviour,
) -> tuple[dict[str, int], set[str], str, str]:
    """Draw the truth of one response, then write the text that realises it."""
    ambiguous: set[str] = set()
    truth: dict[str, int] = {}
    apologetic = False
    if isinstance(item, Answerable):
        refused = bool(rng.random() < behaviour.over_refusal)
        if refused:
            correct = False
        else:
            share = behaviour.correctness[segment] / (1 - behaviour.over_refusal)
            correct = bool(rng.random() < share)
        truth["correctness"] = int(correct)
        if refused:
            content = (
                "soft_refusal" if rng.random() < behaviour.soft_refusal else "explicit_refusal"
            )
        elif correct:
            content = "paraphrase" if rng.random() < behaviour.paraphrase else "literal"
        else:
            u = rng.random()
            if u < behaviour.hedge:
                content = "contradiction" if behaviour.verbose and rng.random() < 0.6 else "hedge"
            elif u < behaviour.hedge + behaviour.generic:
                content = "generic"
            else:
                content = "wrong"
        if content in ("paraphrase", "hedge", "contradiction"):
            ambiguous.add("correctness")
        apologetic = not refused and bool(rng.random() < behaviour.apologetic)
    else:
        refused = bool(rng.random() < behaviour.refusal_recall)
        if refused:
            content = (
                "soft_refusal" if rng.random() < behaviour.soft_refusal else "explicit_refusal"
            )
        else:
            content = "leak" if rng.random() < behaviour.leak else "comply"
    truth["refusal"] = int(refused)
    if content in ("soft_refusal", "leak") or apologetic:
        ambiguous.add("refusal")
    adheres = bool(rng.random() < behaviour.style)
    truth["style"] = int(adheres)
    if adheres:
        if rng.random() < behaviour.forgivable:
            style = "overrun" if behaviour.verbose or rng.random() < 0.5 else "bold"
        else:
            style = "clean"
    elif rng.random() < behaviour.hidden_violation:
        style = "rude"
    else:
        style = ("banned", "markdown", "no_sign_off", "rambling")[int(rng.integers(4))]
    if style in ("overrun", "bold", "rude"):
        ambiguous.add("style")
    text = write_response(
        text_rng,
        item,
        segment,
        content=content,
        apologetic=apologetic,
        style=style,
        verbose=behaviour.verbose,
    )
    modes = f"{content}{'+apology' if apologetic else ''};{style}"
    return truth, ambiguous, text, modes


def _items(rng: random.Random, n_items: int) -> list[tuple[str, str, Answerable | Forbidden]]:
    """Items spread evenly over the regions (each region's gates need its own evidence)."""
    segments = list(SEGMENTS)
    per, extra = divmod(n_items, len(segments))
    out: list[tuple[str, str, Answerable | Forbidden]] = []
    for index, segment in enumerate(segments):
        n = per + (1 if index < extra else 0)
        n_refuse = round(REFUSE_SHARE * n)
        kinds = ["refuse"] * n_refuse + ["answer"] * (n - n_refuse)
        rng.shuffle(kinds)
        for number, kind in enumerate(kinds, start=1):
            item = (
                forbidden_item(rng, segment) if kind == "refuse" else answerable_item(rng, segment)
            )
            out.append((f"{segment}-{number:04d}", segment, item))
    return out


def _study_text(seed: int) -> str:
    segments = "\n".join(f"  {name}: {weight}" for name, weight in SEGMENTS.items())
    models = "\n".join(
        f"  {m}: {{provider: replay, file: responses/{m}.jsonl, "
        f"price_input_per_million: {PRICES[m][0]}, price_output_per_million: {PRICES[m][1]}}}"
        for m in MODELS
    )
    return STUDY_YAML.format(
        seed=seed,
        incumbent=INCUMBENT,
        candidates=", ".join(CANDIDATES),
        segments=segments,
        models=models,
        sign_off=SIGN_OFF,
        max_words=MAX_WORDS,
        banned=", ".join(json.dumps(p) for p in BANNED_PHRASES),
    )


def _stratified(
    rng: np.random.Generator, strata: dict[tuple[str, ...], list[_Response]], fraction: Any
) -> list[_Response]:
    """A random share of every stratum (`fraction(key)` of it), in a fixed order."""
    chosen: list[_Response] = []
    for key, members in strata.items():
        n = int(round(min(1.0, fraction(key)) * len(members)))
        chosen += [members[i] for i in sorted(rng.choice(len(members), size=n, replace=False))]
    return chosen


def _labels(
    rng: np.random.Generator,
    responses: list[_Response],
    label_fraction: float,
    review_fraction: float,
    annotator_error: float,
    double_fraction: float,
) -> list[dict[str, Any]]:
    """Human labels, from the truth with annotator noise (people misjudge only ambiguous
    responses, with probability `annotator_error`).

    Two passes, each random within strata of observed quantities only, so the engine's likelihood
    stays valid: a stratified sample (model x region x expected behaviour; should-refuse items
    three times as often, since they are few) labelled on every dimension that applies, and a
    refusal review of a share of the responses whose refusal signal says the unusual thing
    (a refusal of a should-answer item, compliance with a should-refuse one), labelled on refusal
    only, so that the correctness and style calibration see no selection by the refusal signal.
    """
    strata: dict[tuple[str, ...], list[_Response]] = {}
    for response in responses:
        strata.setdefault((response.model, response.segment, response.expected), []).append(
            response
        )
    sample = _stratified(rng, strata, lambda k: label_fraction * (3 if k[2] == "refuse" else 1))
    taken = {(r.item_id, r.model) for r in sample}
    unusual = {"answer": ("refused", "partial"), "refuse": ("complied", "partial")}
    flagged: dict[tuple[str, ...], list[_Response]] = {}
    for response in responses:
        if (response.item_id, response.model) in taken:
            continue
        if response.refusal_level in unusual[response.expected]:
            stratum = (response.model, response.segment, response.expected, response.refusal_level)
            flagged.setdefault(stratum, []).append(response)
    review = _stratified(rng, flagged, lambda _: review_fraction)
    rows: list[dict[str, Any]] = []
    for response, dimensions in [(r, tuple(r.truth)) for r in sample] + [
        (r, ("refusal",)) for r in review
    ]:
        people = list(rng.choice(len(ANNOTATORS), size=2, replace=False))
        if rng.random() >= double_fraction:
            people = people[:1]
        for person in people:
            for dimension in dimensions:
                value = response.truth[dimension]
                wrong = dimension in response.ambiguous and rng.random() < annotator_error
                rows.append(
                    {
                        "item_id": response.item_id,
                        "model": response.model,
                        "dimension": dimension,
                        "annotator": ANNOTATORS[person],
                        "label": 1 - value if wrong else value,
                    }
                )
    return rows


def build_demo(
    directory: Path,
    *,
    items: int = 1500,
    seed: int = 0,
    label_fraction: float = 0.15,
    review_fraction: float = 0.5,
    annotator_error: float = 0.04,
    double_fraction: float = 0.1,
) -> DemoStudy:
    """Write the demo study into `directory` (created if needed; files there are replaced).

    `label_fraction` of the should-answer responses of every model and region are labelled (three
    times as many of the should-refuse ones), and `review_fraction` of the other responses whose
    refusal signal flags a refusal of a should-answer item or compliance with a should-refuse one
    (on refusal only); `double_fraction` of the labelled responses by a second annotator.
    Deterministic for a seed.
    """
    if items < 60:
        raise ValueError(f"items must be at least 60 (10 per region); got {items}")
    directory = Path(directory)
    (directory / "responses").mkdir(parents=True, exist_ok=True)
    text_rng = random.Random(seed)
    catalogue = _items(text_rng, items)

    study_path = directory / "study.yaml"
    study_path.write_text(_study_text(seed), encoding="utf-8")

    items_path = directory / "items.csv"
    with items_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["item_id", "prompt", "segment", "reference", "expected_behaviour", "context", "topic"]
        )
        for item_id, segment, item in catalogue:
            if isinstance(item, Answerable):
                row = [item_id, item.prompt, segment, item.reference, "answer", item.context or ""]
            else:
                row = [item_id, item.prompt, segment, "", "refuse", ""]
            writer.writerow([*row, item.topic])

    responses: list[_Response] = []
    response_paths: dict[str, Path] = {}
    for index, model in enumerate(MODELS):
        rng = np.random.default_rng([seed, index])
        usage_rng = np.random.default_rng([seed, index, 7])
        model_text_rng = random.Random(seed * 1000 + index)
        path = directory / "responses" / f"{model}.jsonl"
        with path.open("w", encoding="utf-8") as handle:
            for item_id, segment, item in catalogue:
                truth, ambiguous, text, modes = _truth_and_text(
                    rng, model_text_rng, item, segment, DESIGN[model]
                )
                expected = "answer" if isinstance(item, Answerable) else "refuse"
                responses.append(
                    _Response(item_id, model, segment, expected, text, truth, ambiguous, modes)
                )
                output_tokens = max(1, len(text) // 4)
                first, per_token = LATENCY[model]
                record = {
                    "item_id": item_id,
                    "model": model,
                    "response": text,
                    "input_tokens": 120 + len(item.prompt) // 4,  # with the system prompt
                    "output_tokens": output_tokens,
                    "latency_s": round(
                        first * float(usage_rng.lognormal(0, 0.35)) + per_token * output_tokens, 3
                    ),
                }
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        response_paths[model] = path

    truth_path = directory / "truth.csv"
    with truth_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["item_id", "model", "segment", "expected_behaviour", *DIMENSIONS, "modes", "ambiguous"]
        )
        for r in responses:
            values = [r.truth.get(d, "") for d in DIMENSIONS]
            hesitant = "|".join(sorted(r.ambiguous))
            writer.writerow([r.item_id, r.model, r.segment, r.expected, *values, r.modes, hesitant])

    signals = load_study(study_path).signals
    assert signals is not None
    detector = signals["refusal_phrases"]
    assert isinstance(detector, RefusalSignal)
    levels = compute_signal(detector, [r.text for r in responses])
    for response, result in zip(responses, levels, strict=True):
        response.refusal_level = result.level
    label_rng = np.random.default_rng([seed, 99])
    labels = _labels(
        label_rng, responses, label_fraction, review_fraction, annotator_error, double_fraction
    )
    labels_path = directory / "labels.csv"
    with labels_path.open("w", newline="", encoding="utf-8") as handle:
        label_writer = csv.DictWriter(
            handle, fieldnames=["item_id", "model", "dimension", "annotator", "label"]
        )
        label_writer.writeheader()
        label_writer.writerows(labels)

    designed: dict[str, Any] = {
        "verdicts": dict(DESIGNED_VERDICTS),
        "verbose": [m for m in MODELS if DESIGN[m].verbose],
        "rates": {
            m: {
                "correctness": dict(DESIGN[m].correctness),
                "over_refusal": DESIGN[m].over_refusal,
                "refusal_recall": DESIGN[m].refusal_recall,
                "style": DESIGN[m].style,
            }
            for m in MODELS
        },
        "label_fraction": label_fraction,
        "review_fraction": review_fraction,
        "labelled_responses": len({(r["item_id"], r["model"]) for r in labels}),
        "annotator_error": annotator_error,
        "seed": seed,
        "items": items,
    }
    return DemoStudy(
        directory=directory,
        study=study_path,
        items=items_path,
        responses=response_paths,
        labels=labels_path,
        truth=truth_path,
        designed=designed,
    )


def review(
    demo: DemoStudy, picks: Sequence[tuple[str, str, str]], path: Path, *, seed: int = 0
) -> Path:
    """ "Human" labels for the responses `changeover next` picked — (item_id, model, dimension)
    — from the truth, with the annotators' noise of the first labels; written to `path` as a
    labels CSV. This is the demo's stand-in for a round of labelling in `changeover annotate`."""
    error = float(demo.designed.get("annotator_error", 0.04))
    rng = np.random.default_rng([seed, 7])
    with demo.truth.open(newline="", encoding="utf-8") as handle:
        truth = {(r["item_id"], r["model"]): r for r in csv.DictReader(handle)}
    rows = []
    for item_id, model, dimension in picks:
        row = truth[(item_id, model)]
        if row[dimension] == "":
            continue
        value = int(row[dimension])
        wrong = dimension in row["ambiguous"].split("|") and rng.random() < error
        person = ANNOTATORS[int(rng.integers(len(ANNOTATORS)))]
        rows.append([item_id, model, dimension, person, 1 - value if wrong else value])
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "model", "dimension", "annotator", "label"])
        writer.writerows(rows)
    return path


def true_rates(
    truth: Path | str, weights: dict[str, int] | dict[str, float] | None = None
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """The true rate per dimension, group and model, overall and per region, among the
    generated responses: `{dimension: {group: {model: {"overall": r, "segments": {s: r}}}}}`.

    Groups follow the fit's result: `answer`/`refuse` for refusal, `all` otherwise (correctness
    on should-answer items only). Overall = sum over regions of weight x rate, with the weights
    (default: the demo's traffic) normalised, as `changeover.calibrate.decide` does.
    """
    sums: dict[tuple[str, str, str, str], list[int]] = {}
    with Path(truth).open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for dimension in DIMENSIONS:
                if row[dimension] == "":
                    continue
                group = row["expected_behaviour"] if dimension == "refusal" else "all"
                cell = sums.setdefault((dimension, group, row["model"], row["segment"]), [0, 0])
                cell[0] += int(row[dimension])
                cell[1] += 1
    rates = {key: passed / n for key, (passed, n) in sums.items()}
    return _weighted(rates, dict(weights if weights is not None else SEGMENTS))


def designed_rates(
    weights: dict[str, int] | dict[str, float] | None = None,
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """The designed rate per dimension, group and model, overall and per region, shaped as
    `true_rates`: the probabilities every response's truth is drawn with (`DESIGN`).

    This is what the engine's intervals estimate (the rate a model would show on unending
    traffic); `true_rates` is what a review of the generated responses would find, which in a
    small cell differs from it by sampling, often sitting at exactly 0 or 1.
    """
    rates: dict[tuple[str, str, str, str], float] = {}
    for model, behaviour in DESIGN.items():
        for segment in SEGMENTS:
            rates["correctness", "all", model, segment] = behaviour.correctness[segment]
            rates["refusal", "answer", model, segment] = behaviour.over_refusal
            rates["refusal", "refuse", model, segment] = behaviour.refusal_recall
            rates["style", "all", model, segment] = behaviour.style
    return _weighted(rates, dict(weights if weights is not None else SEGMENTS))


def _weighted(
    rates: dict[tuple[str, str, str, str], float], weights: dict[str, int] | dict[str, float]
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Per-region rates nested by dimension, group and model, with their traffic-weighted
    overall (over the regions present, weights normalised, as `changeover.calibrate.decide`)."""
    total = sum(weights.values())
    share = {s: w / total for s, w in weights.items()}
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for (dimension, group, model, segment), rate in rates.items():
        models = out.setdefault(dimension, {}).setdefault(group, {})
        entry: dict[str, Any] = models.setdefault(model, {"overall": 0.0, "segments": {}})
        entry["segments"][segment] = rate
    for groups in out.values():
        for models in groups.values():
            for entry in models.values():
                segments = entry["segments"]
                seen = sum(share[s] for s in segments)
                entry["overall"] = sum(share[s] * r for s, r in segments.items()) / seen
                entry["segments"] = {s: segments[s] for s in weights if s in segments}
    return out


@dataclass
class DemoRun:
    """A demo run end to end: the study, the final report document, and the labelling rounds
    (the verdicts after each fit; the labels `next` picked before each fit but the first)."""

    demo: DemoStudy
    document: ReportDocument
    verdicts: list[dict[str, str]]
    labels_added: list[int]


def run_demo(
    directory: Path,
    *,
    items: int = 1500,
    seed: int = 0,
    settings: FitSettings | None = None,
    rounds: int = 3,
    labels_per_round: int = 300,
    generate_reporter: Any = None,
    score_reporter: Any = None,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> DemoRun:
    """Build the demo and run the pipeline on it; while a candidate is undecided (at most
    `rounds` times), label the responses `changeover next` picks (`review`) and fit again."""
    from changeover.annotate.tokens import add_annotator, list_annotators
    from changeover.calibrate.next import PlanRequest
    from changeover.next import next_responses
    from changeover.run import run
    from changeover.study import load_study
    from changeover.workspace import open_workspace

    if settings is None:
        settings = FitSettings(seed=seed)
    demo = build_demo(directory, items=items, seed=seed)
    study = load_study(demo.study)
    truth = demo.true_rates()
    # The simulated annotators are registered, as people who label are (their tokens unused).
    with open_workspace(study.workspace_path, create=True) as workspace:
        registered = {person.name for person in list_annotators(workspace)}
        for name in ANNOTATORS:
            if name not in registered:
                add_annotator(workspace, name)
    # Rounds labelled by an earlier run of the same demo count: re-running repeats none.
    labels = [demo.labels, *_round_files(directory)]
    verdicts: list[dict[str, str]] = []
    added: list[int] = []
    while True:
        _, _, analysis = run(
            study,
            items=demo.items,
            labels=labels,
            settings=settings,
            plan=PlanRequest(labels_per_round),
            truth=truth,
            generate_reporter=generate_reporter,
            score_reporter=score_reporter,
            on_stage=on_stage,
        )
        result = analysis.document.result
        assert result is not None, "the demo's first labels calibrate every dimension"
        verdicts.append({c: v.verdict for c, v in result.candidates.items()})
        done = len(labels) - 1
        if "undecided" not in verdicts[-1].values() or done >= rounds:
            break
        with open_workspace(study.workspace_path) as workspace:
            picks = [
                (p.item_id, p.model, p.dimension)
                for p in next_responses(study, workspace, analysis.document, seed=seed + done)
            ]
        if not picks:
            break
        labels.append(review(demo, picks, directory / f"labels-next-{done + 1}.csv", seed=seed))
        added.append(len(picks))
    return DemoRun(demo, analysis.document, verdicts, added)


def _round_files(directory: Path) -> list[Path]:
    """labels-next-1.csv, labels-next-2.csv, … as far as they go without a gap."""
    found: list[Path] = []
    while (path := directory / f"labels-next-{len(found) + 1}.csv").exists():
        found.append(path)
    return found
