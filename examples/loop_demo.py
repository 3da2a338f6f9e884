"""mloop's closed loop, end to end: production traffic drifts, mloop notices, retrains, gates the
candidate against the champion, promotes it and serving hot-swaps, every decision recorded.

Run with ``make demo`` (after the quickstart) or ``python examples/loop_demo.py``. The traffic is
generated (seeded; nothing is downloaded): 20 windows of 150 requests whose feature ``x0`` moves
by 2 standard deviations from window 6 on, into a region where the first model is wrong. Labels
arrive one window late. Everything lands in ``./.mloop`` (override with MLOOP_HOME).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import mloop.config


def cli(*args: str) -> None:
    print(f"\n$ mloop {' '.join(args)}", flush=True)
    code = subprocess.run([sys.executable, "-m", "mloop", *args]).returncode
    if code != 0:
        raise SystemExit(f"`mloop {' '.join(args)}` failed with exit code {code}")


def main() -> None:
    folder = Path(mloop.config.Settings.from_env().home) / "demo-loop"
    # train.parquet (history), windows/w000.parquet ... (requests), labels/w000.parquet ...
    cli("loop", "scenario", "covariate_shift", str(folder), "--windows", "20", "--rows", "150",
        "--change", "6", "--shift", "2", "--seed", "1")  # fmt: skip
    # v1 trained by the retraining template, promoted, served over HTTP; the agent acts after
    # each window: drift -> retrain -> check against the champion -> promote -> hot swap.
    model = f"demo-loop-{uuid.uuid4().hex[:6]}"  # a fresh model and deployment per run
    cli("loop", "replay", str(folder), "--label-delay", "1", "--model", model)
    cli("models", "history", model)  # the audit trail: every alias move with its check report


if __name__ == "__main__":
    main()
