"""A production log of millions of rows -> a stratified sample of items, in bounded memory.

    python benchmarks/sample_log.py                       # 5M rows, CSV and Parquet, 2,000 items
    python benchmarks/sample_log.py --rows 1000000,5000000

Writes a synthetic support log (request id, region with the traffic mix of a 5.3M-a-month
assistant, the user's query, the bot's answer, a latency) as CSV and as Parquet (not timed), then
runs, in a fresh process each, what a user runs:

    changeover import items LOG --map item_id=request_id --map prompt=user_query \
        --map segment=region --sample 2000 --by segment --seed 7 --write-weights

and records the wall time and the peak resident memory of that process (its VmHWM, read from
/proc as it exits: the high-water mark of its own memory since it started, which `ru_maxrss`
would mix with the parent's), with the load average of the machine. Results in
benchmarks/results/sample_log.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

RESULTS = Path(__file__).parent / "results"
SEGMENTS = {"na": 2_100_000, "emea": 1_400_000, "uk": 500_000, "latam": 400_000,
            "apac": 600_000, "jp": 300_000}  # fmt: skip
STUDY = """\
incumbent: legacy
candidates: [cand]
segments: {na: 1}
"""


def write_log(folder: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    """The synthetic log as CSV and Parquet, written in chunks of a million rows."""
    rng = np.random.default_rng(seed)
    names = list(SEGMENTS)
    weights = np.array(list(SEGMENTS.values()), dtype=float)
    paths = {"csv": folder / f"log-{rows}.csv", "parquet": folder / f"log-{rows}.parquet"}
    chunks = []
    for start in range(0, rows, 1_000_000):
        n = min(1_000_000, rows - start)
        ids = np.arange(start, start + n)
        topic = rng.integers(0, 40, n)
        chunks.append(
            pl.DataFrame(
                {
                    "request_id": [f"req-{i:09d}" for i in ids],
                    "region": rng.choice(names, n, p=weights / weights.sum()),
                    "user_query": [
                        f"Hello, I ordered item #{i} last week (topic {t}) and it has not "
                        "arrived yet. Can you tell me where it is and when it will come?"
                        for i, t in zip(ids, topic, strict=True)
                    ],
                    "bot_answer": [
                        f"Thanks for reaching out! Order #{i} left our warehouse and should "
                        "arrive within 3 working days. You can track it under My orders."
                        for i in ids
                    ],
                    "latency_ms": rng.integers(200, 3000, n),
                }
            )
        )
    frame = pl.concat(chunks)
    frame.write_csv(paths["csv"])
    frame.write_parquet(paths["parquet"])
    return paths


# `changeover` in this interpreter, reporting its peak resident memory (VmHWM) as it exits.
_CHILD = """
import atexit, re, sys
def peak():
    status = open("/proc/self/status").read()
    print("VmHWM_KiB=" + re.search(r"VmHWM:\\s+(\\d+)", status).group(1), file=sys.stderr)
atexit.register(peak)
from changeover.cli import main
main()
"""


def run_import(log: Path, folder: Path, size: int) -> dict[str, float]:
    """`changeover import items LOG --sample SIZE ...` in a fresh process: wall time, peak RSS."""
    study = folder / "study.yaml"
    study.write_text(STUDY)
    (folder / "changeover.db").unlink(missing_ok=True)
    command = [
        sys.executable, "-c", _CHILD,
        "import", "items", str(log), "--study", str(study),
        "--map", "item_id=request_id", "--map", "prompt=user_query", "--map", "segment=region",
        "--sample", str(size), "--by", "segment", "--seed", "7", "--write-weights",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr}")
    peak_kib = int(done.stderr.split("VmHWM_KiB=")[1].split()[0])
    return {
        "seconds": round(wall, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "output": done.stdout.strip().splitlines()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="5000000", help="comma-separated log sizes")
    parser.add_argument("--sample", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS / "sample_log.json")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for rows in (int(r) for r in args.rows.split(",")):
            paths = write_log(folder, rows)
            for form, path in paths.items():
                load = os.getloadavg()[0]
                result = run_import(path, folder, args.sample)
                runs.append(
                    {
                        "rows": rows,
                        "format": form,
                        "file_mib": round(path.stat().st_size / 2**20, 1),
                        "sample": args.sample,
                        **result,
                        "load_before": round(load, 2),
                        "load_after": round(os.getloadavg()[0], 2),
                    }
                )
                print(json.dumps(runs[-1]))
            for path in paths.values():
                path.unlink()
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "cpus": os.cpu_count()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
