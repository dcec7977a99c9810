"""A/B of commits on one machine, alternating (not part of the test suite): each commit's app, served in-process by
bench/profile_ingest.py (the current tree's copy), on the same PostgreSQL, round after round in rotating order.
Prints per commit the statements, checkouts and rollbacks of a request and the median over rounds of its own CPU
and wall time per request: the per-optimisation A/B of docs/PERFORMANCE.md ("Issue 12").

    .venv/bin/python bench/ab_commits.py --commits 785b75e,64789f8,HEAD --batch-size 1 --rounds 3 \\
        --database-url postgresql://postgres@127.0.0.1:5432/postgres [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTS = re.compile(r"per new request, mean of 5: statements ([\d.]+), commits ([\d.]+), rollbacks ([\d.]+), "
                    r"checkouts ([\d.]+)")
TIMES = re.compile(r"wall median ([\d.]+) ms, min ([\d.]+) ms; this process's CPU ([\d.]+) ms")


def checkout(commit: str, into: Path) -> Path:
    target = into / commit
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    shutil.copy(ROOT / "bench" / "profile_ingest.py", target / "bench" / "profile_ingest.py")
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", required=True, help="comma-separated commits, oldest first")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument("--json", metavar="PATH")
    options = parser.parse_args(argv)
    commits = options.commits.split(",")
    work = Path(tempfile.mkdtemp(prefix="seqab-"))
    samples: dict[str, list[dict]] = {c: [] for c in commits}
    try:
        trees = {c: checkout(c, work) for c in commits}
        for round_number in range(options.rounds):
            order = commits[round_number % len(commits):] + commits[:round_number % len(commits)]
            for commit in order:
                command = [sys.executable, "bench/profile_ingest.py", "--no-profile", "--batch-size",
                           str(options.batch_size), "--batches", str(options.batches)]
                if options.database_url:
                    command += ["--database-url", options.database_url]
                out = subprocess.run(command, cwd=trees[commit], capture_output=True, text=True, timeout=900)
                counts, times = COUNTS.search(out.stdout), TIMES.search(out.stdout)
                if not counts or not times:
                    raise RuntimeError(f"{commit}: {out.stdout[-500:]} {out.stderr[-1500:]}")
                samples[commit].append({
                    "statements": float(counts[1]), "commits": float(counts[2]), "rollbacks": float(counts[3]),
                    "checkouts": float(counts[4]), "wall_median_ms": float(times[1]), "wall_min_ms": float(times[2]),
                    "cpu_ms": float(times[3]), "load_average": os.getloadavg()[0]})
                print(f"round {round_number + 1} {commit}: {samples[commit][-1]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {}
    print(f"\n{'commit':<10} {'stmts':>6} {'checkouts':>9} {'rollbacks':>9} {'CPU ms':>7} {'wall p50':>8} {'wall min':>8}")
    for commit in commits:
        rows = samples[commit]
        summary[commit] = {key: round(statistics.median(r[key] for r in rows), 2) for key in rows[0]}
        s = summary[commit]
        print(f"{commit:<10} {s['statements']:>6} {s['checkouts']:>9} {s['rollbacks']:>9} {s['cpu_ms']:>7} "
              f"{s['wall_median_ms']:>8} {s['wall_min_ms']:>8}")
    if options.json:
        Path(options.json).write_text(json.dumps({"batch_size": options.batch_size, "batches": options.batches,
                                                  "summary": summary, "samples": samples}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
