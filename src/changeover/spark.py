"""Warehouse scale on Spark: score a month of traffic where it lives, count it in Spark SQL, and
bring only the counts table to `changeover fit --counts` (`pip install 'changeover[spark]'`).

    responses = spark.table("support.responses")   # item_id, model, segment, expected_behaviour,
                                                    # response, reference
    rows = rows_on_spark(responses, study, labels=spark.table("support.labels"))
    counts_on_spark(rows).toPandas().to_csv("counts.csv", index=False)
    # changeover fit --counts counts.csv

The deterministic signals (refusal, style, reference with fixed bins) are pure functions of the
text, so `score_frame` computes them on a pandas batch exactly as `changeover score` does in
process, and Spark runs it on every partition through `mapInPandas` (an Arrow-backed pandas
UDF). LLM judges are calls to a model, not a function of the text: score them with `changeover
score` on a sample. pyspark is imported only inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from changeover.counts import counts_sql
from changeover.errors import ChangeoverError, StudyError
from changeover.signals.compute import LEVEL_SEPARATOR, combine_levels, compute_signal
from changeover.signals.settings import (
    ReferenceSignal,
    RefusalSignal,
    StyleSignal,
)
from changeover.study import Study, dimension_group, feeds_dimension

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkFrame

__all__ = [
    "RESPONSE_COLUMNS",
    "ROWS_SCHEMA",
    "SIGNALS_SCHEMA",
    "counts_on_spark",
    "deterministic_signals",
    "rows_frame",
    "rows_on_spark",
    "score_frame",
    "score_on_spark",
]

#: The columns a batch of responses must have (`reference` may be null).
RESPONSE_COLUMNS = ("item_id", "model", "segment", "expected_behaviour", "response", "reference")
#: What `score_frame` returns, as a Spark DDL schema: one row per response and signal.
SIGNALS_SCHEMA = (
    "item_id string, model string, signal string, dimension string, value double, level string"
)
#: What `rows_frame` returns: the per-response rows of `changeover counts`, without `human`.
ROWS_SCHEMA = (
    "item_id string, model string, segment string, `group` string, dimension string, level string"
)
Deterministic = RefusalSignal | StyleSignal | ReferenceSignal


def deterministic_signals(
    study: Study, names: Sequence[str] | None = None
) -> dict[str, Deterministic]:
    """The study's signals that are functions of the text alone (all of them, or `names`).

    Raises StudyError for a judge, or for reference quantile bins (their edges depend on every
    response at once, which a batch does not see: give fixed `bins`)."""
    if study.signals is None:
        raise StudyError(f"{study.path or 'study'}: no `signals:` section; nothing to compute")
    chosen = list(names) if names is not None else list(study.signals)
    out: dict[str, Deterministic] = {}
    for name in chosen:
        signal = study.signals[name]
        if isinstance(signal, ReferenceSignal) and signal.quantiles is not None:
            raise StudyError(
                f"signals.{name}: quantile bins depend on every response at once, which a "
                "batch does not see; give fixed bins (bins: [0.25, 0.5, 0.75]) to score on Spark"
            )
        if isinstance(signal, RefusalSignal | StyleSignal | ReferenceSignal):
            out[name] = signal
        elif names is not None:
            raise StudyError(
                f"signals.{name}: an LLM judge calls a model; score it with `changeover score`"
            )
    if not out:
        raise StudyError(f"{study.path or 'study'}: no deterministic signal to compute")
    return out


def _check_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ChangeoverError(
            f"the responses lack the column(s) {', '.join(missing)}; they need {', '.join(columns)}"
        )


def _answered(frame: pd.DataFrame) -> pd.DataFrame:
    """The responses that have a text (an error row has none, and no signal)."""
    _check_columns(frame, RESPONSE_COLUMNS)
    return frame[frame["response"].notna()].reset_index(drop=True)


def _text(values: pd.Series) -> list[Any]:
    return [None if pd.isna(v) else str(v) for v in values]


def score_frame(
    frame: pd.DataFrame, study: Study, *, signals: Sequence[str] | None = None
) -> pd.DataFrame:
    """Score a batch of responses with the study's deterministic signals, as `changeover score`
    does: one row per response and signal (`SIGNALS_SCHEMA`) for the responses that inform the
    signal's dimension (`changeover.study.feeds_dimension`), plus the cross product ("a|b") of a
    dimension's signals where several inform it. Rows without a response (errors) are left
    out."""
    chosen = deterministic_signals(study, signals)
    answered = _answered(frame)
    parts = []
    for dimension in dict.fromkeys(s.dimension for s in chosen.values()):
        # Only the responses that inform the dimension (correctness: should-answer items).
        feeds = [feeds_dimension(dimension, str(e)) for e in answered["expected_behaviour"]]
        rows = answered[feeds].reset_index(drop=True)
        responses = [str(v) for v in rows["response"]]
        references = _text(rows["reference"])
        segments = _text(rows["segment"])
        names = [n for n, s in chosen.items() if s.dimension == dimension]
        levels: dict[str, list[str]] = {}
        for name in names:
            results = compute_signal(
                chosen[name],
                responses,
                references=references,
                segments=segments,
                style_guide=study.style_guide,
            )
            levels[name] = [r.level for r in results]
            parts.append(_signal_part(rows, name, dimension, results))
        if len(names) > 1:
            combined = combine_levels(*(levels[n] for n in names))
            parts.append(
                _signal_part(
                    rows,
                    LEVEL_SEPARATOR.join(names),
                    dimension,
                    [(None, level) for level in combined],
                )
            )
    columns = ["item_id", "model", "signal", "dimension", "value", "level"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(parts, ignore_index=True)[columns]


def _signal_part(
    answered: pd.DataFrame, name: str, dimension: str, results: Sequence[Any]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": answered["item_id"].astype(str),
            "model": answered["model"].astype(str),
            "signal": name,
            "dimension": dimension,
            "value": pd.array([r[0] for r in results], dtype="Float64"),
            "level": [r[1] for r in results],
        }
    )


def rows_frame(
    frame: pd.DataFrame, study: Study, *, signals: Sequence[str] | None = None
) -> pd.DataFrame:
    """The per-response rows of `changeover counts` for a batch of responses (`ROWS_SCHEMA`):
    each response's level in every dimension it informs (`changeover.study.dimension_group`),
    from the dimension's signal or the cross product of its signals."""
    scored = score_frame(frame, study, signals=signals)
    chosen = deterministic_signals(study, signals)
    feeding = {}
    for dimension in dict.fromkeys(s.dimension for s in chosen.values()):
        names = [n for n, s in chosen.items() if s.dimension == dimension]
        feeding[dimension] = LEVEL_SEPARATOR.join(names)
    scored = scored[scored["signal"] == scored["dimension"].map(feeding)]
    items = _answered(frame)[["item_id", "model", "segment", "expected_behaviour"]].astype(str)
    joined = scored.merge(items, on=["item_id", "model"], how="left")
    groups = [
        dimension_group(d, e)
        for d, e in zip(joined["dimension"], joined["expected_behaviour"], strict=True)
    ]
    joined["group"] = groups
    joined = joined[joined["group"].notna()]
    columns = ["item_id", "model", "segment", "group", "dimension", "level"]
    return joined[columns].reset_index(drop=True)


def _batches(
    function: Callable[..., pd.DataFrame], study: Study, signals: Sequence[str] | None
) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def each(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            out = function(batch, study, signals=signals)
            # pyspark 4.3 cannot yet take pandas 3's Arrow-backed text columns back: plain
            # Python objects convert the same on pandas 2 and 3.
            text = [c for c in out.columns if pd.api.types.is_string_dtype(out[c])]
            yield out.astype(dict.fromkeys(text, object))

    return each


def score_on_spark(
    responses: SparkFrame, study: Study, *, signals: Sequence[str] | None = None
) -> SparkFrame:
    """`score_frame` on every partition of a Spark DataFrame of responses (`mapInPandas`)."""
    deterministic_signals(study, signals)  # fail here, not on an executor
    return responses.select(*RESPONSE_COLUMNS).mapInPandas(
        _batches(score_frame, study, signals), SIGNALS_SCHEMA
    )


def rows_on_spark(
    responses: SparkFrame,
    study: Study,
    *,
    labels: SparkFrame | None = None,
    signals: Sequence[str] | None = None,
) -> SparkFrame:
    """The per-response rows of `changeover counts` on Spark: `rows_frame` on every partition,
    joined with the human labels (`item_id, model, dimension, label`, one row per annotator)
    when given. Their counts are `counts_on_spark`."""
    deterministic_signals(study, signals)
    rows = responses.select(*RESPONSE_COLUMNS).mapInPandas(
        _batches(rows_frame, study, signals), ROWS_SCHEMA
    )
    if labels is None:
        from pyspark.sql import functions as F

        return rows.withColumn("human", F.lit(None).cast("int"))
    human = labels.selectExpr("item_id", "model", "dimension", "CAST(label AS INT) AS human")
    return rows.join(human, on=["item_id", "model", "dimension"], how="left")


def counts_on_spark(rows: SparkFrame, *, view: str = "changeover_rows") -> SparkFrame:
    """The counts table of per-response rows, by `changeover.counts.COUNTS_SPARK_SQL` in Spark
    SQL (the same aggregation as `changeover counts`), read from a temporary view `view`."""
    rows.createOrReplaceTempView(view)
    return rows.sparkSession.sql(counts_sql("spark", table=view))
