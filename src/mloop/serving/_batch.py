"""Batch scoring: a registered model over a Parquet or CSV file, streamed in bounded memory.

:func:`predict_file` reads the input one batch of rows at a time (Parquet through
:func:`mloop.tables.iter_batches`; CSV and TSV through Arrow's streaming CSV reader, with the column
types the signature declares, so a column is typed the same in every block), validates each batch
against the model's signature, predicts, and appends the predictions to the output (Parquet or
CSV). Peak memory is a few batches, whatever the size of the file. The output is written to a
temporary sibling and renamed into place at the end: a failure on any batch (a bad column, a model
error) leaves no output file, and an existing file at ``output`` is replaced only on success.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mloop import tables
from mloop.errors import InvalidInputError, MloopError

if TYPE_CHECKING:
    from mloop.registry import Registry

__all__ = ["DEFAULT_BATCH_SIZE", "BatchPredictionStats", "predict_file"]

#: Rows predicted at once by default: large enough that per-batch overhead is noise, small enough
#: that a batch of a few hundred float columns stays in the hundreds of MB.
DEFAULT_BATCH_SIZE = 100_000
MAX_BATCH_SIZE = 10_000_000

_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
_TEXT_FORMATS = {".csv": ",", ".tsv": "\t"}
_OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_CSV_COLUMN = re.compile(r"CSV column #(\d+)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
#: Signature dtype -> the Arrow type a CSV column is parsed as (others are inferred).
_CSV_TYPES: dict[str, pa.DataType] = {
    "bool": pa.bool_(),
    **{f"int{b}": getattr(pa, f"int{b}")() for b in (8, 16, 32, 64)},
    **{f"uint{b}": getattr(pa, f"uint{b}")() for b in (8, 16, 32, 64)},
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "category": pa.string(),
    "datetime": pa.timestamp("ns"),
}


@dataclass(frozen=True)
class BatchPredictionStats:
    """What :func:`predict_file` did.

    Attributes
    ----------
    model : str
        The model URI (or the loaded model's description).
    input, output : str
        As given.
    rows : int
        Rows read and predicted.
    batches : int
        Batches predicted (at most ``batch_size`` rows each).
    columns : tuple of str
        The output's columns: kept input columns, then the prediction column(s).
    seconds : float
        Wall time, from opening the input to renaming the output into place.
    """

    model: str
    input: str
    output: str
    rows: int
    batches: int
    columns: tuple[str, ...]
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def predict_file(
    model: Any,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    method: str | None = None,
    keep: Sequence[str] = (),
    columns_out: str = "prediction",
    registry: Registry | None = None,
) -> BatchPredictionStats:
    """Predict every row of a file with a registered model, streaming, into a Parquet or CSV file.

    Parameters
    ----------
    model : str or PackagedModel
        A model URI (``models:/churn@champion``, ``models:/churn/3``, ``runs:/<id>/model``),
        loaded with ``registry``, or a model already loaded with ``Registry.load``.
    input : path or URL
        A Parquet file or folder of Parquet files, or a CSV/TSV file (maybe compressed), read in
        batches; other formats :func:`mloop.tables.read_table` accepts (JSON lines, Arrow IPC) are
        read whole. Only the signature's columns and ``keep`` are read.
    output : path or URL
        ``.parquet``/``.pq`` or ``.csv``. Replaced atomically on success; never left half-written.
    batch_size : int, default 100000
        Rows predicted at once; memory grows with it, not with the file.
    method : str, optional
        The model method (``"predict_proba"``...); default ``predict``.
    keep : sequence of str
        Input columns copied to the output, before the predictions (an id column, say).
    columns_out : str, default "prediction"
        Name of the prediction column; a 2-D output (probabilities) becomes ``<name>_0``,
        ``<name>_1``...; a model that returns a table keeps its own column names.
    registry : Registry, optional
        Resolves a model URI (default: ``Registry()`` from the environment).

    Returns
    -------
    BatchPredictionStats

    Raises
    ------
    InvalidInputError
        A bad option; an input that cannot be read; a column the signature needs that is missing
        or has the wrong type or missing values (the message names the column, and the rows of
        the batch); a ``keep`` column that is not in the input or clashes with a prediction column.
    MloopError
        The model failed on a batch (the message names the rows).

    Examples
    --------
    >>> stats = predict_file("models:/churn@champion", "in.parquet", "out.parquet",
    ...                      keep=["customer_id"])                                  # doctest: +SKIP
    >>> stats.rows, stats.columns                                                   # doctest: +SKIP
    (1000000, ('customer_id', 'prediction'))
    """
    started = time.perf_counter()
    keep_cols = _check_options(batch_size, keep, columns_out)
    in_text, out_text = os.fspath(input), os.fspath(output)
    out_format = _output_format(out_text)
    target = _AtomicOutput(out_text)  # checks that the output's folder exists
    if isinstance(model, str):
        from mloop.registry import Registry

        label = model
        loaded = (registry or Registry()).load(model)
    else:
        if not callable(getattr(model, "predict", None)):
            raise InvalidInputError(
                "`model` must be a model URI (str) or a model loaded with Registry.load; "
                f"got {type(model).__name__}."
            )
        label, loaded = repr(model), model
    features = _feature_columns(loaded)
    available = tables.column_names(input, what="input")
    _check_input_columns(features, keep_cols, available, in_text)
    wanted = list(dict.fromkeys([*(features or available), *keep_cols]))
    batches = _read_ahead(
        _rebatch(_read(input, in_text, wanted, available, loaded, batch_size), batch_size)
    )

    rows = n_batches = 0
    columns: tuple[str, ...] = ()
    with target as tmp, _Writer(tmp, out_format, label) as writer:
        for batch in batches:
            first, rows = rows, rows + batch.num_rows
            if batch.num_rows == 0:  # an empty input: an empty output, with the columns' types
                out = _empty_output(batch, keep_cols, loaded, columns_out)
            else:
                feed = batch if features is None else batch.select(features)
                pred = _predict(loaded, feed, method, first, rows, in_text)
                out = _output_table(batch, keep_cols, pred, columns_out)
            writer.write(out)
            columns = tuple(out.column_names)
            n_batches += 1
    return BatchPredictionStats(
        model=label,
        input=in_text,
        output=out_text,
        rows=rows,
        batches=n_batches,
        columns=columns,
        seconds=time.perf_counter() - started,
    )


# ------------------------------------------------------------------------------------ options


def _check_options(batch_size: Any, keep: Any, columns_out: Any) -> list[str]:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or not 1 <= batch_size <= MAX_BATCH_SIZE
    ):
        raise InvalidInputError(
            f"`batch_size` must be an int in [1, {MAX_BATCH_SIZE}]; got {batch_size!r}."
        )
    if isinstance(keep, str) or not all(isinstance(c, str) for c in keep):
        raise InvalidInputError(f"`keep` must be a list of column names; got {keep!r}.")
    if not isinstance(columns_out, str) or not _NAME.fullmatch(columns_out):
        raise InvalidInputError(
            "`columns_out` must be a column name (letters, digits, '_', '.', '-', not starting "
            f"with a digit); got {columns_out!r}."
        )
    return list(dict.fromkeys(keep))


def _suffixes(text: str) -> tuple[str, str | None]:
    """The format suffix of a path or URL (``.csv``) and its compression codec, if any."""
    name = text.rstrip("/").rsplit("/", 1)[-1].lower()
    stem, _, last = name.rpartition(".")
    codec = _CODECS.get(f".{last}")
    if codec is not None:
        _, _, last = stem.rpartition(".")
    return f".{last}", codec


def _output_format(text: str) -> str:
    suffix, codec = _suffixes(text)
    fmt = _OUTPUT_FORMATS.get(suffix)
    if fmt is None or codec is not None:
        raise InvalidInputError(
            f"`output` must end in .parquet, .pq or .csv; got {text!r}. Batch predictions are "
            "written as Parquet (recommended) or CSV."
        )
    return fmt


def _feature_columns(model: Any) -> list[str] | None:
    """The columns the signature takes, or None to feed every column (no or tensor signature)."""
    signature = getattr(model, "signature", None)
    inputs = getattr(signature, "inputs", None)
    if inputs is None or inputs.is_tensor:
        return None
    return [str(n) for n in inputs.names]


def _check_input_columns(
    features: list[str] | None, keep: list[str], available: list[str], where: str
) -> None:
    have = set(available)
    missing = [c for c in features or () if c not in have]
    if missing:
        raise InvalidInputError(
            f"Input {where!r} does not match the model signature: column(s) {missing} are "
            f"missing; the model takes {features}. The input has {available[:20]}"
            f"{' ...' if len(available) > 20 else ''}.",
            details={"problems": [{"column": c, "problem": "missing"} for c in missing]},
        )
    unknown = [c for c in keep if c not in have]
    if unknown:
        raise InvalidInputError(
            f"`keep` names column(s) {unknown} that are not in {where!r}; it has "
            f"{available[:20]}{' ...' if len(available) > 20 else ''}."
        )


# ------------------------------------------------------------------------------------ reading


def _read(
    input: Any, where: str, columns: list[str], header: list[str], model: Any, batch_size: int
) -> Iterator[pa.RecordBatch]:
    suffix, codec = _suffixes(where)
    if suffix in _TEXT_FORMATS and not os.path.isdir(where):
        return _csv_batches(where, suffix, codec, columns, header, model, batch_size)
    return tables.iter_batches(input, columns=columns, batch_rows=batch_size, what="input")


def _csv_types(model: Any, columns: list[str]) -> dict[str, str]:
    """Parse the signature's columns as the types it declares: a streaming reader infers types
    from its first block only, so a float column whose first block holds only ``1``, ``2`` would
    become int64 and fail on a later ``1.5``."""
    signature = getattr(model, "signature", None)
    inputs = getattr(signature, "inputs", None)
    if inputs is None or inputs.is_tensor:
        return {}
    wanted = set(columns)
    return {
        spec.name: spec.dtype
        for spec in inputs.specs
        if spec.name in wanted and spec.dtype in _CSV_TYPES
    }


def _csv_batches(
    where: str,
    suffix: str,
    codec: str | None,
    columns: list[str],
    header: list[str],
    model: Any,
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pcsv

    types = _csv_types(model, columns)
    with contextlib.ExitStack() as stack:
        if "://" in where:
            import fsspec

            fs, path = fsspec.core.url_to_fs(where)
            raw: Any = stack.enter_context(fs.open(path, "rb"))
        else:
            raw = where
        stream = stack.enter_context(pa.input_stream(raw, compression=codec))
        try:
            reader = pcsv.open_csv(
                stream,
                # blocks of about a batch (1 KB a row is generous), bounded to 64 MB
                read_options=pcsv.ReadOptions(
                    block_size=min(max(batch_size * 1024, 1 << 20), 1 << 26)
                ),
                parse_options=pcsv.ParseOptions(delimiter=_TEXT_FORMATS[suffix]),
                convert_options=pcsv.ConvertOptions(
                    include_columns=columns,
                    column_types={name: _CSV_TYPES[dtype] for name, dtype in types.items()},
                ),
            )
        except pa.ArrowInvalid as exc:
            raise _csv_error(exc, where, header, types) from exc
        rows = 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise _csv_error(exc, where, header, types, after=rows) from exc
            rows += batch.num_rows
            yield batch
        if rows == 0:
            yield pa.RecordBatch.from_pylist([], schema=reader.schema)


def _csv_error(
    exc: Exception,
    where: str,
    header: list[str],
    types: dict[str, str],
    *,
    after: int = 0,
) -> InvalidInputError:
    """A CSV parse error, naming the column (Arrow gives its position in the file's header) and
    the type the signature declares for it."""
    detail = str(exc).strip().rstrip(".")
    found = _CSV_COLUMN.search(detail)
    if found is not None and int(found.group(1)) < len(header):
        column = header[int(found.group(1))]
        declared = types.get(column)
        want = f" as {declared}, the model signature's type" if declared is not None else ""
        return InvalidInputError(
            f"Input {where!r}: column {column!r} cannot be read{want} (in the rows from {after} "
            f"on): {detail}.",
            details={"problems": [{"column": column, "problem": "dtype"}]},
        )
    return InvalidInputError(f"cannot read {where!r} as CSV: {detail}.")


def _rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Tables of exactly ``size`` rows (the last one fewer); one empty table for an empty input."""
    pending: list[pa.RecordBatch] = []
    count = 0
    schema = None
    yielded = False
    for batch in batches:
        schema = batch.schema
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch if take == batch.num_rows else batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == size:
                yield pa.Table.from_batches(pending)
                pending, count, yielded = [], 0, True
    if pending:
        yield pa.Table.from_batches(pending)
    elif schema is not None and not yielded:
        yield schema.empty_table()


def _read_ahead(batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Read (and decode) the next batch on a thread while the model predicts this one: Arrow and
    most numeric models release the GIL, so reading stops adding to the time. One batch ahead,
    so memory grows by one batch, never more."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="mloop-predict-read") as pool:
        try:
            ahead = pool.submit(next, batches, None)
            while True:
                batch = ahead.result()
                if batch is None:
                    return
                ahead = pool.submit(next, batches, None)
                yield batch
        finally:
            with contextlib.suppress(Exception):  # the error that stopped us is being raised
                ahead.result()
            close = getattr(batches, "close", None)
            if close is not None:
                close()


# ------------------------------------------------------------------------------------ predicting


def _predict(
    model: Any, feed: pa.Table, method: str | None, first: int, end: int, where: str
) -> Any:
    rows = f"rows {first}-{max(end - 1, first)} of {where!r}"
    try:
        return model.predict(feed, method=method)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{rows}: {exc.message}", details=exc.details) from exc
    except MloopError:
        raise
    except Exception as exc:  # the user's model failed on the user's rows: say which
        raise MloopError(
            f"The model failed on {rows}: {type(exc).__name__}: {exc}",
            details={"first_row": first, "last_row": end - 1},
        ) from exc


def _prediction_columns(pred: Any, name: str, n_rows: int) -> list[tuple[str, Any]]:
    """Model output as named columns: 1-D -> ``name``; 2-D -> ``name_0..``; a table keeps its
    column names."""
    if isinstance(pred, pa.Table):
        return list(zip(pred.column_names, pred.columns, strict=True))
    to_arrow = getattr(pred, "to_arrow", None)  # polars
    if hasattr(pred, "columns") and hasattr(pred, "iloc"):  # pandas DataFrame
        return [(str(c), pred[c].to_numpy()) for c in pred.columns]
    if callable(to_arrow) and hasattr(pred, "columns"):
        table = to_arrow()
        return list(zip(table.column_names, table.columns, strict=True))
    if isinstance(pred, dict):
        return [(str(k), np.asarray(v)) for k, v in pred.items()]
    arr = pred.to_numpy() if hasattr(pred, "to_numpy") else np.asarray(pred)
    if arr.ndim == 1:
        return [(name, arr)]
    if arr.ndim == 2:
        return [(f"{name}_{k}", arr[:, k]) for k in range(arr.shape[1])]
    raise MloopError(
        f"The model returned an array of shape {arr.shape}; batch predictions are written as "
        "columns, so one value or one row of values per input row is needed."
    )


def _output_table(batch: pa.Table, keep: list[str], pred: Any, name: str) -> pa.Table:
    n = batch.num_rows
    columns = [(c, batch.column(c)) for c in keep]
    predicted = _prediction_columns(pred, name, n)
    clash = sorted({c for c, _ in predicted} & set(keep))
    if clash:
        raise InvalidInputError(
            f"`keep` column(s) {clash} clash with the prediction column(s); pass another "
            "`columns_out` name."
        )
    for col, values in predicted:
        if len(values) != n:
            raise MloopError(
                f"The model returned {len(values)} values in {col!r} for {n} input rows."
            )
        columns.append((col, values if isinstance(values, pa.ChunkedArray) else _arrow(values)))
    return pa.table(dict(columns))


def _empty_output(batch: pa.Table, keep: list[str], model: Any, name: str) -> pa.Table:
    """The output of an input with no rows: the kept columns, and the prediction column typed
    as the signature's output when it declares one type (else null)."""
    outputs = getattr(getattr(model, "signature", None), "outputs", None)
    dtype = outputs.specs[0].dtype if outputs is not None and len(outputs.specs) == 1 else None
    kind = _CSV_TYPES.get(str(dtype), pa.null())
    columns = {c: batch.column(c) for c in keep}
    columns[name] = pa.array([], type=kind)
    return pa.table(columns)


def _arrow(values: Any) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf" and arr.flags.c_contiguous:
        return pa.array(arr)
    return pa.array(arr, from_pandas=True)


# ------------------------------------------------------------------------------------ writing


class _AtomicOutput:
    """A temporary sibling of ``output`` (a local temp file for a URL), renamed (or uploaded)
    into place when the block succeeds, deleted when it fails."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.fs: Any = None
        if "://" in output:
            import fsspec

            self.fs, self.path = fsspec.core.url_to_fs(output)
            self.tmp = os.path.join(tempfile.gettempdir(), f"mloop-predict-{uuid.uuid4().hex}")
        else:
            self.path = os.path.abspath(output)
            parent = os.path.dirname(self.path)
            if not os.path.isdir(parent):
                raise InvalidInputError(
                    f"cannot write `output` {output!r}: folder {parent!r} does not exist."
                )
            name = os.path.basename(self.path)
            self.tmp = os.path.join(parent, f".{name}.tmp-{uuid.uuid4().hex[:12]}")

    def __enter__(self) -> str:
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                if self.fs is None:
                    os.replace(self.tmp, self.path)
                else:
                    self.fs.put_file(self.tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.tmp)


class _Writer:
    """Appends tables of one schema (the first table's) to a Parquet or CSV file."""

    def __init__(self, path: str, fmt: str, model: str) -> None:
        self.path, self.fmt, self.model = path, fmt, model
        self._writer: Any = None
        self.schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            self.schema = table.schema.with_metadata({"mloop.model": self.model})
            if self.fmt == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.path, self.schema)
            else:
                import pyarrow.csv as pcsv

                self._writer = pcsv.CSVWriter(self.path, self.schema.remove_metadata())
        assert self.schema is not None
        if table.schema.remove_metadata() != self.schema.remove_metadata():
            table = self._conform(table)
        if self.fmt == "csv":
            table = table.replace_schema_metadata(None)
        else:
            table = table.replace_schema_metadata(self.schema.metadata)
        self._writer.write_table(table)

    def _conform(self, table: pa.Table) -> pa.Table:
        assert self.schema is not None
        target = self.schema.remove_metadata()
        if table.column_names != target.names:
            raise MloopError(
                f"The model's output columns changed between batches: {target.names} then "
                f"{table.column_names}."
            )
        try:
            return table.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise MloopError(
                f"The output's column types changed between batches ({target} then "
                f"{table.schema}) and cannot be converted: {exc}"
            ) from exc

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._writer is not None:
            self._writer.close()
