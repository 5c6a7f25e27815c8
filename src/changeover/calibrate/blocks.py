"""From a counts table to the arrays the models take: one block per dimension and group."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl

__all__ = ["COUNTS_COLUMNS", "Block", "blocks_from_counts", "level_order"]

#: The engine's input: one row per cell and the number of responses in it (DESIGN.md, "Counts").
COUNTS_COLUMNS = ("dimension", "model", "segment", "group", "level", "human", "n")


@dataclass(frozen=True)
class Block:
    """Counts of one dimension and group as arrays of shape [M, S, K].

    `segments` lists the segments that have responses in this block; a segment without any is
    left out (with a warning) rather than estimated from the prior alone.
    """

    dimension: str
    group: str
    models: tuple[str, ...]
    segments: tuple[str, ...]
    levels: tuple[str, ...]
    n_all: np.ndarray
    n_pass: np.ndarray
    n_fail: np.ndarray

    @property
    def key(self) -> tuple[str, str]:
        return (self.dimension, self.group)

    @property
    def group_key(self) -> str:
        return self.group or "all"

    @property
    def label(self) -> str:
        return self.dimension if not self.group else f"{self.dimension} (group {self.group})"

    @property
    def n_labels(self) -> int:
        return int(self.n_pass.sum() + self.n_fail.sum())


def level_order(levels: list[str]) -> list[str]:
    """Levels in natural order: numbers numerically ("2" before "10"), then text alphabetically."""

    def key(level: str) -> tuple[int, float, str]:
        if re.fullmatch(r"[+-]?\d+(\.\d+)?", level):
            return (0, float(level), level)
        return (1, 0.0, level)

    return sorted(levels, key=key)


def blocks_from_counts(counts: pl.DataFrame, models: list[str], segments: list[str]) -> list[Block]:
    """Split a validated counts table into one block of arrays per (dimension, group)."""
    blocks = []
    keys = (
        counts.select("dimension", "group").unique(maintain_order=True).sort("dimension", "group")
    )
    for dimension, group in keys.iter_rows():
        part = counts.filter((pl.col("dimension") == dimension) & (pl.col("group") == group))
        levels = level_order(part["level"].unique().to_list())
        present = [s for s in segments if s in set(part.filter(pl.col("n") > 0)["segment"])]
        shape = (len(models), len(present), len(levels))
        n_all, n_pass, n_fail = (np.zeros(shape) for _ in range(3))
        m_index = {m: i for i, m in enumerate(models)}
        s_index = {s: i for i, s in enumerate(present)}
        k_index = {k: i for i, k in enumerate(levels)}
        for model, segment, level, human, n in part.select(
            "model", "segment", "level", "human", "n"
        ).iter_rows():
            if segment not in s_index:
                continue
            cell = (m_index[model], s_index[segment], k_index[level])
            n_all[cell] += n
            if human == 1:
                n_pass[cell] += n
            elif human == 0:
                n_fail[cell] += n
        label = dimension if not group else f"{dimension} (group {group})"
        missing = [s for s in segments if s not in present]
        if missing:
            warnings.warn(
                f"{label}: no responses in segment(s) {', '.join(missing)}; they are left out of "
                "this dimension's overall rate and weights are renormalised over the others",
                stacklevel=2,
            )
        blocks.append(
            Block(
                dimension,
                group,
                tuple(models),
                tuple(present),
                tuple(levels),
                n_all,
                n_pass,
                n_fail,
            )
        )
    return blocks
