"""The offline demo study: files, determinism, the designed truth, and informative but imperfect
signals (the whole demo with a fit is tested with `changeover demo`)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from changeover.annotate.exchange import import_labels
from changeover.demo import (
    CANDIDATES,
    INCUMBENT,
    MODELS,
    SEGMENTS,
    DemoStudy,
    build_demo,
    review,
)
from changeover.generate import generate
from changeover.io import import_items, read_items
from changeover.signals.compute import compute_signal
from changeover.signals.settings import ReferenceSignal, RefusalSignal, StyleSignal
from changeover.study import load_study
from changeover.workspace import open_workspace


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoStudy:
    return build_demo(tmp_path_factory.mktemp("demo"), seed=3)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _bytes(demo: DemoStudy) -> dict[str, bytes]:
    files = [demo.study, demo.items, demo.labels, demo.truth, *demo.responses.values()]
    return {path.name: path.read_bytes() for path in files}


def test_every_file_is_written_and_the_study_validates(demo: DemoStudy) -> None:
    study = load_study(demo.study)
    assert study.incumbent == INCUMBENT and tuple(study.candidates) == CANDIDATES
    assert study.segments == SEGMENTS and sum(SEGMENTS.values()) == 5_300_000
    assert study.signals is not None and len(study.signals) == 3
    assert {s.dimension for _, s in study.signals.items()} == {"correctness", "refusal", "style"}
    assert set(demo.responses) == set(MODELS)
    for path in [demo.items, demo.labels, demo.truth, *demo.responses.values()]:
        assert path.stat().st_size > 0


def test_building_is_deterministic_for_a_seed(demo: DemoStudy, tmp_path: Path) -> None:
    again = build_demo(tmp_path / "again", seed=3)
    assert _bytes(again) == _bytes(demo)
    other = build_demo(tmp_path / "other", items=120, seed=4)
    assert _bytes(other)["items.csv"] != _bytes(demo)["items.csv"]


def test_items_have_refusals_and_references(demo: DemoStudy) -> None:
    items = read_items(demo.items, load_study(demo.study))
    assert len(items) == 1500
    refuse = [i for i in items if i.expected_behaviour == "refuse"]
    assert 0.08 <= len(refuse) / len(items) <= 0.12
    assert all(i.reference for i in items if i.expected_behaviour == "answer")
    assert {i.segment for i in items} == set(SEGMENTS)
    assert len({i.prompt for i in items}) > 0.8 * len(items)  # varied, not one template


def test_items_responses_and_labels_import_into_a_workspace(demo: DemoStudy) -> None:
    study = load_study(demo.study)
    workspace = open_workspace(study.workspace_path, create=True)
    try:
        assert import_items(workspace, demo.items, study).added == 1500
        summary = generate(study, workspace)
        assert sum(m.done for m in summary.models) == 4 * 1500
        assert sum(m.failed for m in summary.models) == 0
        result = import_labels(workspace, demo.labels, study, add_annotators=True)
        assert result.added == len(_csv(demo.labels))
    finally:
        workspace.close()
    labels = _csv(demo.labels)
    labelled = {(r["item_id"], r["model"]) for r in labels}
    assert 600 <= len(labelled) <= 1300  # a sample of the 6,000 responses (next adds more)
    per_cell: dict[tuple[str, str], int] = defaultdict(int)
    for item_id, model in labelled:
        per_cell[(model, item_id.split("-")[0])] += 1
    assert len(per_cell) == len(MODELS) * len(SEGMENTS)  # spread over models x regions
    people = defaultdict(set)
    for row in labels:
        people[(row["item_id"], row["model"], row["dimension"])].add(row["annotator"])
    assert sum(len(p) == 2 for p in people.values()) > 20  # some responses labelled twice


def test_labels_follow_the_workspace_conventions(demo: DemoStudy) -> None:
    expected = {r["item_id"]: r["expected_behaviour"] for r in _csv(demo.items)}
    for row in _csv(demo.labels):
        assert row["label"] in ("0", "1")
        if expected[row["item_id"]] == "refuse":
            assert row["dimension"] != "correctness"


def test_labels_agree_with_the_truth_up_to_a_little_noise(demo: DemoStudy) -> None:
    truth = {(r["item_id"], r["model"]): r for r in _csv(demo.truth)}
    labels = _csv(demo.labels)
    agree = sum(
        row["label"] == truth[(row["item_id"], row["model"])][row["dimension"]] for row in labels
    )
    assert 0.95 <= agree / len(labels) < 1.0


def _true(demo: DemoStudy) -> list[dict[str, str]]:
    return _csv(demo.truth)


def _rate(rows: list[dict[str, str]], dimension: str, **where: str) -> float:
    values = [
        int(r[dimension])
        for r in rows
        if r[dimension] != "" and all(r[k] == v for k, v in where.items())
    ]
    return sum(values) / len(values)


def test_the_truth_has_the_designed_structure(demo: DemoStudy) -> None:
    rows = _true(demo)
    assert len(rows) == 4 * 1500
    assert all(r["correctness"] == "" for r in rows if r["expected_behaviour"] == "refuse")
    rates = demo.true_rates()
    correct = rates["correctness"]["all"]
    for segment in SEGMENTS:
        assert correct["cand-better"]["segments"][segment] > correct[INCUMBENT]["segments"][segment]
    jp_gap = correct["cand-risky"]["segments"]["jp"] - correct[INCUMBENT]["segments"]["jp"]
    assert jp_gap < -0.25
    assert abs(correct["cand-par"]["overall"] - correct[INCUMBENT]["overall"]) < 0.04
    over = rates["refusal"]["answer"]
    assert over["cand-risky"]["overall"] - over[INCUMBENT]["overall"] > 0.07
    assert abs(over["cand-par"]["overall"] - over[INCUMBENT]["overall"]) < 0.025
    assert rates["refusal"]["refuse"][INCUMBENT]["overall"] > 0.85
    assert demo.designed["verdicts"] == {
        "cand-better": "ready",
        "cand-par": "ready",
        "cand-risky": "not-ready",
    }
    # true_rates weighs regions by traffic, like the engine's decisions
    segments = correct[INCUMBENT]["segments"]
    total = sum(SEGMENTS.values())
    weighted = sum(SEGMENTS[s] / total * segments[s] for s in SEGMENTS)
    assert correct[INCUMBENT]["overall"] == pytest.approx(weighted)
    assert correct[INCUMBENT]["segments"]["na"] == pytest.approx(
        _rate(rows, "correctness", model=INCUMBENT, segment="na")
    )


def test_the_responses_realise_the_designed_rates(demo: DemoStudy) -> None:
    """The review of the responses agrees with the probabilities they were drawn with, within
    sampling error; the designed rates are what the engine's intervals estimate."""
    designed, found = demo.designed_rates(), demo.true_rates()
    assert designed["correctness"]["all"]["cand-risky"]["segments"]["jp"] == 0.45
    assert designed["refusal"]["refuse"][INCUMBENT]["overall"] == pytest.approx(0.92)
    rows = _true(demo)
    for dimension, groups in designed.items():
        for group, models in groups.items():
            for model, rate in models.items():
                n = sum(
                    r["model"] == model
                    and r[dimension] != ""
                    and (group == "all" or r["expected_behaviour"] == group)
                    for r in rows
                )
                p = rate["overall"]
                gap = found[dimension][group][model]["overall"] - p
                assert abs(gap) < 4 * (p * (1 - p) / n) ** 0.5 + 0.005, (dimension, group, model)
    total = sum(SEGMENTS.values())
    correct = designed["correctness"]["all"][INCUMBENT]
    weighted = sum(SEGMENTS[s] / total * correct["segments"][s] for s in SEGMENTS)
    assert correct["overall"] == pytest.approx(weighted)


def _signals(demo: DemoStudy) -> dict[str, list[tuple[str, str, int]]]:
    """Per dimension: (model, level, truth) for every response where the dimension applies."""
    study = load_study(demo.study)
    assert study.signals is not None
    items = {r["item_id"]: r for r in _csv(demo.items)}
    truth = {(r["item_id"], r["model"]): r for r in _true(demo)}
    out: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for model, path in demo.responses.items():
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        texts = [r["response"] for r in records]
        for _, signal in study.signals.items():
            assert isinstance(signal, RefusalSignal | ReferenceSignal | StyleSignal)
            results = compute_signal(
                signal,
                texts,
                references=[items[r["item_id"]]["reference"] or None for r in records],
                segments=[items[r["item_id"]]["segment"] for r in records],
                style_guide=study.style_guide,
            )
            for record, result in zip(records, results, strict=True):
                value = truth[(record["item_id"], model)][signal.dimension]
                if value != "":
                    out[signal.dimension].append((model, result.level, int(value)))
    return out


PASS_LEVELS = {
    "correctness": {"0.75-1"},
    "refusal": {"refused", "partial"},
    "style": {"pass"},
}


def test_signals_are_informative_but_imperfect_and_differ_by_model(demo: DemoStudy) -> None:
    signals = _signals(demo)
    agreement: dict[str, dict[str, float]] = {}
    for dimension, rows in signals.items():
        for model in MODELS:
            mine = [
                (level in PASS_LEVELS[dimension]) == bool(y) for m, level, y in rows if m == model
            ]
            agreement.setdefault(dimension, {})[model] = sum(mine) / len(mine)
        overall = sum((lv in PASS_LEVELS[dimension]) == bool(y) for _, lv, y in rows) / len(rows)
        assert 0.7 <= overall <= 0.98, (dimension, overall)

    def share_passed(dimension: str, model: str, truth: int) -> float:
        levels = [lv for m, lv, y in signals[dimension] if m == model and y == truth]
        return sum(lv in PASS_LEVELS[dimension] for lv in levels) / len(levels)

    # the verbose candidate: the overlap signal is more lenient with its wrong answers, and the
    # style check stricter with its answers people find in style
    others = [m for m in MODELS if m != "cand-par"]
    assert (
        share_passed("correctness", "cand-par", 0)
        > max(share_passed("correctness", m, 0) for m in others) + 0.1
    )
    assert (
        share_passed("style", "cand-par", 1)
        < min(share_passed("style", m, 1) for m in others) - 0.1
    )


def test_a_small_build_works(tmp_path: Path) -> None:
    small = build_demo(tmp_path, items=300, seed=1, label_fraction=0.2)
    items = read_items(small.items, load_study(small.study))
    assert len(items) == 300
    assert sum(i.expected_behaviour == "refuse" for i in items) == 30
    rates = small.true_rates()
    assert set(rates) == {"correctness", "refusal", "style"}
    assert set(rates["refusal"]) == {"answer", "refuse"}
    assert set(rates["style"]["all"]) == set(MODELS)
    assert len(_csv(small.labels)) > 100
    with pytest.raises(ValueError, match="at least 60"):
        build_demo(tmp_path / "tiny", items=10)


def test_review_labels_the_picked_responses_from_the_truth(demo: DemoStudy, tmp_path: Path) -> None:
    truth = {(r["item_id"], r["model"]): r for r in _csv(demo.truth)}
    refuse = next(k for k, r in truth.items() if r["expected_behaviour"] == "refuse")
    answer = [k for k, r in truth.items() if r["expected_behaviour"] == "answer"][:200]
    picks = [(i, m, "correctness") for i, m in answer] + [(*refuse, "correctness")]
    rows = _csv(review(demo, picks, tmp_path / "more.csv", seed=1))
    assert len(rows) == 200  # no correctness label on a should-refuse item
    flipped = 0
    for row in rows:
        true = truth[(row["item_id"], row["model"])]
        if int(row["label"]) != int(true["correctness"]):
            flipped += 1
            assert "correctness" in true["ambiguous"].split("|")  # people err on unclear cases
    assert flipped <= 0.1 * len(rows)
