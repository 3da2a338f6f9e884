"""Arrow's peak memory while a fresh process profiles a file, streamed or read whole first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

_MEASURE = """
import json, sys
import pyarrow as pa, pyarrow.csv as pcsv, pyarrow.parquet as pq
from mloop.monitoring import Profile, _profile
_profile.STREAM_ROWS = 20_000
path, mode = sys.argv[1], sys.argv[2]
read_whole = pcsv.read_csv if path.endswith(".csv") else pq.read_table
data = path if mode == "streamed" else read_whole(path)
profile = Profile.from_data(data)
print(json.dumps({"peak": pa.default_memory_pool().max_memory(), "rows": profile.n_rows}))
"""


def wide_table(n: int, text_columns: int) -> pa.Table:
    """A float column and ``text_columns`` columns of 500 long labels, seeded."""
    rng = np.random.default_rng(0)
    words = np.array([f"category-{i:04d}-with-a-long-label" for i in range(500)])
    return pa.table(
        {
            "x": rng.normal(size=n),
            **{f"s{i}": words[rng.integers(0, 500, n)] for i in range(text_columns)},
        }
    )


def profile_peaks(path: Path, rows: int) -> dict[str, int]:
    """``{"streamed": bytes, "whole": bytes}``: Arrow's peak allocation while profiling ``path``
    (a ``.csv`` or Parquet file of ``rows`` rows) in a fresh interpreter each way."""
    peaks = {}
    for mode in ("streamed", "whole"):
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, str(path), mode],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["rows"] == rows
        peaks[mode] = out["peak"]
    return peaks
