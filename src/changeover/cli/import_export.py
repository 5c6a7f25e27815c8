"""`changeover import` (items, responses, Inspect AI logs, promptfoo results) and `changeover
export`: workspace tables from and to files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from changeover.cli.app import SET_UP, StudyOption, app, console, print_next
from changeover.errors import InputError
from changeover.importers.common import ToolImportResult, parse_pairs
from changeover.io import (
    ITEM_COLUMNS,
    RESPONSE_COLUMNS,
    FileImport,
    export_table,
    import_items,
    import_responses,
    parse_columns,
    weights_from_shares,
)
from changeover.sampling import SampleSpec
from changeover.study import load_study
from changeover.workspace import open_workspace

import_app = typer.Typer(
    help="Bring data in: items or responses from CSV / JSONL / Parquet (a production log too), "
    "Inspect AI eval logs, promptfoo results. All or nothing.",
    no_args_is_help=True,
)
app.add_typer(import_app, name="import", rich_help_panel=SET_UP)

MapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="FIELD=COLUMN: read changeover's FIELD from the file's COLUMN "
        "(e.g. --map prompt=user_query --map segment=region). Repeat for each.",
    ),
]
SampleOption = Annotated[
    int | None,
    typer.Option(help="Import a stratified sample of N rows (the file is scanned lazily)."),
]
ByOption = Annotated[
    str, typer.Option(help="The column the sample is stratified by (a --map field or a column).")
]
SeedOption = Annotated[int, typer.Option(help="The sample's seed: the same seed, the same rows.")]
AllocationOption = Annotated[
    str,
    typer.Option(
        help="equal: the same number of rows per segment; proportional: each segment's share."
    ),
]


def _sample(size: int | None, by: str, seed: int, allocation: str) -> SampleSpec | None:
    if allocation not in ("equal", "proportional"):
        raise InputError(f"--allocation: '{allocation}' is not known; use equal or proportional")
    if size is None:
        return None
    return SampleSpec(size, by, seed, "equal" if allocation == "equal" else "proportional")


def _print_result(result: FileImport, table: str, file: Path) -> None:
    unchanged = f" ({result.unchanged:,} already present, unchanged)" if result.unchanged else ""
    console.print(f"imported {result.added:,} {table} from {file}{unchanged}")


def _print_shares(result: FileImport, sample: SampleSpec, study_path: Path, written: bool) -> None:
    assert result.rows is not None
    sampled = sum(share.sampled for share in result.shares)
    console.print(
        f"sampled {sampled:,} of {result.rows:,} rows by {sample.by} (seed {sample.seed}, "
        f"{sample.allocation} allocation)"
    )
    shares = Table("segment", "rows in the file", "share", "sampled", box=None)
    for share in result.shares:
        shares.add_row(share.segment, f"{share.rows:,}", f"{share.share:.1%}", f"{share.sampled:,}")
    console.print(shares)
    weights = ", ".join(f"{s}: {n}" for s, n in weights_from_shares(result.shares).items())
    if written:
        console.print(f"traffic weights written into {study_path}: segments: {{{weights}}}")
    else:
        console.print(
            f"suggested traffic weights (each segment's rows in the file): segments: {{{weights}}}"
            f"\n(--write-weights writes them into {study_path})"
        )


@import_app.command("items")
def items_command(
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file.")],
    study_path: StudyOption = Path("study.yaml"),
    map_: MapOption = None,
    sample: SampleOption = None,
    by: ByOption = "segment",
    seed: SeedOption = 0,
    allocation: AllocationOption = "equal",
    write_weights: Annotated[
        bool,
        typer.Option(
            help="With --sample: make the file's segments, weighted by their rows, "
            "the study's segments."
        ),
    ] = False,
) -> None:
    """Import items (prompts): item_id, prompt, segment, and optionally reference,
    expected_behaviour, system, context; other columns are kept as metadata."""
    study = load_study(study_path)
    columns = parse_columns(map_, fields=ITEM_COLUMNS)
    spec = _sample(sample, by, seed, allocation)
    with open_workspace(study.workspace_path, create=True) as workspace:
        result = import_items(
            workspace, file, study, columns=columns, sample=spec, weights_from_file=write_weights
        )
    _print_result(result, "items", file)
    if spec is not None:
        _print_shares(result, spec, study_path, write_weights)
    print_next(study_path)


@import_app.command("responses")
def responses_command(
    file: Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file.")],
    study_path: StudyOption = Path("study.yaml"),
    map_: MapOption = None,
    model: Annotated[
        str | None,
        typer.Option(help="Every row is this model's response (a production log of one model)."),
    ] = None,
    sample: SampleOption = None,
    by: ByOption = "segment",
    seed: SeedOption = 0,
    allocation: AllocationOption = "equal",
) -> None:
    """Import responses made elsewhere: item_id, model, response (or error), and optionally
    finish_reason, input_tokens, output_tokens, latency_s. With the same --sample, --by and
    --seed as `import items`, the same rows."""
    study = load_study(study_path)
    columns = parse_columns(map_, fields=(*RESPONSE_COLUMNS, "segment"))
    spec = _sample(sample, by, seed, allocation)
    with open_workspace(study.workspace_path, create=True) as workspace:
        result = import_responses(workspace, file, study, columns=columns, sample=spec, model=model)
    _print_result(result, "responses", file)
    print_next(study_path)


ModelMapOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="THEIRS=OURS: the tool's model (or provider label) THEIRS is the study's model "
        "OURS. Repeat for each.",
    ),
]
SignalOption = Annotated[
    list[str] | None,
    typer.Option(
        "--signal",
        help="NAME=DIMENSION: import the scorer (assertion) NAME as a signal of DIMENSION; "
        "when given, only the named ones are imported.",
    ),
]


def _print_tool_result(result: ToolImportResult, files: list[Path]) -> None:
    unchanged = (
        f" ({result.items_unchanged:,} items and {result.responses_unchanged:,} responses "
        "already present)"
        if result.items_unchanged or result.responses_unchanged
        else ""
    )
    failed = f", {result.errors:,} of them errors" if result.errors else ""
    console.print(
        f"imported {result.items_added:,} items, {result.responses_added:,} responses{failed} "
        f"from {len(files)} file(s){unchanged}"
    )
    for name, levels in result.signals.items():
        shown = ", ".join(f"{level} {n:,}" for level, n in levels.items())
        console.print(f"  signal {name} ({result.dimensions[name]}): {shown}", highlight=False)
    for note in result.notes:
        console.print(f"  note: {note}", highlight=False)


@import_app.command("inspect")
def inspect_command(
    logs: Annotated[
        list[Path], typer.Argument(help="Inspect AI logs (.eval or .json), one per model.")
    ],
    study_path: StudyOption = Path("study.yaml"),
    model: ModelMapOption = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=SOURCE: an item field from a sample's id, input, target or "
            "metadata.KEY (defaults: item_id=id, prompt=input, reference=target, "
            "segment=metadata.segment, expected_behaviour=metadata.expected_behaviour).",
        ),
    ] = None,
    signal: SignalOption = None,
    epoch: Annotated[int, typer.Option(help="The epoch to import from a log of several.")] = 1,
) -> None:
    """Import Inspect AI eval logs: samples as items, each log's model's outputs as responses,
    every scorer's values as a signal's levels (needs changeover\\[inspect])."""
    from changeover.importers.inspect_logs import import_inspect_logs

    study = load_study(study_path)
    options = _tool_options(model, map_, signal)
    with open_workspace(study.workspace_path, create=True) as workspace:
        result = import_inspect_logs(workspace, logs, study, epoch=epoch, **options)
    _print_tool_result(result, logs)
    print_next(study_path)


@import_app.command("promptfoo")
def promptfoo_command(
    results: Annotated[
        list[Path], typer.Argument(help="promptfoo results (.json or .jsonl from eval -o).")
    ],
    study_path: StudyOption = Path("study.yaml"),
    model: ModelMapOption = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="FIELD=SOURCE: an item field from vars.NAME, prompt, description or test "
            "(defaults: item_id=test, prompt=prompt, reference=vars.reference, "
            "segment=vars.segment, expected_behaviour=vars.expected_behaviour).",
        ),
    ] = None,
    signal: SignalOption = None,
) -> None:
    """Import promptfoo eval results: tests as items, providers' outputs as responses, every
    assertion's pass / fail as a signal's levels."""
    from changeover.importers.promptfoo_results import import_promptfoo_results

    study = load_study(study_path)
    options = _tool_options(model, map_, signal)
    with open_workspace(study.workspace_path, create=True) as workspace:
        result = import_promptfoo_results(workspace, results, study, **options)
    _print_tool_result(result, results)
    print_next(study_path)


def _tool_options(
    model: list[str] | None, map_: list[str] | None, signal: list[str] | None
) -> dict[str, dict[str, str] | None]:
    return {
        "models": parse_pairs(model, option="--model", example="openai/gpt-4o=legacy"),
        "sources": parse_pairs(map_, option="--map", example="segment=metadata.region"),
        "signals": parse_pairs(signal, option="--signal", example="accuracy=correctness") or None,
    }


@app.command(rich_help_panel=SET_UP)
def export(
    table: Annotated[
        str,
        typer.Argument(
            help="items, responses, signals, labels, runs, calls or rows; or inspect / "
            "promptfoo: responses, signals and labels as JSONL in that tool's fields."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output file: .csv, .jsonl or .parquet.")],
    study_path: StudyOption = Path("study.yaml"),
) -> None:
    """Export a workspace table (or `rows`, the per-response input of `changeover counts`), or
    everything a tool's user reads back (`inspect`, `promptfoo`)."""
    study = load_study(study_path)
    with open_workspace(study.workspace_path) as workspace:
        written = export_table(workspace, table, out)
    what = "rows" if table == "rows" else f"{table} rows"
    console.print(f"wrote {written:,} {what} to {out}", highlight=False, markup=False)
