#!/usr/bin/env python3
"""Benchmark: `smtool inspect --all` against `saved_model_cli show --all` on the same fixture,
whole process each time, in the same run on the same machine. Prints a Markdown table.

    cargo build --release && .venv/bin/python python/bench_inspect.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def median_seconds(cmd: list[str], runs: int) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run(cmd, check=True, capture_output=True, env=env)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--model", default="fixtures/digits/model")
    args = parser.parse_args()
    smtool = ROOT / "target" / "release" / "smtool"
    if not smtool.is_file():
        sys.exit("build first: cargo build --release")
    cli = pathlib.Path(sys.executable).parent / "saved_model_cli"
    model = str(ROOT / args.model)
    ours = median_seconds([str(smtool), "inspect", model, "--all"], args.runs)
    theirs = median_seconds([str(cli), "show", "--dir", model, "--all"], args.runs)
    print(f"Model: `{args.model}`, median of {args.runs} runs, whole process.\n")
    print("| command | median |")
    print("|---|---|")
    print(f"| `smtool inspect --all` | {ours * 1000:.2f} ms |")
    print(f"| `saved_model_cli show --all` | {theirs * 1000:.0f} ms |")
    print(f"\nsmtool is {theirs / ours:.0f}x faster.")


if __name__ == "__main__":
    main()
