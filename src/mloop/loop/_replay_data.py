"""What a replay reads and returns: the folder layout, the timeline, small helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from mloop.errors import InvalidInputError, MloopError

__all__ = [
    "LOOP_POLICY",
    "START_MS",
    "WINDOW_MS",
    "ReplayData",
    "ReplayResult",
    "load_replay_dir",
    "rows_as_bodies",
    "wait_for",
]

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: where virtual time starts
WINDOW_MS = 3_600_000
# The loop's default gate policy (the default policy without the holdout drift check; see it).
LOOP_POLICY = Path(__file__).parent / "templates" / "loop-policy.yaml"


@dataclass(frozen=True)
class ReplayData:
    """A replay folder, read: the history, the windows' traffic and their labels."""

    root: Path
    train_path: Path
    features: list[str]
    windows: list[pa.Table]
    labels: list[dict[str, Any]]


@dataclass
class ReplayResult:
    """The timeline: one entry per window, and a summary (the ``--json`` document)."""

    windows: list[dict[str, Any]]
    summary: dict[str, Any]
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"windows": self.windows, "summary": self.summary}


def load_replay_dir(folder: str | Path) -> ReplayData:
    """Read and check ``train.parquet``, ``windows/w*.parquet`` and ``labels/w*.parquet``."""
    root = Path(folder)
    train = root / "train.parquet"
    if not train.is_file():
        raise InvalidInputError(f"{root} has no train.parquet (the training history).")
    schema = pq.read_schema(train)
    if "label" not in schema.names:
        raise InvalidInputError(f"{train} has no `label` column; got {schema.names}.")
    features = [c for c in schema.names if c != "label"]
    files = sorted((root / "windows").glob("w*.parquet"))
    if not files:
        raise InvalidInputError(f"{root / 'windows'} holds no w000.parquet, w001.parquet, ...")
    windows, labels = [], []
    for f in files:
        table = pq.read_table(f)
        missing = [c for c in ["request_id", *features] if c not in table.column_names]
        if missing:
            raise InvalidInputError(f"{f} lacks the columns {missing}.")
        windows.append(table)
        lf = root / "labels" / f.name
        if lf.is_file():
            lt = pq.read_table(lf, columns=["request_id", "label"]).to_pydict()
            labels.append(dict(zip(lt["request_id"], lt["label"], strict=True)))
        else:
            labels.append({})
    return ReplayData(root, train, features, windows, labels)


@dataclass
class _Window:
    index: int
    versions: dict[str, int] = field(default_factory=dict)
    errors: int = 0


def rows_as_bodies(table: pa.Table, features: list[str]) -> list[tuple[str, bytes]]:
    cols = [table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in features]
    ids = table.column("request_id").to_pylist()
    out = []
    for i, rid in enumerate(ids):
        row = [None if np.isnan(c[i]) else float(c[i]) for c in cols]
        doc = {"dataframe_split": {"columns": features, "data": [row]}}
        out.append((str(rid), orjson.dumps(doc)))
    return out


def wait_for(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until true; a :class:`MloopError` naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise MloopError(f"replay: {what} did not happen within {timeout_s:.0f} s.")
        time.sleep(0.01)
