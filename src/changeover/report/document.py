"""The report as data: one JSON-able document that the HTML, Markdown and JSON reports render.

Everything a reader needs is computed here, once, from the fit's Result, the counts and the
labels, so the renderers only lay it out and `changeover report --format json` says exactly what
the HTML shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import numpy as np

from changeover.agreement import DimensionAgreement
from changeover.calibrate.blocks import Block
from changeover.calibrate.decide import Result
from changeover.calibrate.next import NextPlan
from changeover.study import Study

__all__ = ["build_document", "judge_flags", "naive_reading", "raw_rates"]

Rates = dict[str, dict[str, dict[str, dict[str, Any]]]]

# Levels that, read at face value, mean "1" for their dimension (correct / refused / adheres).
_FACE_VALUE: dict[str, set[str]] = {
    "correctness": {"correct", "match", "contained", "pass", "yes"},
    "refusal": {"refused", "partial", "yes"},
    "style": {"adheres", "pass", "0", "yes"},
}
_BIN = re.compile(r"(\d*\.?\d+)-(\d*\.?\d+)")
_QUANTILE = re.compile(r"q(\d+)")


def naive_reading(dimension: str, levels: Sequence[str]) -> list[bool] | None:
    """Which levels mean "1" when the signal is taken at its word, or None when it cannot be
    read that way (then the report shows no raw rate for the dimension).

    Named levels follow the signal kinds (docs/signals.md); a 1–5 judge score reads as 1 from 4
    up; a metric bin "a-b" from a >= 0.5; quantile levels q1…qK from the upper half.
    """
    face = _FACE_VALUE.get(dimension, {"pass", "yes", "correct", "adheres", "refused"})
    quantiles = [int(m.group(1)) for k in levels if (m := _QUANTILE.fullmatch(k))]
    out = []
    for level in levels:
        if level in face:
            out.append(True)
        elif level in {"unparseable", "error", "no_reference"}:
            out.append(False)
        elif level.isdigit() and dimension != "style":
            out.append(int(level) >= 4)
        elif (m := _BIN.fullmatch(level)) is not None:
            out.append(float(m.group(1)) >= 0.5)
        elif (m := _QUANTILE.fullmatch(level)) is not None:
            out.append(int(m.group(1)) > max(quantiles) / 2)
        elif level.isdigit() or level.endswith("+"):
            out.append(False)  # style: broken rules
        elif (
            re.fullmatch(r"[a-z_]+", level)
            and any(level == f"{p}_{q}" for p in ("no", "not") for q in face)
            or level in {"incorrect", "complied", "violates", "fail", "no", "no_match"}
        ):
            out.append(False)
        else:
            return None
    return out if any(out) and not all(out) else None


def _overall(per_segment: np.ndarray, block: Block, weights: Mapping[str, float]) -> float:
    w = np.array([weights[s] for s in block.segments])
    return float(per_segment @ (w / w.sum()))


def raw_rates(blocks: Sequence[Block], study: Study) -> Rates:
    """The rate each model would get if the signal were believed at face value, overall
    (traffic-weighted like the calibrated rates) and per segment; None where unreadable."""
    out: Rates = {}
    for block in blocks:
        reading = naive_reading(block.dimension, block.levels)
        per_model: dict[str, dict[str, Any]] = {}
        for m, model in enumerate(block.models):
            if reading is None:
                per_model[model] = {"overall": None, "segments": {}}
                continue
            totals = block.n_all[m].sum(axis=1)
            positive = block.n_all[m][:, np.array(reading)].sum(axis=1)
            rate = np.divide(positive, totals, out=np.full(totals.shape, np.nan), where=totals > 0)
            per_model[model] = {
                "overall": None if np.isnan(rate).any() else _overall(rate, block, study.weights),
                "segments": {
                    s: None if np.isnan(rate[j]) else float(rate[j])
                    for j, s in enumerate(block.segments)
                },
            }
        out.setdefault(block.dimension, {})[block.group_key] = per_model
    return out


def label_counts(blocks: Sequence[Block]) -> dict[str, dict[str, dict[str, dict[str, int]]]]:
    """Human labels per dimension, group, model and segment."""
    out: dict[str, dict[str, dict[str, dict[str, int]]]] = {}
    for block in blocks:
        labelled = block.n_pass + block.n_fail
        out.setdefault(block.dimension, {})[block.group_key] = {
            model: {s: int(labelled[m, j].sum()) for j, s in enumerate(block.segments)}
            for m, model in enumerate(block.models)
        }
    return out


def judge_flags(result: Result, *, threshold: float = 0.05) -> list[dict[str, Any]]:
    """Where the signal behaves differently on one model: P(level | truth) for that model has an
    interval that excludes the median over all models, and differs from it by `threshold`.
    (With two models that differ, both are flagged: there is no telling which one is odd.)"""
    flags = []
    for dimension, groups in result.judge.items():
        for group, models in groups.items():
            names = list(models)
            if len(names) < 2:
                continue
            for given in ("level_given_pass", "level_given_fail"):
                for level in models[names[0]][given]:
                    means = {m: models[m][given][level]["mean"] for m in names}
                    others = float(np.median(list(means.values())))
                    for model in names:
                        cell = models[model][given][level]
                        outside = cell["lo"] > others or cell["hi"] < others
                        if outside and abs(cell["mean"] - others) >= threshold:
                            flags.append(
                                {
                                    "dimension": dimension,
                                    "group": group,
                                    "model": model,
                                    "given": "pass" if given == "level_given_pass" else "fail",
                                    "level": level,
                                    "value": cell["mean"],
                                    "others": others,
                                }
                            )
    return flags


def _study(study: Study, study_text: str | None) -> dict[str, Any]:
    models = {}
    for name, settings in (study.models or {}).items():
        models[name] = settings.model_dump(mode="json", exclude_none=True)
    return {
        "path": None if study.path is None else str(study.path),
        "incumbent": study.incumbent,
        "candidates": list(study.candidates),
        "segments": dict(study.segments),
        "decision": study.decision.model_dump(),
        "gates": [g.model_dump(mode="json") for g in study.gates],
        "models": models,
        "text": study_text,
    }


def build_document(
    study: Study,
    result: Result,
    blocks: Sequence[Block],
    *,
    agreement: Sequence[DimensionAgreement] = (),
    plan: NextPlan | None = None,
    fit: Mapping[str, Any] | None = None,
    truth: Rates | None = None,
    study_text: str | None = None,
) -> dict[str, Any]:
    """The whole report as plain data (what `changeover report --format json` prints);
    `blocks` are the counts the result was fitted to (`result.draws.blocks`)."""
    responses: dict[str, dict[str, int]] = {}
    for block in blocks:
        responses.setdefault(block.dimension, {})[block.group_key] = int(block.n_all.sum())
    return {
        "changeover": version("changeover"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "study": _study(study, study_text),
        "result": result.to_dict(),
        "raw": raw_rates(blocks, study),
        "truth": truth,
        "labels": label_counts(blocks),
        "responses": responses,
        "agreement": [
            {
                "dimension": a.dimension,
                "responses": a.responses,
                "pairs_agreeing": a.pairs_agreeing,
                "cohen_kappa": a.cohen_kappa,
                "krippendorff_alpha": a.krippendorff_alpha,
            }
            for a in agreement
        ],
        "judge_flags": judge_flags(result),
        "next": None if plan is None else plan.as_dict(),
        "fit": dict(fit or {}),
    }
