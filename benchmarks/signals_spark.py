"""Refusal and style signals in rows per second: in process against Spark `local[2]`.

    python benchmarks/signals_spark.py                 # 200,000 responses
    python benchmarks/signals_spark.py --rows 1000000

The responses are the demo's (six regions, several languages, refusals, markdown, long and short
answers), repeated to `--rows`. In process: `changeover.spark.score_frame` on one pandas frame,
which is what `changeover score` computes (one core). On Spark: the same function through
`mapInPandas` (`changeover.spark.score_on_spark`) on a local cluster of two cores, the input
cached first, the output written to Spark's no-op sink so that every row is computed. Results in
benchmarks/results/signals_spark.json, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import polars as pl

from changeover.demo import build_demo
from changeover.spark import score_frame, score_on_spark
from changeover.study import load_study

RESULTS = Path(__file__).parent / "results"
SIGNALS = ["refusal_phrases", "house_style"]


def responses(rows: int) -> tuple[pd.DataFrame, Path]:
    """The demo's responses with their items, repeated to `rows`."""
    folder = Path(tempfile.mkdtemp())
    demo = build_demo(folder, items=1500, seed=0)
    items = pl.read_csv(demo.items, infer_schema=False)
    parts = [
        pl.read_ndjson(path)
        .select("item_id", "response")
        .with_columns(pl.lit(model).alias("model"))
        for model, path in demo.responses.items()
    ]
    frame = (
        pl.concat(parts)
        .join(items, on="item_id")
        .select("item_id", "model", "segment", "expected_behaviour", "response", "reference")
    )
    repeated = pl.concat([frame] * (rows // frame.height + 1)).head(rows)
    repeated = repeated.with_columns(
        pl.format("{}-{}", "item_id", pl.int_range(pl.len())).alias("item_id")
    )
    return repeated.to_pandas(), demo.study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS / "signals_spark.json")
    args = parser.parse_args()
    frame, study_path = responses(args.rows)
    study = load_study(study_path)
    result: dict[str, object] = {"rows": args.rows, "signals": SIGNALS, "cpus": os.cpu_count()}

    load = os.getloadavg()[0]
    started = time.perf_counter()
    scored = score_frame(frame, study, signals=SIGNALS)
    seconds = time.perf_counter() - started
    assert len(scored) == 2 * args.rows
    result["in_process"] = {
        "seconds": round(seconds, 2), "rows_per_second": round(args.rows / seconds),
        "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
    }  # fmt: skip
    print("in process", result["in_process"])

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "5000")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    data = spark.createDataFrame(frame).repartition(args.partitions).cache()
    data.count()
    runs = []
    for _ in range(2):  # the first run also starts the Python workers
        load = os.getloadavg()[0]
        started = time.perf_counter()
        score_on_spark(data, study, signals=SIGNALS).write.format("noop").mode("overwrite").save()
        seconds = time.perf_counter() - started
        runs.append({
            "seconds": round(seconds, 2), "rows_per_second": round(args.rows / seconds),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
        })  # fmt: skip
        print("spark local[2]", runs[-1])
    spark.stop()
    result["spark_local_2"] = runs
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
