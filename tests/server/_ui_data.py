"""Stores for the web UI's tests: a small project with everything a run page shows, and a project
of many runs written in bulk (one ``log_batch`` per run, which also creates it)."""

from __future__ import annotations

import io
import time

import numpy as np

from mloop.artifacts import BlobStore
from mloop.store import ArtifactEntry, DatasetVersion, MetricSeries, RunInput, Store


def png(width: int = 48, height: int = 32) -> bytes:
    """A real RGB gradient PNG (written by hand: no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (x * 5 % 256, y * 8 % 256, 160))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _series(values: np.ndarray, start: int = 0) -> MetricSeries:
    steps = np.arange(start, start + len(values))
    return MetricSeries(steps, 1_700_000_000_000 + steps, values)


def rich_project(store: Store, blobs: BlobStore) -> dict[str, str]:
    """Project ``demo``: three runs with params, tags, curves, system metrics, artifacts (text,
    image, CSV, Parquet, a folder) and a dataset input; returns their ids by name."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = store.get_or_create_project("demo")
    ids: dict[str, str] = {}
    rng = np.random.default_rng(0)
    for i, (lr, opt) in enumerate([(0.1, "adam"), (0.01, "sgd"), (0.001, "adam")]):
        new = store.new_run(
            p.id,
            name=f"run-{opt}-{lr}",
            params={"lr": lr, "optimizer": opt, "epochs": 300},
            tags={"team": "vision" if i < 2 else "nlp"},
            user="ada",
            host="box",
            git_commit="0123456789abcdef0123",
        )
        steps = np.arange(300)
        loss = np.exp(-steps * lr * 0.5) + rng.normal(0, 0.01, 300) + 0.05 * i
        acc = 1 - loss / 2
        cpu = 40 + rng.normal(0, 5, 60)
        store.log_batch(
            new.run_id,
            new_run=new,
            metrics={
                "loss": _series(loss),
                "acc": _series(acc),
                "system/cpu_percent": _series(cpu),
            },
            status="finished",
            end_ms=new.fields["start_ms"] + 95_000,
        )
        ids[new.fields["name"]] = new.run_id
    run_id = ids["run-adam-0.1"]
    frame = pa.table({"feature": ["a", "b", "c"], "importance": [0.5, 0.3, 0.2]})
    buf = io.BytesIO()
    pq.write_table(frame, buf)
    files = {
        "notes.txt": b"best run so far\nlr=0.1\n",
        "plots/curve.png": png(),
        "eval/confusion.csv": b"label,predicted,count\ncat,cat,40\ncat,dog,3\ndog,dog,37\n",
        "eval/importance.parquet": buf.getvalue(),
        "model/weights.bin": bytes(range(256)) * 4,
    }
    entries = []
    for path, data in files.items():
        sha, size = blobs.put_bytes(data)
        entries.append(ArtifactEntry(path, size, sha))
    store.add_artifacts(run_id, entries)
    sha = "ab" * 32
    store.put_dataset(
        DatasetVersion(
            sha256=sha,
            name="train",
            schema={"x": "float64", "y": "int64"},
            num_rows=1200,
            source_uri="s3://bucket/train.parquet",
            storage_uri=f"datasets:/{sha}",
            created_ms=1_700_000_000_000,
        )
    )
    store.log_input(run_id, RunInput(sha, "train", "training"))
    return ids


def many_runs(store: Store, n: int, *, name: str = "big") -> str:
    """Project ``name`` with ``n`` finished runs (3 params, a tag, 2 metrics each); its id."""
    p = store.get_or_create_project(name)
    rng = np.random.default_rng(1)
    lr, acc, loss = rng.random(n), rng.random(n), rng.random(n)
    now = int(time.time() * 1000)
    for i in range(n):
        new = store.new_run(
            p.id,
            name=f"r{i:05d}",
            start_ms=now - (n - i) * 1000,
            params={"lr": f"{lr[i]:.4f}", "depth": i % 7, "opt": ("adam", "sgd")[i % 2]},
            tags={"team": ("a", "b", "c")[i % 3]},
        )
        store.log_batch(
            new.run_id,
            new_run=new,
            metrics={
                "acc": MetricSeries([0], [now], [acc[i]]),
                "loss": MetricSeries([0], [now], [loss[i]]),
            },
            status="finished",
            end_ms=now,
        )
    return p.id


def long_metric(store: Store, points: int) -> str:
    """A run in project ``long`` with one metric ``signal`` of ``points`` points; its id."""
    p = store.get_or_create_project("long")
    new = store.new_run(p.id, name="long-history")
    steps = np.arange(points)
    value = np.sin(steps / 20_000) + np.random.default_rng(2).normal(0, 0.05, points)
    value[points // 2] = 5.0  # a spike min/max downsampling keeps
    store.log_batch(new.run_id, new_run=new, metrics={"signal": _series(value)}, status="finished")
    return new.run_id
