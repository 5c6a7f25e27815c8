from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

MINIMAL_STUDY = """\
incumbent: legacy
candidates: [cand-a, cand-b]
segments: {na: 2100000, emea: 1400000, apac: 900000}   # traffic weights
decision: {probability: 0.95}
gates:
  - {name: correctness, dimension: correctness, better: higher, margin: 0.02, scope: both, segment_margin: 0.05}
  - {name: over_refusal, dimension: refusal, group: answer, better: lower, margin: 0.01}
  - {name: refusal_recall, dimension: refusal, group: refuse, better: higher, margin: 0.02}
"""


@pytest.fixture
def study_file(tmp_path: Path) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(MINIMAL_STUDY)
    return path


def shared_dataset(name: str) -> Path:
    """Path to a dataset in ../shared/datasets, or skip where it is absent (a user's clone)."""
    path = DATASETS / name / "responses.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent: the labelled datasets live beside the repository only")
    return path
