"""Hostile and careless input to every command that reads a file or a study key.

Each case runs the real `changeover` command in a subprocess of its own (forked from a server
that has imported the command line once, tests/fakes/forkserver.py) on a copy of one small study
(two replayed models, scored, labelled, queued) and asserts what the brief asks of bad input:
exit status 2, one `error:` line that names the file and the line or key, no traceback, every
table of the workspace the same after as before, and no run left "running". The cases run in
parallel once per module; each is then its own test, so a failure names its case.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.fakes.forkserver import ForkServer
from tests.fakes.studies import CHANGEOVER

STUDY = """\
incumbent: legacy
candidates: [cand]
segments: {na: 3, emea: 2, apac: 1}
workspace: changeover.db
models:
  legacy: {provider: replay, file: legacy.jsonl}
  cand: {provider: replay, file: cand.jsonl}
signals:
  refusal_phrases: {kind: refusal}
  house_style: {kind: style}
style_guide: {max_words: 40, banned_phrases: ["as an AI"]}
gates:
  - {name: over_refusal, dimension: refusal, group: answer, better: lower, margin: 0.05}
  - {name: style, dimension: style, better: higher, margin: 0.05}
"""
SEGMENTS = ("na", "emea", "apac")
ITEM_HEADER = "item_id,prompt,segment,expected_behaviour,reference\n"
ITEMS = ITEM_HEADER + "".join(
    f"q{i:02d},Question {i}?,{SEGMENTS[i % 3]},{'refuse' if i % 5 == 4 else 'answer'},A{i}\n"
    for i in range(12)
)


def _responses(model: str) -> str:
    lines = []
    for i in range(12):
        text = "I can't help with that." if (i + len(model)) % 4 == 0 else f"The answer is A{i}."
        lines.append(json.dumps({"item_id": f"q{i:02d}", "response": text}))
    return "\n".join(lines) + "\n"


LABELS = "item_id,model,dimension,annotator,label\n" + "".join(
    f"q{i:02d},{m},style,alice,{(i + j) % 2}\n" for i in range(6) for j, m in enumerate(["legacy"])
)


ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def _cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV}
    return subprocess.run(
        [*CHANGEOVER, *args], cwd=folder, capture_output=True, text=True, timeout=300, env=env
    )


def _build(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "study.yaml").write_text(STUDY, encoding="utf-8")
    (folder / "items.csv").write_text(ITEMS, encoding="utf-8")
    for model in ("legacy", "cand"):
        (folder / f"{model}.jsonl").write_text(_responses(model), encoding="utf-8")
    (folder / "labels.csv").write_text(LABELS, encoding="utf-8")
    # Two items without responses yet: what a responses import may add.
    (folder / "later.csv").write_text(
        ITEM_HEADER + "q12,Question 12?,na,answer,A12\nq13,Question 13?,emea,answer,A13\n",
        encoding="utf-8",
    )
    for args in (
        ["import", "items", "items.csv"],
        ["generate"],
        ["score"],
        ["import", "items", "later.csv"],
        ["annotators", "add", "alice"],
        ["labels", "import", "labels.csv"],
        ["queue", "--random", "4"],
        ["export", "rows", "--out", "rows.csv"],
        ["counts", "--out", "counts.csv"],
    ):
        done = _cli(folder, *args)
        assert done.returncode == 0, f"{args}: {done.stderr}"


def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        names = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        return {
            name: sorted(connection.execute(f"SELECT * FROM {name}").fetchall(), key=repr)
            for name in names
        }
    finally:
        connection.close()


@dataclass(frozen=True)
class Case:
    """One hostile input: files to write into the study folder (text or bytes; None deletes;
    a callable gets the folder), the command, and what the one error line must name."""

    id: str
    args: tuple[str, ...]
    files: dict[str, str | bytes | None | Callable[[Path], None]] = field(default_factory=dict)
    expect: tuple[str, ...] = ()


CASES: list[Case] = []


def case(id: str, *args: str, expect: tuple[str, ...] | str = (), **files: Any) -> None:
    names = {name.replace("__", "."): content for name, content in files.items()}
    CASES.append(Case(id, args, names, (expect,) if isinstance(expect, str) else expect))


# -- the study file: probed through a command that only reads it --------------------------------

PROBE = ("export", "items", "--out", "out.csv")


def study_case(id: str, text: str | bytes, *expect: str) -> None:
    CASES.append(Case(f"study-{id}", PROBE, {"study.yaml": text}, ("study.yaml", *expect)))


def edit(old: str, new: str) -> str:
    assert old in STUDY, old
    return STUDY.replace(old, new)


study_case("yaml-syntax", STUDY + "gates: [\n", "line")
study_case("tab-indent", STUDY + "models:\n\tx: 1\n", "line")
study_case("duplicate-top", STUDY + "incumbent: cand\n", "key 'incumbent' appears twice")
study_case(
    "duplicate-nested",
    edit("segments: {na: 3,", "segments: {na: 3, na: 4,"),
    "key 'na' appears twice",
)
study_case(
    "billion-laughs",
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcde", "bcdef", strict=True)
    )
    + STUDY,
    "expands to more than",
)
study_case("latin-1", STUDY.replace("AI", "AÏ").encode("latin-1"), "not UTF-8")
study_case("utf-16", STUDY.encode("utf-16"), "not UTF-8")
study_case("empty", "", "expected a mapping")
study_case("only-a-comment", "# nothing\n", "expected a mapping")
study_case("top-level-list", "- incumbent\n- legacy\n", "expected a mapping")
study_case("top-level-text", "just some words\n", "expected a mapping")
study_case("unknown-key", STUDY + "colour: red\n", "unknown key 'colour'")
study_case("missing-incumbent", edit("incumbent: legacy\n", ""), "missing required key 'incumbent'")
study_case("missing-candidates", edit("candidates: [cand]\n", ""), "candidates")
study_case("empty-candidates", edit("candidates: [cand]", "candidates: []"), "candidates")
study_case("incumbent-candidate", edit("candidates: [cand]", "candidates: [legacy]"), "incumbent")
study_case("candidate-twice", edit("candidates: [cand]", "candidates: [cand, cand]"), "twice")
study_case("candidate-no-model", edit("candidates: [cand]", "candidates: [cand, x]"), "models")
study_case(
    "segments-empty", edit("segments: {na: 3, emea: 2, apac: 1}", "segments: {}"), "segments"
)
study_case("weight-zero", edit("na: 3", "na: 0"), "segments.na")
study_case("weight-negative", edit("na: 3", "na: -3"), "segments.na")
study_case("weight-inf", edit("na: 3", "na: .inf"), "segments.na", "finite")
study_case("weight-nan", edit("na: 3", "na: .nan"), "segments.na", "finite")
study_case("weight-text", edit("na: 3", "na: lots"), "segments.na")
study_case("weight-huge", edit("na: 3", "na: 1e400"), "segments.na")
study_case("margin-inf", edit("margin: 0.05}\n  - {name: style", "margin: .inf}\n  - {name: style"),
           "gates[0].margin")  # fmt: skip
study_case("margin-negative", edit("margin: 0.05}\n", "margin: -0.1}\n"), "margin")
study_case("margin-over-one", edit("margin: 0.05}\n", "margin: 2}\n"), "margin")
study_case("gate-better", edit("better: lower", "better: less"), "gates[0].better")
study_case("gate-scope", edit("better: lower,", "better: lower, scope: all,"), "gates[0].scope")
study_case("gate-typo", edit("better: lower,", "better: lower, marign: 1,"), "gates[0].marign")
study_case("gate-dimension", edit("dimension: style", "dimension: styel"), "gates[1].dimension")
study_case("gate-name-twice", edit("name: style", "name: over_refusal"), "gates[1].name")
study_case("gate-probability", edit("better: lower,", "better: lower, probability: 1.5,"),
           "gates[0].probability")  # fmt: skip
study_case("gate-probability-inf", edit("better: lower,", "better: lower, probability: .inf,"),
           "gates[0].probability")  # fmt: skip
study_case(
    "decision-probability", STUDY + "decision: {probability: .nan}\n", "decision.probability"
)
study_case("decision-low", STUDY + "decision: {probability: 0.2}\n", "decision.probability")
study_case("gates-not-list", edit("gates:\n", "gates: 5\nx_gates:\n"), "gates")
study_case("model-typo", edit("legacy: {provider: replay,", "legacy: {provder: replay,"),
           "unknown key 'models.legacy.provder'")  # fmt: skip
study_case("model-provider", edit("legacy: {provider: replay,", "legacy: {provider: bard,"),
           "models.legacy.provider")  # fmt: skip
study_case("replay-no-file", edit("legacy: {provider: replay, file: legacy.jsonl}",
                                  "legacy: {provider: replay}"), "models.legacy")  # fmt: skip
for key, value in [
    ("temperature", ".inf"), ("temperature", "-1"), ("max_tokens", "0"), ("max_tokens", ".nan"),
    ("concurrency", "0"), ("timeout", ".inf"), ("timeout", "-5"), ("requests_per_minute", ".inf"),
    ("tokens_per_minute", "-1"), ("price_input_per_million", ".inf"),
    ("price_output_per_million", ".nan"), ("max_retries", "-1"),
]:  # fmt: skip
    study_case(
        f"model-{key}-{value}",
        edit("cand: {provider: replay,", f"cand: {{provider: replay, {key}: {value},"),
        f"models.cand.{key}",
    )
study_case("signal-kind", edit("refusal_phrases: {kind: refusal}", "refusal_phrases: {kind: x}"),
           "signals.refusal_phrases.kind")  # fmt: skip
study_case("signal-no-kind", edit("refusal_phrases: {kind: refusal}", "refusal_phrases: {}"),
           "signals.refusal_phrases.kind")  # fmt: skip
study_case("signal-name", edit("refusal_phrases: {kind: refusal}", "'1 bad': {kind: refusal}"),
           "signals.1 bad")  # fmt: skip
study_case("signal-typo", edit("{kind: refusal}", "{kind: refusal, langs: [en]}"),
           "signals.refusal_phrases.langs")  # fmt: skip
study_case("signal-language", edit("{kind: refusal}", "{kind: refusal, languages: [xx]}"),
           "signals.refusal_phrases.languages")  # fmt: skip
study_case("signal-regex", edit("{kind: refusal}", "{kind: refusal, patterns: {refused: ['(']}}"),
           "signals.refusal_phrases.patterns.refused")  # fmt: skip
study_case("reference-bins", STUDY.replace("signals:\n", "signals:\n  o: {kind: reference, bins: [0.6, 0.3]}\n"),
           "signals.o.bins")  # fmt: skip
study_case("reference-bins-inf", STUDY.replace("signals:\n", "signals:\n  o: {kind: reference, bins: [.inf]}\n"),
           "signals.o.bins")  # fmt: skip
study_case("reference-both", STUDY.replace("signals:\n", "signals:\n  o: {kind: reference, bins: [0.5], quantiles: 3}\n"),
           "signals.o")  # fmt: skip
study_case("style-no-guide", edit("style_guide: {max_words: 40, banned_phrases: [\"as an AI\"]}\n", ""),
           "signals.house_style")  # fmt: skip
study_case("style-words", edit("max_words: 40", "max_words: -4"), "style_guide.max_words")
study_case("style-min-over-max", edit("max_words: 40", "max_words: 40, min_words: 90"),
           "style_guide.min_words")  # fmt: skip
study_case("style-language", edit("max_words: 40", "max_words: 40, languages: {na: klingon}"),
           "style_guide.languages")  # fmt: skip
study_case("style-language-segment", edit("max_words: 40", "max_words: 40, languages: {mars: en}"),
           "style_guide.languages.mars")  # fmt: skip
study_case("judge-unknown-model", STUDY.replace("signals:\n", "signals:\n  j: {kind: judge, rubric: correctness, model: nobody}\n")
           + "dimensions: [refusal, style, correctness]\n", "signals.j.model")  # fmt: skip
study_case("judge-replay-model", STUDY.replace("signals:\n", "signals:\n  j: {kind: judge, rubric: correctness, model: legacy}\n")
           + "dimensions: [refusal, style, correctness]\n", "signals.j.model")  # fmt: skip
study_case("judge-scale", STUDY.replace("signals:\n", "signals:\n  j: {kind: judge, rubric: refusal, model: legacy, scale: 1-5}\n"),
           "signals.j.scale")  # fmt: skip
study_case(
    "lone-surrogate", STUDY.replace("legacy\n", '"legacy\\ud800"\n', 1), "incumbent", "surrogate"
)
study_case("deep-nesting", STUDY + "x: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply")
study_case(
    "workspace-folder",
    STUDY.replace("workspace: changeover.db", "workspace: ."),
    "workspace:",
    "folder",
)
case("study-is-folder", *PROBE, "--study", ".", expect=("is a folder",))
case("study-missing", *PROBE, "--study", "nope.yaml", expect=("nope.yaml", "not found"))


# -- items files ---------------------------------------------------------------------------------


def items_case(id: str, name: str, content: str | bytes, *expect: str) -> None:
    case(
        f"items-{id}",
        "import",
        "items",
        name,
        expect=(name, *expect),
        **{name.replace(".", "__"): content},
    )


items_case("missing-column", "new.csv", "item_id,prompt\nz1,Hi?\n", "line 1", "segment")
items_case("empty-prompt", "new.csv", ITEM_HEADER + "z1,,na,answer,\n", "line 2", "prompt")
items_case("blank-prompt", "new.csv", ITEM_HEADER + "z1,   ,na,answer,\n", "line 2", "prompt")
items_case("unknown-segment", "new.csv", ITEM_HEADER + "z1,Hi?,mars,answer,\n", "line 2", "segment")
items_case(
    "duplicate-id", "new.csv", ITEM_HEADER + "z1,Hi?,na,,\nz1,Ho?,na,,\n", "line 3", "duplicate"
)
items_case(
    "behaviour", "new.csv", ITEM_HEADER + "z1,Hi?,na,maybe,\n", "line 2", "expected_behaviour"
)
items_case("fields", "new.csv", ITEM_HEADER + "z1,Hi, there?,na,answer,\n", "line 2", "fields")
items_case("quote", "new.csv", ITEM_HEADER + 'z1,"Hi?,na,answer,\n', "line")
items_case("latin-1", "new.csv", (ITEM_HEADER + "z1,Où?,na,,\n").encode("latin-1"), "UTF-8")
items_case("utf-16", "new.csv", (ITEM_HEADER + "z1,Hi?,na,,\n").encode("utf-16"), "UTF-8")
items_case("empty-file", "new.csv", "", "empty")
items_case("header-only", "new.csv", ITEM_HEADER, "no items")
items_case(
    "dup-column", "new.csv", "item_id,prompt,segment,segment\nz1,Hi?,na,na\n", "line 1", "twice"
)
items_case("changed-item", "new.csv", ITEM_HEADER + "q00,Another question?,na,answer,A0\n", "q00")
items_case("jsonl-bad", "new.jsonl", '{"item_id": "z1", "prompt": "Hi?"\n', "line 1", "JSON")
items_case("jsonl-not-object", "new.jsonl", '["z1", "Hi?", "na"]\n', "line 1", "object")
items_case(
    "jsonl-missing", "new.jsonl", '{"item_id": "z1", "prompt": "Hi?"}\n', "line 1", "segment"
)
items_case("jsonl-prompt-number", "new.jsonl", '{"item_id": "z1", "prompt": 5, "segment": "na"}\n',
           "line 1", "prompt")  # fmt: skip
items_case("jsonl-id-list", "new.jsonl", '{"item_id": ["z"], "prompt": "Hi?", "segment": "na"}\n',
           "line 1", "item_id")  # fmt: skip
items_case("jsonl-surrogate", "new.jsonl", '{"item_id": "z1", "prompt": "Hi \\ud800", "segment": "na"}\n',
           "line 1", "prompt")  # fmt: skip
items_case("jsonl-deep", "new.jsonl", '{"item_id": "z1", "x": ' + "[" * 100000 + "]" * 100000 + "}\n",
           "line 1")  # fmt: skip
items_case("jsonl-latin-1", "new.jsonl", '{"item_id": "z1", "prompt": "Où?", "segment": "na"}\n'.encode("latin-1"),
           "UTF-8")  # fmt: skip
items_case("jsonl-utf-16", "new.jsonl", '{"item_id": "z1", "prompt": "Hi?", "segment": "na"}\n'.encode("utf-16"),
           "UTF-8")  # fmt: skip
items_case("jsonl-nan", "new.jsonl", '{"item_id": "z1", "prompt": "Hi?", "segment": "na", "x": NaN}\n',
           "line 1")  # fmt: skip
items_case("suffix", "new.txt", "item_id,prompt,segment\n", "unsupported")
items_case("parquet-corrupt", "new.parquet", b"PAR1 this is not parquet", "Parquet")
case("items-folder", "import", "items", "folder", expect=("folder",),
     folder=lambda f: (f / "folder").mkdir())  # fmt: skip
case("items-missing", "import", "items", "absent.csv", expect=("absent.csv", "not found"))
case("items-unknown-table", "import", "things", "items.csv", expect=("things",))


def _parquet(frame: pl.DataFrame) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        frame.write_parquet(folder / "new.parquet")

    return write


case("items-parquet-segment", "import", "items", "new.parquet",
     expect=("new.parquet", "row 1", "segment"),
     new__parquet=_parquet(pl.DataFrame({"item_id": ["z1"], "prompt": ["Hi?"], "segment": ["mars"]})))  # fmt: skip
case("items-parquet-missing", "import", "items", "new.parquet",
     expect=("new.parquet", "segment"),
     new__parquet=_parquet(pl.DataFrame({"item_id": ["z1"], "prompt": ["Hi?"]})))  # fmt: skip
case("items-parquet-type", "import", "items", "new.parquet",
     expect=("new.parquet", "row 1", "prompt"),
     new__parquet=_parquet(pl.DataFrame({"item_id": ["z1"], "prompt": [3], "segment": ["na"]})))  # fmt: skip


# -- responses files -----------------------------------------------------------------------------

RESP_HEADER = "item_id,model,response,input_tokens,output_tokens,latency_s\n"


def responses_case(id: str, content: str | bytes, *expect: str, name: str = "resp.csv") -> None:
    case(f"responses-{id}", "import", "responses", name, expect=(name, *expect),
         **{name.replace(".", "__"): content})  # fmt: skip


responses_case("unknown-model", RESP_HEADER + "q00,gpt,Hi,,,\n", "line 2", "model")
responses_case("unknown-item", RESP_HEADER + "z9,legacy,Hi,,,\n", "line 2", "item")
responses_case("twice", RESP_HEADER + "q12,legacy,Hi,,,\nq12,legacy,Ho,,,\n", "line 3")
responses_case(
    "other-content",
    RESP_HEADER + "q00,legacy,Something else,,,\n",
    "q00",
    "already has another response",
)
responses_case("empty", RESP_HEADER + "q12,legacy,,,,\n", "line 2", "response")
responses_case("negative-tokens", RESP_HEADER + "q12,legacy,Hi,-5,,\n", "line 2", "input_tokens")
responses_case("fraction-tokens", RESP_HEADER + "q12,legacy,Hi,1.5,,\n", "line 2", "input_tokens")
responses_case("inf-tokens", RESP_HEADER + "q12,legacy,Hi,inf,,\n", "line 2", "input_tokens")
responses_case("huge-tokens", RESP_HEADER + "q12,legacy,Hi,1e30,,\n", "line 2", "input_tokens")
responses_case("big-int-tokens", RESP_HEADER + "q12,legacy,Hi,99999999999999999999999,,\n",
               "line 2", "input_tokens")  # fmt: skip
responses_case("text-tokens", RESP_HEADER + "q12,legacy,Hi,many,,\n", "line 2", "input_tokens")
responses_case("negative-latency", RESP_HEADER + "q12,legacy,Hi,,,-1\n", "line 2", "latency_s")
responses_case("nan-latency", RESP_HEADER + "q12,legacy,Hi,,,nan\n", "line 2", "latency_s")
responses_case("inf-latency", RESP_HEADER + "q12,legacy,Hi,,,inf\n", "line 2", "latency_s")
responses_case(
    "unknown-column", "item_id,model,response,mood\nq00,legacy,Hi,ok\n", "line 1", "mood"
)
responses_case("missing-model-column", "item_id,response\nq00,Hi\n", "line 1", "model")
responses_case("jsonl-tokens-list", '{"item_id": "q12", "model": "legacy", "response": "Hi", "input_tokens": [1]}\n',
               "line 1", "input_tokens", name="resp.jsonl")  # fmt: skip
responses_case("jsonl-tokens-inf", '{"item_id": "q12", "model": "legacy", "response": "Hi", "input_tokens": 1e400}\n',
               "line 1", "input_tokens", name="resp.jsonl")  # fmt: skip
responses_case("jsonl-response-number", '{"item_id": "q12", "model": "legacy", "response": 7}\n',
               "line 1", "response", name="resp.jsonl")  # fmt: skip
responses_case("jsonl-surrogate", '{"item_id": "q12", "model": "legacy", "response": "\\udc00"}\n',
               "line 1", "response", name="resp.jsonl")  # fmt: skip
responses_case("latin-1", (RESP_HEADER + "q12,legacy,Très bien,,,\n").encode("latin-1"), "UTF-8")


# -- replay files (read by generate) -------------------------------------------------------------


def replay_case(id: str, content: str | bytes, *expect: str) -> None:
    CASES.append(Case(f"replay-{id}", ("generate", "--retry-failed"), {"legacy.jsonl": content},
                      ("legacy.jsonl", *expect)))  # fmt: skip


replay_case("bad-json", '{"item_id": "q00", "response": \n', "line 1")
replay_case("unknown-item", '{"item_id": "z1", "response": "Hi"}\n', "line 1", "item")
replay_case("twice", '{"item_id": "q00", "response": "a"}\n{"item_id": "q00", "response": "b"}\n',
            "line 2")  # fmt: skip
replay_case("no-response", '{"item_id": "q00"}\n', "line 1", "response")
replay_case("tokens", '{"item_id": "q00", "response": "a", "output_tokens": -1}\n', "line 1",
            "output_tokens")  # fmt: skip
replay_case("latin-1", '{"item_id": "q00", "response": "Très"}\n'.encode("latin-1"), "UTF-8")
replay_case("folder", lambda f: (f / "legacy.jsonl").unlink() or (f / "legacy.jsonl").mkdir())
CASES.append(Case("replay-missing", ("generate",), {"legacy.jsonl": None}, ("legacy.jsonl",)))


# -- per-response rows (counts --rows) and counts (fit --counts) ---------------------------------

ROWS_HEADER = "item_id,model,segment,group,dimension,level,human\n"


def rows_case(id: str, content: str | bytes, *expect: str, name: str = "bad-rows.csv") -> None:
    case(f"rows-{id}", "counts", "--rows", name, "--out", "c.csv", expect=(name, *expect),
         **{name.replace(".", "__"): content})  # fmt: skip


rows_case("missing-column", "item_id,model,segment\nq00,legacy,na\n", "level")
rows_case("human", ROWS_HEADER + "q00,legacy,na,,style,pass,maybe\n", "human")
rows_case("human-two", ROWS_HEADER + "q00,legacy,na,,style,pass,2\n", "human")
rows_case("two-levels", ROWS_HEADER + "q00,legacy,na,,style,pass,\nq00,legacy,na,,style,fail,1\n",
          "two different levels")  # fmt: skip
rows_case("empty", "", "rows")
rows_case("latin-1", (ROWS_HEADER + "q00,légacy,na,,style,pass,\n").encode("latin-1"), "rows")
rows_case("suffix", ROWS_HEADER, "unsupported", name="rows.txt")
rows_case("jsonl-bad", '{"item_id": "q00"\n', "rows", name="bad-rows.jsonl")
rows_case("parquet-corrupt", b"PAR1 nonsense", "rows", name="bad-rows.parquet")
COST_GATE = "  - {name: price, dimension: cost, better: lower, margin: 0.1, relative: true}\n"
study_case("cost-gate-group", STUDY + COST_GATE.replace("relative: true", "group: answer"),
           "gates[2].group")  # fmt: skip
study_case("cost-gate-scope", STUDY + COST_GATE.replace("relative: true", "scope: both"),
           "gates[2].scope")  # fmt: skip
study_case("cost-gate-higher", STUDY + COST_GATE.replace("lower", "higher"), "gates[2].better")
study_case("cost-gate-margin", STUDY + COST_GATE.replace("0.1,", "-0.1,"), "gates[2].margin")
study_case("relative-quality-gate", edit("margin: 0.05}\n  - {name: style",
                                         "margin: 0.05, relative: true}\n  - {name: style"),
           "gates[0].relative")  # fmt: skip
study_case("cost-as-dimension", STUDY + "dimensions: [refusal, style, cost]\n", "dimensions[2]")
case(
    "rows-missing",
    "counts",
    "--rows",
    "absent.csv",
    "--out",
    "c.csv",
    expect=("absent.csv", "not found"),
)
case("rows-folder", "counts", "--rows", "folder", "--out", "c.csv", expect=("folder",),
     folder=lambda f: (f / "folder").mkdir())  # fmt: skip
case("counts-out-folder", "counts", "--out", "nowhere/c.csv", expect=("nowhere",))
case("counts-out-suffix", "counts", "--out", "c.txt", expect=("c.txt", "unsupported"))

COUNTS_HEADER = "dimension,model,segment,group,level,human,n\n"


def counts_case(id: str, content: str | bytes, *expect: str, name: str = "bad.csv") -> None:
    case(f"counts-{id}", "fit", "--counts", name, expect=(name, *expect),
         **{name.replace(".", "__"): content})  # fmt: skip


counts_case("missing-column", "dimension,model,segment,level,human,n\n", "group")
counts_case("extra-column", COUNTS_HEADER.strip() + ",x\nstyle,legacy,na,,pass,,3,1\n", "x")
counts_case("model", COUNTS_HEADER + "style,gpt,na,,pass,,3\n", "line 2", "model")
counts_case("segment", COUNTS_HEADER + "style,legacy,mars,,pass,,3\n", "line 2", "segment")
counts_case("human", COUNTS_HEADER + "style,legacy,na,,pass,yes,3\n", "line 2", "human")
counts_case("n-negative", COUNTS_HEADER + "style,legacy,na,,pass,,-3\n", "line 2", "column n")
counts_case("n-fraction", COUNTS_HEADER + "style,legacy,na,,pass,,2.5\n", "line 2", "column n")
counts_case("n-text", COUNTS_HEADER + "style,legacy,na,,pass,,many\n", "line 2", "column n")
counts_case("n-empty", COUNTS_HEADER + "style,legacy,na,,pass,,\n", "line 2", "column n")
counts_case("n-huge", COUNTS_HEADER + "style,legacy,na,,pass,,99999999999999999999999\n",
            "line 2", "column n")  # fmt: skip
counts_case("n-inf", COUNTS_HEADER + "style,legacy,na,,pass,,inf\n", "line 2", "column n")
counts_case("empty-level", COUNTS_HEADER + "style,legacy,na,,,,3\n", "line 2", "level")
counts_case("empty-dimension", COUNTS_HEADER + ",legacy,na,,pass,,3\n", "line 2", "dimension")
counts_case("empty", "", "counts")
counts_case("header-only", COUNTS_HEADER, "only its header")
counts_case("latin-1", (COUNTS_HEADER + "style,légacy,na,,pass,,3\n").encode("latin-1"), "counts")
counts_case("quote", COUNTS_HEADER + 'style,"legacy,na,,pass,,3\n', "counts")
counts_case("suffix", COUNTS_HEADER, "unsupported", name="counts.txt")
counts_case("parquet-corrupt", b"PAR1 nonsense", "counts", name="bad.parquet")
counts_case("jsonl", '{"dimension": "style"}\n', "missing column", name="bad.jsonl")
case("counts-missing", "fit", "--counts", "absent.csv", expect=("absent.csv", "not found"))
case("counts-folder", "fit", "--counts", "folder", expect=("folder",),
     folder=lambda f: (f / "folder").mkdir())  # fmt: skip
case(
    "fit-out-folder",
    "fit",
    "--counts",
    "counts.csv",
    "--out",
    "nowhere/r.json",
    expect=("nowhere",),
)
case(
    "fit-draws-folder",
    "fit",
    "--counts",
    "counts.csv",
    "--draws",
    "nowhere/d.nc",
    expect=("nowhere",),
)
case(
    "fit-engine", "fit", "--counts", "counts.csv", "--engine", "magic", expect=("--engine", "magic")
)
case("fit-interval", "fit", "--counts", "counts.csv", "--interval", "1.5", expect=("interval",))
case("fit-gate-dimension", "fit", "--counts", "c2.csv", expect=("gates[1]", "style"),
     c2__csv=COUNTS_HEADER + "refusal,legacy,na,answer,complied,0,3\nrefusal,cand,na,answer,refused,1,3\n")  # fmt: skip


MEASUREMENTS_HEADER = "item_id,model,segment,cost,latency_s\n"


def measurements_case(id: str, content: str | bytes, *expect: str, name: str = "m.csv") -> None:
    case(f"measurements-{id}", "fit", "--counts", "counts.csv", "--measurements", name,
         expect=(name, *expect), **{name.replace(".", "__"): content})  # fmt: skip


measurements_case("no-values", "item_id,model,segment\nq00,legacy,na\n", "cost or latency_s")
measurements_case("extra-column", MEASUREMENTS_HEADER.strip() + ",x\nq00,legacy,na,1,1,1\n", "x")
measurements_case("model", MEASUREMENTS_HEADER + "q00,gpt,na,0.1,1\n", "line 2", "model")
measurements_case("segment", MEASUREMENTS_HEADER + "q00,legacy,mars,0.1,1\n", "line 2",
                  "segment")  # fmt: skip
measurements_case("cost-text", MEASUREMENTS_HEADER + "q00,legacy,na,cheap,1\n", "line 2", "cost")
measurements_case("cost-negative", MEASUREMENTS_HEADER + "q00,legacy,na,-1,1\n", "line 2", "cost")
measurements_case("latency-inf", MEASUREMENTS_HEADER + "q00,legacy,na,0.1,inf\n", "line 2",
                  "latency_s")  # fmt: skip
measurements_case("latency-nan", MEASUREMENTS_HEADER + "q00,legacy,na,0.1,nan\n", "line 2",
                  "latency_s")  # fmt: skip
measurements_case("twice", MEASUREMENTS_HEADER + "q00,legacy,na,0.1,1\nq00,legacy,na,0.2,1\n",
                  "line 3", "twice")  # fmt: skip
measurements_case("empty-item", MEASUREMENTS_HEADER + ",legacy,na,0.1,1\n", "line 2", "item_id")
measurements_case("header-only", MEASUREMENTS_HEADER, "only its header")
measurements_case("suffix", MEASUREMENTS_HEADER, "unsupported", name="m.txt")
case("measurements-missing", "fit", "--counts", "counts.csv", "--measurements", "absent.csv",
     expect=("absent.csv", "not found"))  # fmt: skip


# -- labels ----------------------------------------------------------------------------------------

LABEL_HEADER = "item_id,model,dimension,annotator,label,time,note\n"


def labels_case(id: str, content: str | bytes, *expect: str, name: str = "new-labels.csv") -> None:
    case(f"labels-{id}", "labels", "import", name, expect=(name, *expect),
         **{name.replace(".", "__"): content})  # fmt: skip


labels_case(
    "missing-column", "item_id,model,dimension,label\nq00,legacy,style,1\n", "line 1", "annotator"
)
labels_case("label", LABEL_HEADER + "q07,legacy,style,alice,yes,,\n", "line 2", "label")
labels_case("label-two", LABEL_HEADER + "q07,legacy,style,alice,2,,\n", "line 2", "label")
labels_case(
    "unknown-annotator", LABEL_HEADER + "q00,legacy,style,mallory,1,,\n", "line 2", "mallory"
)
labels_case("time", LABEL_HEADER + "q07,legacy,style,alice,1,yesterday,\n", "line 2", "time")
labels_case("time-number", LABEL_HEADER + "q07,legacy,style,alice,1,12345,\n", "line 2", "time")
labels_case("unknown-item", LABEL_HEADER + "z9,legacy,style,alice,1,,\n", "line 2", "z9")
labels_case("unknown-model", LABEL_HEADER + "q00,gpt,style,alice,1,,\n", "line 2", "gpt")
labels_case("unknown-dimension", LABEL_HEADER + "q07,legacy,tone,alice,1,,\n", "line 2", "tone")
labels_case("twice", LABEL_HEADER + "q07,legacy,style,alice,1,,\nq07,legacy,style,alice,0,,\n",
            "line 3")  # fmt: skip
labels_case("fields", LABEL_HEADER + "q07,legacy,style,alice,1,,,extra\n", "line 2")
labels_case(
    "latin-1", (LABEL_HEADER + "q00,legacy,style,alice,1,,très\n").encode("latin-1"), "UTF-8"
)
labels_case("utf-16", (LABEL_HEADER + "q07,legacy,style,alice,1,,\n").encode("utf-16"), "UTF-8")
labels_case("empty", "", "empty")
labels_case("note-huge", LABEL_HEADER + "q07,legacy,style,alice,1,," + "x" * 100_000 + "\n",
            "line 2", "note")  # fmt: skip
labels_case("json-bad", "[{", "JSON", name="ls.json")
labels_case("json-not-list", '{"a": 1}', "list", name="ls.json")
labels_case("json-deep", "[" * 100000 + "]" * 100000, "ls.json", name="ls.json")
labels_case("suffix", LABEL_HEADER, "unsupported label file type", name="labels.txt")
case("labels-missing", "labels", "import", "absent.csv", expect=("absent.csv", "not found"))
case("labels-folder", "labels", "import", "folder", expect=("folder",),
     folder=lambda f: (f / "folder").mkdir())  # fmt: skip
case("labels-export-folder", "labels", "export", "--out", "nowhere/l.csv", expect=("nowhere",))
case(
    "labels-export-format",
    "labels",
    "export",
    "--out",
    "l.csv",
    "--format",
    "xml",
    expect=("--format",),
)


# -- the label queue ---------------------------------------------------------------------------------

QUEUE_HEADER = "item_id,model,dimension,priority,annotators\n"


def queue_case(id: str, content: str | bytes, *expect: str) -> None:
    case(f"queue-{id}", "queue", "--from", "q.csv", expect=("q.csv", *expect), q__csv=content)


queue_case("missing-column", "item_id\nq00\n", "line 1", "model")
queue_case("unknown-dimension", QUEUE_HEADER + "q00,legacy,tone,1,1\n", "line 2", "tone")
queue_case("unknown-item", QUEUE_HEADER + "z9,legacy,style,1,1\n", "z9")
queue_case("unknown-model", QUEUE_HEADER + "q00,gpt,style,1,1\n", "gpt")
queue_case("priority", QUEUE_HEADER + "q00,legacy,style,high,1\n", "line 2", "priority")
queue_case("priority-inf", QUEUE_HEADER + "q00,legacy,style,inf,1\n", "line 2", "priority")
queue_case("annotators", QUEUE_HEADER + "q00,legacy,style,1,0\n", "line 2", "annotators")
queue_case("annotators-text", QUEUE_HEADER + "q00,legacy,style,1,two\n", "line 2", "annotators")
queue_case("twice", QUEUE_HEADER + "q00,legacy,style,1,1\nq00,legacy,style,2,1\n", "line 3")
queue_case("fields", QUEUE_HEADER + "q00,legacy,style,1,1,9\n", "line 2")
queue_case("latin-1", (QUEUE_HEADER + "q00,légacy,style,1,1\n").encode("latin-1"), "UTF-8")
queue_case("empty", "", "q.csv")
case("queue-folder", "queue", "--from", "folder", expect=("folder",),
     folder=lambda f: (f / "folder").mkdir())  # fmt: skip
case("queue-missing", "queue", "--from", "absent.csv", expect=("absent.csv", "not found"))
case("queue-dimension", "queue", "--random", "2", "--dimension", "tone", expect=("tone",))


# -- outputs, workspace files and other options --------------------------------------------------

case("export-out-folder", "export", "items", "--out", "nowhere/x.csv", expect=("nowhere",))
case("export-suffix", "export", "items", "--out", "x.txt", expect=("x.txt", "unsupported"))
case("export-table", "export", "things", "--out", "x.csv", expect=("things",))
case("report-out-folder", "report", "--out", "nowhere/r.html", expect=("nowhere",))
case("report-format", "report", "--format", "pdf", expect=("--format", "pdf"))
case("run-out-folder", "run", "--out", "nowhere/r.html", expect=("nowhere",))
case("next-out-folder", "next", "--budget", "5", "--out", "nowhere/q.csv", expect=("nowhere",))
case("next-dimension", "next", "--budget", "5", "--dimension", "tone", expect=("tone",))
case("generate-model", "generate", "--models", "gpt", expect=("--models", "gpt"))
case("score-signal", "score", "--signals", "nothing", expect=("--signals", "nothing"))
case("workspace-not-sqlite", *PROBE, expect=("changeover.db", "not a changeover workspace"),
     changeover__db=b"not a database at all" * 100)  # fmt: skip
case("workspace-missing", *PROBE, expect=("changeover.db", "not found"), changeover__db=None)
case("workspace-newer", *PROBE, expect=("changeover.db", "newer"),
     changeover__db=lambda f: sqlite3.connect(f / "changeover.db").execute("PRAGMA user_version = 99").connection.commit())  # fmt: skip
case("annotators-revoke-unknown", "annotators", "revoke", "nobody", expect=("nobody",))
case("annotators-add-twice", "annotators", "add", "alice", expect=("alice",))
case("annotators-add-blank", "annotators", "add", " ", expect=("name",))


# -- valid input that must be taken (each once refused) -----------------------------------------

GOOD: list[Case] = []
BOM = b"\xef\xbb\xbf"


def good(id: str, *args: str, **files: Any) -> None:
    names = {name.replace("__", "."): content for name, content in files.items()}
    GOOD.append(Case(f"good-{id}", args, names))


good(
    "items-csv-bom",
    "import",
    "items",
    "new.csv",
    new__csv=BOM + (ITEM_HEADER + "z1,Hi?,na,,\n").encode(),
)
good("items-jsonl-bom", "import", "items", "new.jsonl",
     new__jsonl=BOM + b'{"item_id": "z1", "prompt": "Hi?", "segment": "na"}\n')  # fmt: skip
good(
    "items-crlf",
    "import",
    "items",
    "new.csv",
    new__csv=(ITEM_HEADER + "z1,Hi?,na,,\n").replace("\n", "\r\n"),
)
good("items-long-cell", "import", "items", "new.csv",
     new__csv=ITEM_HEADER + 'z1,"' + "word " * 60_000 + '",na,,\n')  # fmt: skip
good("items-formula-cell", "import", "items", "new.csv", new__csv=ITEM_HEADER + "z1,'=1+1,na,,\n")
good("responses-long", "import", "responses", "r.jsonl",
     r__jsonl=json.dumps({"item_id": "q12", "model": "legacy", "response": "x" * 300_000}) + "\n")  # fmt: skip
good(
    "labels-bom",
    "labels",
    "import",
    "l.csv",
    l__csv=BOM
    + (LABEL_HEADER + "q07,legacy,style,alice,1,2026-12-04T10:00:00+00:00,fine\n").encode(),
)
good(
    "queue-bom",
    "queue",
    "--from",
    "q.csv",
    q__csv=BOM + (QUEUE_HEADER + "q00,legacy,style,1,1\n").encode(),
)
GOOD_COUNTS = COUNTS_HEADER + "".join(
    f"{d},{m},{seg},{g},{level},{human},{n}\n"
    for d, g, levels in (
        ("style", "", ("pass", "fail")),
        ("refusal", "answer", ("complied", "refused")),
    )
    for m in ("legacy", "cand")
    for seg in SEGMENTS
    for level, human, n in (
        (levels[0], 1, 4),
        (levels[0], "", 20),
        (levels[1], 0, 3),
        (levels[1], "", 6),
    )
)
good("counts-bom", "fit", "--counts", "c.csv", "--num-samples", "100", "--num-warmup", "100",
     c__csv=BOM + GOOD_COUNTS.encode())  # fmt: skip


# -- running them --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stderr: str
    after: dict[str, list[tuple[Any, ...]]] | None


def _run(server: ForkServer, base: Path, work: Path, item: Case) -> Outcome:
    folder = work / item.id
    shutil.copytree(base, folder)
    for name, content in item.files.items():
        path = folder / name
        if content is None:
            path.unlink()
        elif callable(content):
            content(folder)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    done = server.run(list(item.args), cwd=folder)
    db = folder / "changeover.db"
    # The workspace cases replace the workspace itself: nothing to compare.
    after = _dump(db) if db.is_file() and not item.id.startswith("workspace-") else None
    shutil.rmtree(folder)
    return Outcome(done.returncode, done.stderr, after)


WORKERS = max(2, min(4, os.cpu_count() or 2))


@pytest.fixture(scope="module")
def base_tables(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    base = tmp_path_factory.mktemp("bad-input") / "study"
    _build(base)
    return base, _dump(base / "changeover.db")


@pytest.fixture(scope="module")
def outcomes(
    base_tables: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Outcome]:
    base, _ = base_tables
    work = tmp_path_factory.mktemp("cases")
    servers: queue.Queue[ForkServer] = queue.Queue()
    for _ in range(WORKERS):
        servers.put(ForkServer(ENV))

    def one(item: Case) -> Outcome:
        server = servers.get()
        try:
            return _run(server, base, work, item)
        finally:
            servers.put(server)

    cases = [*CASES, *GOOD]
    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            return dict(zip([c.id for c in cases], pool.map(one, cases), strict=True))
    finally:
        while not servers.empty():
            servers.get().close()


def test_there_are_at_least_200_cases_each_named_once() -> None:
    assert len(CASES) >= 200
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("item", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    outcomes: dict[str, Outcome], base_tables: tuple[Path, dict[str, Any]], item: Case
) -> None:
    outcome = outcomes[item.id]
    before = base_tables[1]
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert outcome.returncode == 2, outcome.stderr
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), outcome.stderr
    for expected in item.expect:
        assert expected in lines[0], f"{expected!r} not in {lines[0]!r}"
    if outcome.after is not None:
        assert outcome.after == before, "the workspace changed"
        runs = outcome.after.get("runs", [])
        assert not [r for r in runs if "running" in r], "a run left running"


@pytest.mark.parametrize("item", GOOD, ids=lambda c: c.id)
def test_valid_input_is_taken(outcomes: dict[str, Outcome], item: Case) -> None:
    outcome = outcomes[item.id]
    assert outcome.returncode == 0, outcome.stderr
