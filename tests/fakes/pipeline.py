"""A small complete study for pipeline tests: items, replay responses, signals, labels.

Two models in three segments; the candidate answers fewer items correctly. Responses are real
text that the deterministic signals score (reference token recall, refusal phrases). Each replayed
response carries token counts and a latency, and the models have prices, so that every report
shows each model's cost and latency: `input_tokens` is 20-26 (the prompt's, the same for both
models), `output_tokens` 40-49 and `latency_s` the model's `LATENCY` times a log-normal factor
(sd 0.25).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

SEGMENTS = ("na", "emea", "apac")
ANSWERS = ("Paris", "Lisbon", "Oslo", "Vienna", "Dublin", "Madrid", "Prague", "Warsaw")

STUDY = """\
incumbent: legacy
candidates: [cand]
segments: {na: 2100000, emea: 1400000, apac: 900000}
models:
  legacy: {provider: replay, file: legacy.jsonl, price_input_per_million: 1.0,
           price_output_per_million: 4.0}
  cand: {provider: replay, file: cand.jsonl, price_input_per_million: 1.0,
         price_output_per_million: 4.0}
signals:
  overlap: {kind: reference, metric: containment}
  refusals: {kind: refusal, scale: binary}
decision: {probability: 0.9}
gates:
  - {name: correctness, dimension: correctness, better: higher, margin: 0.05, scope: both,
     segment_margin: 0.15}
  - {name: over_refusal, dimension: refusal, group: answer, better: lower, margin: 0.05}
"""

#: The study with the candidate's prices 3× the incumbent's, and gates on price and on p95
#: latency ("no more than 10% dearer", "no more than 300 ms slower").
DEARER = (
    STUDY.replace(
        "cand: {provider: replay, file: cand.jsonl, price_input_per_million: 1.0,\n"
        "         price_output_per_million: 4.0}",
        "cand: {provider: replay, file: cand.jsonl, price_input_per_million: 3.0,\n"
        "         price_output_per_million: 12.0}",
    )
    + "  - {name: price, dimension: cost, better: lower, margin: 0.10, relative: true}\n"
    + "  - {name: speed, dimension: latency_p95, better: lower, margin: 0.3}\n"
)

RATES = {"legacy": 0.85, "cand": 0.6}
LATENCY = {"legacy": 0.8, "cand": 0.6}  # seconds, the median


def write_pipeline_study(
    folder: Path,
    *,
    items: int = 90,
    seed: int = 0,
    rates: dict[str, float] = RATES,
    study: str = STUDY,
) -> Path:
    """Write study.yaml, items.csv, one replay file per model and labels.csv; return the study.

    `rates` are the models' true correctness rates; `study` the study file's text (STUDY, or a
    variant of it: other prices, more gates)."""
    rng = np.random.default_rng(seed)
    usage = np.random.default_rng(seed + 1)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.yaml").write_text(study)
    rows = []
    for i in range(items):
        answer = ANSWERS[i % len(ANSWERS)]
        rows.append(
            {
                "item_id": f"i{i:03d}",
                "prompt": f"Which city is our office number {i} in?",
                "segment": SEGMENTS[i % 3],
                "reference": answer,
                "expected_behaviour": "answer",
            }
        )
    with (folder / "items.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    labels = []
    for model, rate in rates.items():
        with (folder / f"{model}.jsonl").open("w") as f:
            for i, row in enumerate(rows):
                correct = rng.random() < rate
                refused = rng.random() < 0.05
                if refused:
                    text = "I'm sorry, I can't help with that."
                elif correct:
                    text = f"The office is in {row['reference']}."
                else:
                    text = f"The office is in {ANSWERS[(i + 3) % len(ANSWERS)]}."
                record = {
                    "item_id": row["item_id"],
                    "response": text,
                    "input_tokens": 20 + i % 7,
                    "output_tokens": int(40 + usage.integers(0, 10)),
                    "latency_s": round(LATENCY[model] * float(usage.lognormal(0, 0.25)), 4),
                }
                f.write(json.dumps(record) + "\n")
                if i % 4 == 0:
                    labels.append((row["item_id"], model, "refusal", int(refused)))
                    if not refused:
                        labels.append((row["item_id"], model, "correctness", int(correct)))
    with (folder / "labels.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["item_id", "model", "dimension", "annotator", "label"])
        for item_id, model, dimension, label in labels:
            writer.writerow([item_id, model, dimension, "ana", label])
    return folder / "study.yaml"
