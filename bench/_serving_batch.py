"""Section (e) of ``bench/serving.py``: batch scoring with ``predict_file`` vs a bare predict.

The timing and the memory are measured in worker processes (``bench/serving.py --worker
batch-time|batch-mem``), memory each in a fresh one: Arrow's pool only records a high-water mark.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import numpy as np
from _serving_fmt import goal_text
from _serving_setup import ALIAS, Workspace, model_name

GOAL_BATCH = 1.5


def write_batch_data(path: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    df = X.iloc[rng.integers(0, len(X), rows)].reset_index(drop=True)
    df = df * rng.uniform(0.95, 1.05, size=df.shape)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, row_group_size=100_000)


def section_batch(ws: Workspace, args: argparse.Namespace) -> dict[str, Any]:
    data = ws.root / "batch.parquet"
    write_batch_data(data, args.batch_rows)
    script = str(c.BENCH_DIR / "serving.py")
    common = [
        "--workdir",
        str(ws.root),
        "--models",
        ",".join(args.models),
        "--batch-size",
        str(args.batch_size),
    ]
    print(f"[bench] batch scoring {args.batch_rows:,} rows ...", file=sys.stderr, flush=True)
    env = c.quiet_env()
    timing = c.run_worker(
        sys.executable,
        [script, "--worker", "batch-time", "--repeat", str(args.batch_repeat), *common],
        env=env,
    )
    memory: dict[str, dict[str, Any]] = {}
    for model in args.models:
        for which in ("bare", "mloop"):
            res = c.run_worker(
                sys.executable,
                [script, "--worker", "batch-mem", "--which", which, "--one-model", model, *common],
                env=env,
            )
            memory.setdefault(model, {})[which] = res
    table, out = [], {}
    whole_mb = None
    for model in args.models:
        t = timing["models"][model]
        bare, ours = c.median(t["bare"]), c.median(t["mloop"])
        r = ours / bare
        fastest = min(t["mloop"]) / min(t["bare"])
        mem = memory[model]
        whole_mb = mem["bare"]["table_mb"]
        peak = {w: (mem[w]["arrow_peak"] + mem[w]["python_peak"]) / 1e6 for w in ("bare", "mloop")}
        table.append(
            [
                model,
                c.fmt_value(bare, "s"),
                c.fmt_value(ours, "s"),
                f"{r:.2f}x ({fastest:.2f}x)",
                f"{peak['bare']:,.0f} MB",
                f"{peak['mloop']:,.0f} MB",
                goal_text(r, GOAL_BATCH, at_least=False, fmt="{:g}x"),
            ]
        )
        out[model] = {
            "bare_s": t["bare"],
            "mloop_s": t["mloop"],
            "ratio": r,
            "ratio_fastest": fastest,
            "peak_mb": peak,
            "memory": mem,
        }
    print(
        f"\n(e) batch scoring of {args.batch_rows:,} rows of Parquet ({whole_mb:,.0f} MB in "
        f"memory, row groups of 100,000 rows), predict_file batch size {args.batch_size:,}; "
        f"median of {args.batch_repeat} alternating runs (in brackets: fastest vs fastest); "
        "peak = Arrow pool + tracemalloc"
    )
    c.print_table(
        [
            "model",
            "bare read + predict",
            "predict_file",
            "mloop/bare",
            "bare peak",
            "mloop peak",
            "goal",
        ],
        table,
    )
    return out


def _packaged(args: argparse.Namespace, model: str) -> Any:
    import mloop
    from mloop.config import Settings

    settings = Settings.from_env(env={}, home=str(Path(args.workdir) / "mloop-home"))
    return mloop.Registry(settings=settings).load(f"models:/{model_name(model)}@{ALIAS}")


def worker_batch_time(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.workdir) / "batch.parquet"
    out: dict[str, Any] = {"models": {}}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        for model in args.models.split(","):
            out["models"][model] = _time_batch(_packaged(args, model), data, Path(tmp), args)
    return out


def _time_batch(pm: Any, data: Path, tmp: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Alternating runs of a bare read + predict and of predict_file, after one of each (checked
    to agree)."""
    import pyarrow.parquet as pq

    from mloop.serving import predict_file

    target = tmp / "out.parquet"

    def bare() -> Any:
        return pm.raw.predict(pq.read_table(data).to_pandas())

    def ours() -> Any:
        return predict_file(pm, data, target, batch_size=args.batch_size)

    expected = bare()
    ours()
    if not np.array_equal(pq.read_table(target)["prediction"].to_numpy(), expected):
        raise AssertionError(f"predict_file and model.predict disagree for {pm!r}")
    times: dict[str, list[float]] = {"bare": [], "mloop": []}
    for rep in range(args.repeat):
        for which, fn in (("bare", bare), ("mloop", ours))[:: 1 if rep % 2 == 0 else -1]:
            t0 = time.perf_counter()
            fn()
            times[which].append(time.perf_counter() - t0)
    return times


def worker_batch_mem(args: argparse.Namespace) -> dict[str, Any]:
    """Peak memory of one bare predict or one predict_file, in this fresh process: Arrow's pool
    (its high-water mark) + Python's allocations (tracemalloc, numpy included)."""
    import tracemalloc

    import pyarrow as pa
    import pyarrow.parquet as pq

    from mloop.serving import predict_file

    data = Path(args.workdir) / "batch.parquet"
    pm = _packaged(args, args.one_model)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        warm = Path(tmp) / "warm.parquet"  # imports and first-use caches, before measuring
        pq.write_table(pq.ParquetFile(data).read_row_group(0).slice(0, 100), warm)
        pm.raw.predict(pq.read_table(warm).to_pandas())
        predict_file(pm, warm, Path(tmp) / "w.parquet")
        tracemalloc.start()
        if args.which == "bare":
            table = pq.read_table(data)
            table_mb = table.nbytes / 1e6
            pm.raw.predict(table.to_pandas())
            del table
        else:
            table_mb = 0.0
            predict_file(pm, data, Path(tmp) / "out.parquet", batch_size=args.batch_size)
        python_peak = tracemalloc.get_traced_memory()[1]
    return {
        "arrow_peak": pa.default_memory_pool().max_memory(),
        "python_peak": python_peak,
        "table_mb": table_mb,
    }
