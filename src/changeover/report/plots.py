"""The report's plots, drawn with Matplotlib as SVG (no network needed to view them).

Each function takes the report document (report/document.py) and returns SVG text; the HTML
report inlines it as a data URI, so each plot keeps its own ids and styles. Figures are narrow
(5 inches) with 11-point text, so that scaled to a phone's width they stay legible; every
name is drawn as plain text (a `$` never starts Matplotlib's mathtext).
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

from changeover.calibrate.decide import GateResult
from changeover.report.document import ReportDocument, outcome_words, overall_rate

__all__ = ["error_model_plot", "forest_plot", "plain", "rates_plot"]

GREEN, RED, AMBER, GREY, BLUE = "#1a7f37", "#cf222e", "#bf8700", "#6e7781", "#0969da"
MARKERS = ("x", "+", "1", "*", "|")  # one per signal feeding a dimension
WIDTH = 5.0  # inches
TEXT = 11  # points: tick labels and titles
SMALL = 10  # points: axis labels and legends


def plain(text: str, limit: int = 28) -> str:
    """User text as Matplotlib draws it literally: `$` escaped (no mathtext), a leading
    underscore kept (Matplotlib hides legend entries that start with one), and a long name
    clipped so that the plot keeps its width (the tables beside it give names whole)."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = text.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    return buffer.getvalue()


def _colour(p: float, required: float) -> str:
    if p >= required:
        return GREEN
    if p <= 1 - required:
        return RED
    return AMBER


def forest_plot(gate: GateResult) -> str:
    """One panel per candidate, stacked on one shared axis so they compare by eye: the contrast
    (percentage points) overall and per segment with its interval, the margin dashed, coloured
    by whether the condition holds."""
    candidates = list(gate.contrasts)
    places = [where for where, _ in gate.contrasts[candidates[0]].places()]
    panel = 0.45 + 0.26 * len(places)
    figure = Figure(figsize=(WIDTH, 0.5 + panel * len(candidates)), layout="constrained")
    axes = figure.subplots(len(candidates), 1, sharex=True, squeeze=False)[:, 0]
    sign = -1 if gate.better == "higher" else 1
    for ax, candidate in zip(axes, candidates, strict=True):
        for y, (place, c) in enumerate(gate.contrasts[candidate].places()):
            colour = _colour(c.p_gate, gate.probability) if c.gated else GREY
            ax.plot([100 * c.lo, 100 * c.hi], [y, y], color=colour, lw=2)
            ax.plot(100 * c.mean, y, "o", color=colour, ms=6 if place == "overall" else 4)
            margin = 100 * sign * c.margin
            ax.plot([margin, margin], [y - 0.4, y + 0.4], "--", color=GREY, lw=1)
        ax.axvline(0, color="#afb8c1", lw=0.8)
        ax.set_title(plain(candidate), fontsize=TEXT, loc="left")
        ax.set_yticks(range(len(places)), [plain(p) for p in places])
        ax.set_ylim(len(places) - 0.5, -0.5)
        ax.tick_params(labelsize=TEXT)
        ax.grid(axis="x", color="#eaeef2", lw=0.6)
    axes[-1].set_xlabel("candidate − incumbent (percentage points)", fontsize=SMALL)
    return _svg(figure)


def rates_plot(document: ReportDocument, dimension: str, group: str) -> str:
    """Per model: the calibrated overall rate with its interval, the raw rate of each signal
    feeding the dimension (×, +, …), and the true rate (◆) when it is known (the demo)."""
    assert document.result is not None, "a preview has no calibrated rates"
    rates = document.result.rates[dimension][group]
    raw = document.raw.get(dimension, {}).get(group, {})
    truth = (document.truth or {}).get(dimension, {}).get(group, {})
    models = list(rates)
    figure = Figure(figsize=(WIDTH, 0.9 + 0.34 * len(models)), layout="constrained")
    ax = figure.subplots()
    labelled: set[str] = set()
    for y, model in enumerate(models):
        r = rates[model].overall
        ax.plot([100 * r.lo, 100 * r.hi], [y, y], color=BLUE, lw=2)
        ax.plot(100 * r.mean, y, "o", color=BLUE, ms=5, label="calibrated" if y == 0 else None)
        for (signal, per_model), marker in zip(raw.items(), MARKERS, strict=False):
            face = overall_rate(per_model, model)
            if face is not None:
                label = None if signal in labelled else plain(f"raw: {signal}")
                labelled.add(signal)
                ax.plot(100 * face, y, marker, color=RED, ms=7, mew=2, label=label)
        true = overall_rate(truth, model)
        if true is not None:
            ax.plot(100 * true, y, "D", color=GREEN, ms=5, label="true" if y == 0 else None)
    ax.set_yticks(range(len(models)), [plain(m) for m in models])
    ax.set_ylim(len(models) - 0.5, -0.5)
    ax.set_xlabel("rate (%)", fontsize=SMALL)
    ax.tick_params(labelsize=TEXT)
    ax.grid(axis="x", color="#eaeef2", lw=0.6)
    figure.legend(fontsize=SMALL, loc="outside lower center", ncols=4, frameon=False)
    return _svg(figure)


def error_model_plot(document: ReportDocument, dimension: str, group: str) -> str:
    """Per model, the signal's level distribution given each human verdict (named for the
    dimension: refused / complied, correct / incorrect, …): where the bars of one model differ
    from the others, the signal treats that model differently."""
    assert document.result is not None, "a preview has no error model"
    judge = document.result.judge[dimension][group]
    models = list(judge)
    levels = list(judge[models[0]].level_given_pass)
    yes, no = outcome_words(dimension)
    rows = [(m, "pass") for m in models] + [(m, "fail") for m in models]
    figure = Figure(figsize=(WIDTH, 1.2 + 0.28 * len(rows)), layout="constrained")
    ax = figure.subplots()
    palette = [
        "#0550ae", "#218bff", "#80ccff", "#ffd8b5", "#fb8f44", "#bc4c00", "#762c00", "#4c2889",
    ]  # fmt: skip
    for y, (model, given) in enumerate(rows):
        left = 0.0
        for j, level in enumerate(levels):
            errors = judge[model]
            table = errors.level_given_pass if given == "pass" else errors.level_given_fail
            value = table[level].mean
            ax.barh(
                y,
                value,
                left=left,
                color=palette[j % len(palette)],
                edgecolor="white",
                label=plain(level) if y == 0 else None,
            )
            left += value
    ax.set_yticks(range(len(rows)), [plain(f"{m} | {yes if g == 'pass' else no}") for m, g in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(signal level | the human verdict)", fontsize=SMALL)
    ax.tick_params(labelsize=TEXT)
    figure.legend(
        fontsize=SMALL, ncols=min(len(levels), 4), loc="outside lower center", frameon=False
    )
    return _svg(figure)
