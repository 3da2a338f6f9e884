"""A batch of logged requests as one Arrow table, and that table as Parquet bytes.

Everything here runs on the logger's background thread (or a reader), never on the request path.
The chunk's columns, in order::

    request_id        string          the request's id (rows of one request share it)
    row               int32           the row's index within its request
    ts                timestamp[ms, UTC]
    model_version     string          "churn/3"
    <features>        as given        (a feature whose name is reserved is stored as "features.<name>")
    prediction        1-D outputs; ``prediction_<k>`` per column k of a 2-D or named output
    shadow_version    string          null when no shadow model ran
    shadow_prediction (or ``shadow_prediction_<k>``) null when no shadow model ran

Chunks of one log may differ in schema (a new model version with another feature, an int column
that became float): :func:`unify_concat` puts them together, promoting types where Arrow can and
storing a column as text where it cannot.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mloop.errors import InvalidInputError
from mloop.tables import is_table, read_table, value_label

__all__ = [
    "FORMAT",
    "RESERVED",
    "Encoded",
    "Entry",
    "build_table",
    "encode",
    "null_table",
    "split_entries",
    "unify_concat",
]

#: Written into every chunk's Parquet metadata, so a reader can tell a chunk from other blobs.
FORMAT = "mloop-inference-log/1"
TS_TYPE = pa.timestamp("ms", tz="UTC")
#: Column names the log itself uses; a feature with one of these names is renamed.
RESERVED = frozenset({"request_id", "row", "ts", "model_version", "shadow_version", "label"})
_PREFIXES = ("prediction", "shadow_prediction")

# One logged call, as the hot path stores it (a plain tuple: cheapest to build):
# (request_ids, ts_ms, model_version, features, predictions, shadow_version,
#  shadow_predictions, keep) where ``keep`` is None (every row) or the sampled request ids.
Entry = tuple[Sequence[str], int, str, Any, Any, str | None, Any, frozenset[str] | None]


@dataclass
class Encoded:
    """One chunk ready to store: Parquet bytes and what its index row says about them."""

    data: bytes
    n_rows: int
    first_ts_ms: int
    last_ts_ms: int
    model_versions: dict[str, int]
    attempts: int = 0


def _reserved(name: str) -> bool:
    return name in RESERVED or any(name == p or name.startswith(p + "_") for p in _PREFIXES)


def _features_table(obj: Any) -> pa.Table:
    if isinstance(obj, pa.Table):
        table = obj
    elif isinstance(obj, pa.RecordBatch):
        table = pa.Table.from_batches([obj])
    else:
        table = read_table(obj, what="features", mixed="text")
    return table


def _is_block(obj: Any) -> bool:
    """Rows given as one 2-D numpy array plus column names (``.values``, ``.columns``): what a
    server's fast path predicts on, logged without building a table per request."""
    values = getattr(obj, "values", None)
    return isinstance(values, np.ndarray) and values.ndim == 2 and hasattr(obj, "columns")


def _feature_tables(objs: Sequence[Any]) -> list[pa.Table]:
    """The entries' features as tables; consecutive row blocks with the same columns become one
    table (one array per column for thousands of one-row requests)."""
    out: list[pa.Table] = []
    i = 0
    while i < len(objs):
        obj = objs[i]
        if not _is_block(obj):
            out.append(_features_table(obj))
            i += 1
            continue
        columns = list(obj.columns)
        j = i + 1
        while j < len(objs) and _is_block(objs[j]) and list(objs[j].columns) == columns:
            j += 1
        values = np.concatenate([o.values for o in objs[i:j]]) if j - i > 1 else obj.values
        block = np.ascontiguousarray(values.T)
        out.append(
            pa.Table.from_arrays([pa.array(block[c]) for c in range(len(columns))], names=columns)
        )
        i = j
    return out


def _renamed(table: pa.Table) -> pa.Table:
    """The features with a reserved name (``ts``, ``prediction``...) as ``features.<name>``."""
    if any(_reserved(n) for n in table.column_names):
        table = table.rename_columns(
            [f"features.{n}" if _reserved(n) else n for n in table.column_names]
        )
    return table


def _output_columns(pred: Any, n: int, prefix: str) -> dict[str, Any]:
    """A model output of ``n`` rows as named columns: ``prefix`` for 1-D, ``prefix_<k>`` else."""
    if isinstance(pred, np.ndarray) and pred.ndim == 1 and len(pred) == n:
        return {prefix: pred}
    if isinstance(pred, (pa.Array, pa.ChunkedArray)):
        if len(pred) != n:
            raise InvalidInputError(f"`{prefix}` has {len(pred)} rows; the features have {n}.")
        return {prefix: pred}
    if is_table(pred) and not isinstance(pred, (np.ndarray, list, tuple)):
        table = read_table(pred, what=prefix, mixed="text")
        if table.num_rows != n:
            raise InvalidInputError(f"`{prefix}` has {table.num_rows} rows; the features have {n}.")
        if table.num_columns == 1:
            return {prefix: table.column(0)}
        return {f"{prefix}_{name}": table.column(name) for name in table.column_names}
    arr = np.asarray(pred)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim > 2:
        raise InvalidInputError(
            f"`{prefix}` must be 1-D or 2-D (one row per input row); got shape {arr.shape}."
        )
    if arr.shape[0] != n:
        raise InvalidInputError(f"`{prefix}` has {arr.shape[0]} rows; the features have {n}.")
    if arr.ndim == 1:
        return {prefix: arr}
    if arr.shape[1] == 1:
        return {prefix: arr[:, 0]}
    return {f"{prefix}_{k}": arr[:, k] for k in range(arr.shape[1])}


def _to_arrow(values: Any) -> pa.Array | pa.ChunkedArray:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else value_label(v) for v in values], pa.string())


def _assemble(parts: list[dict[str, Any]], sizes: np.ndarray) -> pa.Table:
    """Stack per-entry output columns; entries with other columns (or none) get nulls."""
    names = list(dict.fromkeys(k for p in parts for k in p))
    if not names:
        return pa.table({})
    first = parts[0]
    same = all(p.keys() == first.keys() for p in parts)
    if same and all(isinstance(v, np.ndarray) for p in parts for v in p.values()):
        try:
            return pa.table({k: _to_arrow(np.concatenate([p[k] for p in parts])) for k in names})
        except (TypeError, ValueError):
            pass  # mixed dtypes numpy cannot stack: per-entry tables below
    tables = []
    for part, n in zip(parts, sizes, strict=True):
        if part:
            tables.append(pa.table({k: _to_arrow(v) for k, v in part.items()}))
        else:
            tables.append(pa.table({names[0]: pa.nulls(int(n))}))
    return unify_concat(tables)


def unify_concat(tables: Sequence[pa.Table]) -> pa.Table:
    """Concatenate tables whose schemas may differ into one table with one chunk per column.

    Same schemas are stacked without conversion. Otherwise columns are matched by name (a
    column missing from a table is null there), int and float promote to float, and a column
    whose types cannot be reconciled (numbers in one table, text in another) is stored as text.
    """
    tables = [t for t in tables if t.num_columns]
    if not tables:
        return pa.table({})
    first = tables[0].schema
    if all(t.schema.equals(first) for t in tables[1:]):
        batches = [b for t in tables for b in t.to_batches()]
        return pa.Table.from_batches(batches, schema=first).combine_chunks()
    try:
        return pa.concat_tables(tables, promote_options="permissive").combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    types: dict[str, set[pa.DataType]] = {}
    for t in tables:
        for field in t.schema:
            types.setdefault(field.name, set()).add(field.type)
    clash = {name for name, ts in types.items() if len(ts) > 1 and not _promotable(ts)}
    fixed = [_as_text(t, clash) for t in tables]
    return pa.concat_tables(fixed, promote_options="permissive").combine_chunks()


def _promotable(ts: set[pa.DataType]) -> bool:
    try:
        pa.unify_schemas([pa.schema([("c", t)]) for t in ts], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return True


def _as_text(table: pa.Table, names: set[str]) -> pa.Table:
    for i, name in enumerate(table.column_names):
        if name not in names:
            continue
        col = table.column(i)
        try:
            text = pc.cast(col, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            text = pa.array(
                [None if v is None else value_label(v) for v in col.to_pylist()], pa.string()
            )
        table = table.set_column(i, name, text)
    return table


_REQUEST_ID = "^[A-Za-z0-9_-]{1,64}$"


def _request_columns(
    entries: Sequence[Entry], sizes: np.ndarray
) -> tuple[pa.Array, np.ndarray, np.ndarray | None]:
    """The ``request_id`` and ``row`` columns, and the mask of sampled rows (None: all)."""
    total = int(sizes.sum())
    starts = np.cumsum(sizes) - sizes
    rows = np.arange(total, dtype=np.int32) - np.repeat(starts, sizes).astype(np.int32)
    if all(len(e[0]) == 1 for e in entries):
        ids = np.repeat(np.array([e[0][0] for e in entries], dtype=object), sizes)
        keep = None
    else:
        parts = []
        masks = []
        for entry, start, n in zip(entries, starts, sizes, strict=True):
            rids, chosen = entry[0], entry[7]
            if len(rids) == 1:
                parts.append([rids[0]] * int(n))
                masks.append(np.ones(int(n), bool))
                continue
            seen: Counter[str] = Counter()
            for i, rid in enumerate(rids):  # rows of one request are numbered in order
                rows[start + i] = seen[rid]
                seen[rid] += 1
            parts.append(list(rids))
            masks.append(
                np.ones(int(n), bool)
                if chosen is None
                else np.fromiter((r in chosen for r in rids), bool, int(n))
            )
        ids = np.array([r for p in parts for r in p], dtype=object)
        mask = np.concatenate(masks) if masks else np.ones(0, bool)
        keep = None if mask.all() else mask
    try:
        id_col = pa.array(ids, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise InvalidInputError("request ids must be str.") from None
    if id_col.null_count or not pc.all(pc.match_substring_regex(id_col, _REQUEST_ID)).as_py():
        bad = [r for r in ids if not isinstance(r, str) or not re.fullmatch(_REQUEST_ID, r)]
        raise InvalidInputError(
            "a request id must be 1 to 64 characters of letters, digits, '_' and '-'; "
            f"got {bad[0]!r}."
        )
    return id_col, rows, keep


def build_table(entries: Sequence[Entry]) -> pa.Table:
    """The chunk table of ``entries`` (see the module docstring for its columns).

    Raises
    ------
    InvalidInputError
        If an entry cannot be stored (a prediction of the wrong length, a request id that is not
        a str, ...). The caller finds which one by building entries one at a time.
    """
    sizes = np.fromiter((int(e[3].num_rows) for e in entries), np.int64, len(entries))
    feats = _feature_tables([e[3] for e in entries])
    total = int(sizes.sum())
    id_col, rows, keep = _request_columns(entries, sizes)
    preds = [
        _output_columns(e[4], int(n), "prediction") for e, n in zip(entries, sizes, strict=True)
    ]
    shadow_p = [
        {} if e[5] is None else _output_columns(e[6], int(n), "shadow_prediction")
        for e, n in zip(entries, sizes, strict=True)
    ]
    ts = np.repeat(np.fromiter((e[1] for e in entries), np.int64, len(entries)), sizes)
    columns: dict[str, Any] = {
        "request_id": id_col,
        "row": pa.array(rows, pa.int32()),
        "ts": pa.array(ts, pa.int64()).cast(TS_TYPE),
        "model_version": pa.array(
            np.repeat(np.array([e[2] for e in entries], dtype=object), sizes), pa.string()
        ),
    }
    features_table = _renamed(unify_concat(feats))
    for name, col in zip(features_table.column_names, features_table.columns, strict=True):
        columns[name] = col
    out = _assemble(preds, sizes)
    if not out.num_columns:
        columns["prediction"] = pa.nulls(total)
    for name, col in zip(out.column_names, out.columns, strict=True):
        columns[name] = col
    columns["shadow_version"] = pa.array(
        np.repeat(np.array([e[5] for e in entries], dtype=object), sizes), pa.string()
    )
    shadow = _assemble(shadow_p, sizes)
    if not shadow.num_columns:
        columns["shadow_prediction"] = pa.nulls(total)
    for name, col in zip(shadow.column_names, shadow.columns, strict=True):
        columns[name] = col
    table = pa.table(columns)
    return table if keep is None else table.filter(pa.array(keep))


def encode(table: pa.Table, *, deployment: str) -> Encoded:
    """Parquet bytes (zstd) of a chunk table, with its index facts."""
    import pyarrow.parquet as pq  # on first write, not when mloop is imported

    sink = io.BytesIO()
    meta = {b"mloop.format": FORMAT.encode(), b"mloop.deployment": deployment.encode()}
    pq.write_table(table.replace_schema_metadata(meta), sink, compression="zstd")
    ts = table.column("ts").cast(pa.int64())
    lo, hi = pc.min_max(ts).values()
    counts = pc.value_counts(table.column("model_version"))
    versions = {
        str(v["values"]): int(v["counts"]) for v in counts.to_pylist() if v["values"] is not None
    }
    return Encoded(
        data=sink.getvalue(),
        n_rows=table.num_rows,
        first_ts_ms=int(lo.as_py()),
        last_ts_ms=int(hi.as_py()),
        model_versions=versions,
    )


def split_entries(entries: Sequence[Entry], rows: int) -> Iterator[list[Entry]]:
    """Consecutive groups of entries of about ``rows`` rows each (an entry is never split)."""
    group: list[Entry] = []
    n = 0
    for entry in entries:
        group.append(entry)
        n += entry[3].num_rows
        if n >= rows:
            yield group
            group, n = [], 0
    if group:
        yield group


def null_table() -> pa.Table:
    """The columns every chunk has, with no rows (what reading an empty log returns)."""
    return pa.table(
        {
            "request_id": pa.array([], pa.string()),
            "row": pa.array([], pa.int32()),
            "ts": pa.array([], TS_TYPE),
            "model_version": pa.array([], pa.string()),
            "prediction": pa.nulls(0),
            "shadow_version": pa.array([], pa.string()),
            "shadow_prediction": pa.nulls(0),
        }
    )
