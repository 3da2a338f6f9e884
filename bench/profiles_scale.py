"""Peak memory of profiling a large Parquet file (issue 14: 10M rows, under 1 GB above the
interpreter), and the time of profiling it in this process and on a process pool.

The table is bench/drift.py's 27 columns, generated seeded in 1M-row row groups into a temporary
folder (one file, and the same rows as 8 files for the pool). Each measurement runs in a fresh
child process: peak RSS (VmHWM) minus the RSS after the imports; for the pool, the largest
worker's whole peak RSS (interpreter included) is shown too.

    flock /tmp/mloop-bench.lock .venv/bin/python bench/profiles_scale.py [--rows 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _common import RESULTS_DIR, median, print_table  # noqa: E402
from drift import generate  # noqa: E402

GROUP = 1_000_000
GOAL_MB = 1024

_CHILD = """
import json, sys, time
def rss(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
from mloop.monitoring import Profile, profile_partitions
import pyarrow, numpy, datasketches  # everything profiling imports, before the baseline
base = rss("VmRSS:")
path, executor = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if executor == "stream":
    p = Profile.from_data(path)
else:
    p = profile_partitions(path, executor=executor)
secs = time.perf_counter() - t
import resource
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # the largest worker
print(json.dumps({"secs": secs, "peak": rss("VmHWM:") - base, "worker": workers, "rows": p.n_rows}))
"""


def write_data(folder: Path, rows: int) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    single, parts = folder / "table.parquet", folder / "parts"
    parts.mkdir()
    per_part = max(rows // 8, 1)
    writer = None
    part_writer, part_rows, part_index = None, 0, 0
    for start in range(0, rows, GROUP):
        n = min(GROUP, rows - start)
        table = pa.table(generate(n, seed=start // GROUP, drift=False))
        writer = writer or pq.ParquetWriter(single, table.schema)
        writer.write_table(table, row_group_size=GROUP)
        for piece_start in range(0, n, per_part):
            piece = table.slice(piece_start, per_part)
            if part_writer is None:
                part_writer = pq.ParquetWriter(parts / f"part-{part_index}.parquet", table.schema)
            part_writer.write_table(piece)
            part_rows += piece.num_rows
            if part_rows >= per_part:
                part_writer.close()
                part_writer, part_rows, part_index = None, 0, part_index + 1
    if writer is not None:
        writer.close()
    if part_writer is not None:
        part_writer.close()
    return single, parts


def measure(path: Path, executor: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), executor],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, Any] = {"rows": args.rows, "columns": 27, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        single, parts = write_data(Path(tmp), args.rows)
        cases = {
            "one file, batches, this process": (single, "stream"),
            "8 files, one after another, this process": (parts, "local"),
            "8 files, process pool (2 CPUs)": (parts, "process"),
        }
        for name, (path, executor) in cases.items():
            runs = [measure(path, executor) for _ in range(args.repeat)]
            assert all(r["rows"] == args.rows for r in runs)
            results["cases"][name] = {
                "secs": median([r["secs"] for r in runs]),
                "peak_mb": median([r["peak"] / 2**20 for r in runs]),
                "worker_peak_mb": median([r["worker"] / 2**20 for r in runs]),
                "runs": runs,
            }
    rows = []
    for name, case in results["cases"].items():
        met = "met" if case["peak_mb"] < GOAL_MB else "MISSED"
        worker = f"{case['worker_peak_mb']:.0f} MB" if case["worker_peak_mb"] else "-"
        rows.append([name, f"{case['secs']:.1f} s", f"{case['peak_mb']:.0f} MB", worker, met])
    print(
        f"profile {args.rows:,} rows x 27 columns (medians of {args.repeat}; peak RSS above the "
        f"interpreter; goal < {GOAL_MB} MB)"
    )
    print_table(["case", "time", "peak above imports", "largest worker (RSS)", "goal"], rows)
    out = RESULTS_DIR / "profiles_scale.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
