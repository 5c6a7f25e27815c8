"""Spark in local mode (`local[2]`): the deterministic signals through `mapInPandas` equal what
`changeover score` stores, and the Spark SQL counts equal `changeover counts` exactly."""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from changeover.counts import counts_from_rows, workspace_rows
from changeover.demo import build_demo
from changeover.errors import StudyError
from changeover.spark import counts_on_spark, rows_on_spark, score_frame, score_on_spark
from changeover.study import load_study
from changeover.workspace import open_workspace
from tests.fakes.studies import run_cli as run
from tests.test_counts import _rows
from tests.tools import skip_or_fail

KEY = ["dimension", "model", "segment", "group", "level", "human"]
# pyspark 4.3 warns that it does not fully support pandas 3; these tests show that what
# changeover uses of it (createDataFrame, mapInPandas, toPandas) gives exact results.
pytestmark = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


def _require_spark() -> None:
    """Skip (with the reason) without pyspark or Java; fail instead in CI (tests/tools.py)."""
    reason = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        reason = "pyspark is not installed (pip install -e '.[spark]')"
    if reason is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "Java is not installed (Spark needs Java 17 or later)"
    if reason is not None:
        skip_or_fail(reason)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    _require_spark()
    from pyspark.sql import SparkSession

    patch = pytest.MonkeyPatch()
    patch.setenv("PYSPARK_PYTHON", sys.executable)  # the workers run this interpreter
    patch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # py4j's gateway sockets
        # pyspark starts the JVM with a fork (py4j's preexec_fn); JAX, loaded by other tests,
        # warns at every fork. The JVM runs no Python, so JAX's threads do not matter to it.
        warnings.filterwarnings("ignore", r"os\.fork\(\) was called", RuntimeWarning)
        session = (
            SparkSession.builder.master("local[2]")
            .appName("changeover-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.local.dir", str(tmp_path_factory.mktemp("spark")))
            .config("spark.driver.bindAddress", "127.0.0.1")
            .getOrCreate()
        )
        session.sparkContext.setLogLevel("ERROR")
        yield session
        session.stop()
    patch.undo()


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo study, small, generated (replay), scored by `changeover score` and labelled,
    with a second refusal signal so that one dimension is a cross product."""
    folder = tmp_path_factory.mktemp("spark_study")
    demo = build_demo(folder, items=120, seed=3)
    text = demo.study.read_text()
    demo.study.write_text(
        text.replace(
            "  house_style:", "  refusal_all: {kind: refusal, scale: binary}\n  house_style:"
        )
    )
    patch = pytest.MonkeyPatch()
    patch.chdir(folder)
    try:
        for args in (["import", "items", str(demo.items)], ["generate"], ["score"]):
            assert run(args, patch) == 0, args
        assert run(["labels", "import", str(demo.labels), "--add-annotators"], patch) == 0
    finally:
        patch.undo()
    return demo.study


def _collect(frame: Any) -> pl.DataFrame:
    """A Spark DataFrame's rows, without toPandas (pyspark 4.3's Arrow path warns on pandas 3)."""
    return pl.DataFrame([row.asDict() for row in frame.collect()], infer_schema_length=None)


def _responses(study_path: Path) -> pd.DataFrame:
    """The workspace's responses with their items, as a warehouse table would hold them."""
    with open_workspace(load_study(study_path).workspace_path) as workspace:
        items = workspace.frame("items")
        responses = workspace.frame("responses")
    joined = responses.join(items, on="item_id").select(
        "item_id", "model", "segment", "expected_behaviour", "response", "reference"
    )
    return joined.to_pandas()


def test_signals_through_map_in_pandas_equal_changeover_score(spark: Any, scored: Path) -> None:
    study = load_study(scored)
    responses = _responses(scored)
    frame = spark.createDataFrame(responses).repartition(3)
    theirs = _collect(score_on_spark(frame, study))
    with open_workspace(study.workspace_path) as workspace:
        ours = workspace.frame("signals")
    key = ["item_id", "model", "signal"]
    columns = [*key, "dimension", "level"]
    assert theirs.height == ours.height > 1000
    assert theirs.select(columns).sort(key).equals(ours.select(columns).sort(key))
    values = theirs.sort(key)["value"].cast(pl.Float64)
    stored = ours.sort(key)["value"].cast(pl.Float64)
    assert values.equals(stored)
    assert set(ours["signal"]) >= {"refusal_phrases|refusal_all", "house_style"}
    assert set(ours["level"]) >= {"refused", "complied", "pass", "fail"}
    # In process, on one pandas batch, the same function gives the same rows.
    in_process = pl.from_pandas(score_frame(responses, study)).select(columns).sort(key)
    assert in_process.equals(ours.select(columns).sort(key))


def test_rows_and_counts_on_spark_equal_the_workspace_counts(spark: Any, scored: Path) -> None:
    study = load_study(scored)
    with open_workspace(study.workspace_path) as workspace:
        ours, _ = counts_from_rows(workspace_rows(workspace))
        labels = workspace.frame("labels").select("item_id", "model", "dimension", "label")
    frame = spark.createDataFrame(_responses(scored))
    rows = rows_on_spark(frame, study, labels=spark.createDataFrame(labels.to_pandas()))
    theirs = _collect(counts_on_spark(rows)).with_columns(
        pl.col("human").cast(pl.Int8), pl.col("n").cast(pl.Int64)
    )
    assert ours.filter(pl.col("human").is_not_null()).height > 10
    assert ours.sort(KEY, nulls_last=True).equals(theirs.sort(KEY, nulls_last=True))


def test_spark_sql_counts_equal_changeover_counts_on_the_same_rows(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = _rows(np.random.default_rng(5), n=5000)
    path = tmp_path / "rows.parquet"
    rows.write_parquet(path)
    assert (
        run(["counts", "--rows", str(path), "--out", str(tmp_path / "counts.csv")], monkeypatch)
        == 0
    )
    ours = pl.read_csv(
        tmp_path / "counts.csv",
        schema_overrides={"group": pl.String, "human": pl.Int8, "level": pl.String},
    ).with_columns(pl.col("group").fill_null(""))
    theirs = _collect(counts_on_spark(spark.read.parquet(str(path))))
    theirs = theirs.with_columns(pl.col("human").cast(pl.Int8), pl.col("n").cast(pl.Int64))
    assert ours.height > 50
    assert ours.sort(KEY, nulls_last=True).equals(theirs.sort(KEY, nulls_last=True))


def test_batch_scoring_refuses_what_a_batch_cannot_compute(scored: Path) -> None:
    study = load_study(scored)
    assert study.signals is not None
    quantiles = study.model_copy(
        update={
            "signals": type(study.signals).model_validate(
                {"overlap": {"kind": "reference", "quantiles": 4}}
            )
        }
    )
    with pytest.raises(StudyError, match="quantile bins depend on every response"):
        score_frame(_responses(scored), quantiles)
