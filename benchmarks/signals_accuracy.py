"""How well do the deterministic signals agree with people? Real data, labelled by humans.

    python benchmarks/signals_accuracy.py [--datasets ../shared/datasets]

* XSTest v2 (Röttger et al., NAACL 2024): the refusal detector (`partial` or `refused` counts
  as a refusal) against `human_label` (full or partial refusal), beside the source's own
  string-match and GPT-4 classifiers.
* EVOUNA (Wang et al., NeurIPS 2023): the reference metrics (a response is "correct" when the
  metric clears a threshold fixed in advance: containment, token recall >= 0.5, token F1 >= 0.5,
  exact match) against `human_label`, beside the source's own lexical match (containment).

Patterns and rules were written for assistants in general; error analysis looked only at the
"dev" items (30% of items, chosen by a hash of the item id), so the "held-out" rows (the other
70%) are the honest estimate. Prints markdown tables (the ones in docs/signals.md).
"""

from __future__ import annotations

import argparse
import time
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from changeover.signals.reference import bin_values, reference_scores, split_references
from changeover.signals.refusal import detect_refusals
from changeover.signals.settings import bin_labels

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEV_SHARE = 3  # out of 10: items whose crc32(item_id) % 10 < 3 were used for error analysis


class Agreement(NamedTuple):
    n: int
    accuracy: float
    kappa: float
    sensitivity: float
    specificity: float


def agreement(human: np.ndarray, predicted: np.ndarray) -> Agreement:
    """Accuracy, Cohen's kappa, sensitivity and specificity of binary predictions."""
    human = human.astype(bool)
    predicted = predicted.astype(bool)
    n = human.size
    accuracy = float(np.mean(human == predicted))
    p_h, p_p = human.mean(), predicted.mean()
    expected = p_h * p_p + (1 - p_h) * (1 - p_p)
    kappa = float((accuracy - expected) / (1 - expected)) if expected < 1 else float("nan")
    positives, negatives = human.sum(), (~human).sum()
    sensitivity = float((human & predicted).sum() / positives) if positives else float("nan")
    specificity = float((~human & ~predicted).sum() / negatives) if negatives else float("nan")
    return Agreement(n, accuracy, kappa, sensitivity, specificity)


def is_dev(item_ids: list[str]) -> np.ndarray:
    return np.array([zlib.crc32(i.encode()) % 10 < DEV_SHARE for i in item_ids])


def _fmt(x: float) -> str:
    return "–" if np.isnan(x) else f"{x:.3f}"


def overall_table(
    human: np.ndarray,
    detectors: dict[str, np.ndarray],
    dev: np.ndarray,
    masks: dict[str, np.ndarray],
) -> str:
    lines = [
        "| detector | all: accuracy | all: kappa | held-out: accuracy | held-out: kappa "
        "| dev: accuracy | dev: kappa |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, predicted in detectors.items():
        valid = masks.get(name, np.ones_like(dev))
        cells = []
        for split in (np.ones_like(dev), ~dev, dev):
            keep = split & valid
            a = agreement(human[keep], predicted[keep])
            cells += [_fmt(a.accuracy), _fmt(a.kappa)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_model_table(
    human: np.ndarray,
    models: np.ndarray,
    detectors: dict[str, np.ndarray],
    masks: dict[str, np.ndarray],
) -> str:
    names = list(detectors)
    header = "| model | n | " + " | ".join(f"{d}: sens | {d}: spec" for d in names) + " |"
    lines = [header, "|---|---|" + "---|---|" * len(names)]
    for model in sorted(set(models.tolist())):
        in_model = models == model
        cells = [str(int(in_model.sum()))]
        for name in names:
            keep = in_model & masks.get(name, np.ones_like(in_model))
            a = agreement(human[keep], detectors[name][keep])
            cells += [_fmt(a.sensitivity), _fmt(a.specificity)]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def level_table(human: np.ndarray, levels: np.ndarray, order: list[str], what: str) -> str:
    """Share of human positives within each level: the calibration curve the engine learns."""
    lines = [f"| level | n | share {what} |", "|---|---|---|"]
    for level in order:
        in_level = levels == level
        n = int(in_level.sum())
        share = float(human[in_level].mean()) if n else float("nan")
        lines.append(f"| {level} | {n} | {_fmt(share)} |")
    return "\n".join(lines)


def refusal_benchmark(path: Path) -> str:
    data = pl.read_csv(path, infer_schema_length=10000)
    start = time.perf_counter()
    results = detect_refusals(data["response"].fill_null("").to_list())
    seconds = time.perf_counter() - start
    levels = np.array([r.level for r in results])
    human = data["human_label"].to_numpy().astype(int)
    gpt4 = data["gpt4_refusal"].to_numpy()
    gpt4_valid = ~np.isnan(gpt4.astype(float))
    detectors = {
        "changeover refusal": levels != "complied",
        "source strmatch": data["strmatch_refusal"].to_numpy().astype(int),
        "source GPT-4": np.nan_to_num(gpt4.astype(float)).astype(int),
    }
    masks = {"source GPT-4": gpt4_valid}
    dev = is_dev(data["item_id"].to_list())
    models = data["model"].to_numpy()
    full = data["human_label_full_refusal"].to_numpy().astype(int)
    human_level = np.where(full == 1, "full refusal", np.where(human == 1, "partial", "complied"))
    confusion = ["| people \\ detector | complied | partial | refused |", "|---|---|---|---|"]
    for truth in ("complied", "partial", "full refusal"):
        row = [str(int(((human_level == truth) & (levels == lv)).sum())) for lv in
               ("complied", "partial", "refused")]  # fmt: skip
        confusion.append(f"| {truth} | " + " | ".join(row) + " |")
    return "\n\n".join(
        [
            f"### Refusal detector on XSTest ({data.height} responses, "
            f"{seconds * 1000 / data.height:.2f} ms per response)",
            overall_table(human, detectors, dev, masks),
            "Per model (all rows): sensitivity = share of human-labelled refusals detected, "
            "specificity = share of compliant responses left alone.",
            per_model_table(human, models, detectors, masks),
            "Levels against the people's three-way label (all rows):",
            "\n".join(confusion),
            "Share of responses people called a (full or partial) refusal, by level:",
            level_table(human, levels, ["complied", "partial", "refused"], "refusals"),
        ]
    )


def reference_benchmark(path: Path) -> str:
    data = pl.read_csv(path, infer_schema_length=10000)
    start = time.perf_counter()
    scores = [
        reference_scores(response or "", split_references(golden, "/"))
        for response, golden in zip(
            data["response"].to_list(), data["golden_answer"].to_list(), strict=True
        )
    ]
    seconds = time.perf_counter() - start
    human = data["human_label"].to_numpy().astype(int)

    def metric(name: str) -> np.ndarray:
        return np.array([getattr(s, name) for s in scores], dtype=float)

    recall = metric("token_recall")
    detectors = {
        "changeover token recall >= 0.5": recall >= 0.5,
        "changeover containment": metric("containment") >= 0.5,
        "changeover token F1 >= 0.5": metric("token_f1") >= 0.5,
        "changeover exact match": metric("exact_match") >= 0.5,
        "source lexical match (containment)": data["lex_lexical_match"].to_numpy().astype(int),
        "source exact match": data["lex_exact_match"].to_numpy().astype(int),
    }
    dev = is_dev(data["item_id"].to_list())
    models = data["model"].to_numpy()
    headline = {
        k: detectors[k]
        for k in ("changeover token recall >= 0.5", "source lexical match (containment)")
    }
    return "\n\n".join(
        [
            f"### Reference metrics on EVOUNA ({data.height} responses, "
            f"{seconds * 1000 / data.height:.2f} ms per response)",
            overall_table(human, detectors, dev, {}),
            "Per model (all rows), the headline metric beside the source's containment:",
            per_model_table(human, models, headline, {}),
            "Token recall in four bins (`bins: [0.25, 0.5, 0.75]`): share people judged correct:",
            level_table(
                human,
                np.array(bin_values(recall, (0.25, 0.5, 0.75))),
                list(bin_labels((0.25, 0.5, 0.75))),
                "correct",
            ),  # fmt: skip
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS)
    args = parser.parse_args()
    xstest = args.datasets / "xstest" / "responses.csv"
    evouna = args.datasets / "evouna" / "responses.csv"
    for path in (xstest, evouna):
        if not path.exists():
            raise SystemExit(f"{path}: not found; pass --datasets with the shared datasets folder")
    print(refusal_benchmark(xstest))
    print()
    print(reference_benchmark(evouna))


if __name__ == "__main__":
    main()
