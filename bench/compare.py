"""mloop against an earlier mloop: is a change slower? The mloop side of the tracking, registry and
drift benchmarks, on this tree and on a base revision, interleaved round by round.

    .venv/bin/python bench/compare.py --base <git-rev> [--rounds 3] [--only tracking,registry,drift]

The base revision is checked out into a temporary git worktree and run with this venv (its own bench
scripts, its own ``src`` first on ``PYTHONPATH``). Each round runs every job once on each tree, the
order alternating between rounds so that a shift in the machine's background load hits both. The
table shows the median of each measurement on each tree and the slowdown: time now / time before
(> 1: slower now; for throughputs, points per second, the inverse ratio).
Peers are not run: with the peer unchanged, an unchanged mloop time means an unchanged ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR, quiet_env, run_worker  # noqa: E402

TRACKING_SECTIONS = "abcd"  # (e), the 100 MB artifact, measures the disk more than mloop


@contextmanager
def _worktree(rev: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="mloop-base-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(path), rev],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, capture_output=True
            )


def _jobs(
    only: set[str],
    drift_files: dict[str, Path] | None,
    sections: str = TRACKING_SECTIONS,
    repeat: int = 3,
) -> list[tuple[str, list[str]]]:
    """Each job is one worker process; it repeats its work ``repeat`` times, as the benchmarks do
    (the first repetition in a process pays one-time costs the others do not)."""
    jobs: list[tuple[str, list[str]]] = []
    if "tracking" in only:
        for s in sections:
            args = ["tracking.py", "--worker", "mloop", "--section", s, "--backend", "sqlite"]
            jobs.append((f"tracking ({s})", [*args, "--repeat", str(repeat), "--scale", "1"]))
    if "registry" in only:
        jobs.append(("registry", ["registry.py", "--worker", "mloop", "--repeat", str(repeat)]))
    if "drift" in only and drift_files is not None:
        files = [f"--{k}={v}" for k, v in drift_files.items()]
        argv = ["drift.py", "--worker", "mloop", "--repeat", str(repeat), *files]
        jobs.append(("drift 1M rows", argv))
    return jobs


def _flatten(prefix: str, data: Any, out: dict[str, list[float]]) -> None:
    """Every number (or list of numbers) of a worker's result, by its path."""
    if isinstance(data, bool) or data is None:
        return
    if isinstance(data, (int, float)):
        out.setdefault(prefix, []).append(float(data))
    elif isinstance(data, list) and data and all(isinstance(x, (int, float)) for x in data):
        out.setdefault(prefix, []).extend(float(x) for x in data)
    elif isinstance(data, dict):
        for k, v in data.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)


# Measurements that are times (seconds); the rest (sizes, counts, verdicts) are not compared.
def _is_time(job: str, key: str) -> bool:
    if job.startswith("drift"):
        return key in ("times", "window_times", "profile_build_s", "profile_load_s")
    return key.startswith("results.")


def _is_rate(key: str) -> bool:
    """Tracking's ingest measurements are throughputs (points per second): higher is better."""
    return key.startswith("results.ingest_")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", required=True, help="the git revision to compare against")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--repeat", type=int, default=3, help="repetitions inside each worker")
    p.add_argument("--only", default="tracking,registry,drift")
    p.add_argument("--sections", default=TRACKING_SECTIONS, help="tracking sections (of 'abcd')")
    args = p.parse_args()
    only = set(args.only.split(","))
    drift_files = None
    if "drift" in only:
        from drift import data_files

        drift_files = data_files(1_000_000)
    samples: dict[tuple[str, str, str], list[float]] = {}
    with _worktree(args.base) as base:
        trees = {"this": ROOT, "base": base}
        for r in range(args.rounds):
            order = ["base", "this"] if r % 2 == 0 else ["this", "base"]
            for job, argv in _jobs(only, drift_files, args.sections, args.repeat):
                for tree in order:
                    root = trees[tree]
                    env = quiet_env(OMP_NUM_THREADS="2")
                    env["PYTHONPATH"] = str(root / "src") + os.pathsep + env.get("PYTHONPATH", "")
                    print(f"[compare] round {r + 1}: {job} on {tree}", file=sys.stderr, flush=True)
                    script = str(root / "bench" / argv[0])
                    result = run_worker(sys.executable, [script, *argv[1:]], env=env)
                    flat: dict[str, list[float]] = {}
                    _flatten("", result, flat)
                    for key, values in flat.items():
                        if _is_time(job, key):
                            samples.setdefault((job, key, tree), []).extend(values)
    rows = []
    for job, key in sorted({(j, k) for j, k, _ in samples}):
        before, after = samples.get((job, key, "base")), samples.get((job, key, "this"))
        if not before or not after:
            continue
        b, a = statistics.median(before), statistics.median(after)
        # The ratio is always "time now / time before": > 1 is slower, for rates too.
        ratio = b / a if _is_rate(key) else a / b
        rows.append({"job": job, "measure": key, "base": b, "this": a, "slowdown": ratio})
    print(f"\n{'job':<16} {'measure':<34} {'base':>10} {'this':>10} {'slowdown':>9}")
    for row in rows:
        print(
            f"{row['job']:<16} {row['measure']:<34} {row['base']:>10.4g} {row['this']:>10.4g} "
            f"{row['slowdown']:>9.2f}"
        )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / "compare.json"
    out.write_text(json.dumps({"base": args.base, "rounds": args.rounds, "rows": rows}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
