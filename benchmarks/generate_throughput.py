"""Throughput of `changeover generate` against a local server with 100 ms latency per request.

    python benchmarks/generate_throughput.py [--items 2000] [--concurrency 64] [--latency 0.1]
        [--processes 2]

Starts the fake OpenAI-compatible server (tests/fakes/llm_server.py) in its own process, imports
N items into a fresh workspace and runs `changeover generate` as a subprocess twice, sampling the
generate process's resident memory every 50 ms. Reports: generation wall time against the ideal
N / concurrency x latency, requests the server received on each run (the second must be 0), and
RSS over the run (peak, and at each tenth of the run, to show it stays flat).
Writes the numbers as JSON to stdout's last line; docs/generate.md records a run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHANGEOVER = [sys.executable, "-c", "from changeover.cli import main; main()"]


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _server_requests(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_count", timeout=5) as answer:
        return int(json.loads(answer.read())["requests"])


def _run_generate(folder: Path) -> dict[str, object]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [*CHANGEOVER, "generate", "--models", "legacy", "--study", str(folder / "study.yaml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    samples: list[tuple[float, int]] = []
    while process.poll() is None:
        rss = _rss_kib(process.pid)
        if rss is not None:
            samples.append((time.perf_counter() - started, rss))
        time.sleep(0.05)
    out = process.communicate()[0]
    if process.returncode != 0:
        raise SystemExit(f"generate failed ({process.returncode}):\n{out}")
    total = time.perf_counter() - started
    db = folder / "changeover.db"
    import sqlite3

    with sqlite3.connect(db) as connection:
        (detail,) = connection.execute(
            "SELECT detail FROM runs WHERE kind = 'generate' ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
    summary = json.loads(detail)["summary"][0]
    return {"command_s": total, "summary": summary, "rss_samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument(
        "--processes", type=int, default=1, help="the model's `processes:` setting (HTTP workers)"
    )
    args = parser.parse_args()

    load_before = round(os.getloadavg()[0], 2)
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.llm_server", "--latency", str(args.latency)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "study.yaml").write_text(
                "incumbent: legacy\ncandidates: [cand]\nsegments: {na: 1}\nmodels:\n"
                f"  legacy: {{provider: openai, model: bench, base_url: "
                f'"http://127.0.0.1:{port}/v1", concurrency: {args.concurrency}, '
                f"processes: {args.processes}, max_tokens: 64}}\n"
                f"  cand: {{provider: openai, model: other, base_url: "
                f'"http://127.0.0.1:{port}/v1"}}\n'
            )
            lines = ["item_id,prompt,segment"]
            lines += [f"q{i:06d},benchmark question number {i},na" for i in range(args.items)]
            (folder / "items.csv").write_text("\n".join(lines) + "\n")
            subprocess.run(
                [*CHANGEOVER, "import", "items", str(folder / "items.csv"), "--study",
                 str(folder / "study.yaml")],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            before = _server_requests(port)
            first = _run_generate(folder)
            after_first = _server_requests(port)
            second = _run_generate(folder)
            after_second = _server_requests(port)
    finally:
        server.terminate()
        server.wait(timeout=10)

    ideal = args.items / args.concurrency * args.latency
    summary = first["summary"]
    assert isinstance(summary, dict)
    samples = first["rss_samples"]
    assert isinstance(samples, list)
    rss = [kib for _, kib in samples]
    tenths = [rss[min(len(rss) - 1, int(len(rss) * q / 10))] / 1024 for q in range(1, 11)]
    result = {
        "items": args.items,
        "concurrency": args.concurrency,
        "processes": args.processes,
        "latency_s": args.latency,
        "ideal_s": round(ideal, 3),
        "generate_s": summary["elapsed_s"],
        "ratio_to_ideal": round(summary["elapsed_s"] / ideal, 3),
        "command_s": round(float(first["command_s"]), 3),  # type: ignore[arg-type]
        "first_run_requests": after_first - before,
        "first_run_done": summary["done"],
        "second_run_requests": after_second - after_first,
        "second_run_cached": second["summary"]["cached"],  # type: ignore[index]
        "second_run_command_s": round(float(second["command_s"]), 3),  # type: ignore[arg-type]
        "peak_rss_mib": round(max(rss) / 1024, 1),
        "rss_mib_at_tenths": [round(x, 1) for x in tenths],
        "p50_latency_s": summary["latency_p50_s"],
        "p95_latency_s": summary["latency_p95_s"],
        "cpus": os.cpu_count(),
        "load_average_1min_before": load_before,
    }
    print(f"ideal {ideal:.3f}s, generate {summary['elapsed_s']:.3f}s "
          f"({result['ratio_to_ideal']}x), second run {result['second_run_requests']} requests, "
          f"peak RSS {result['peak_rss_mib']} MiB")  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
