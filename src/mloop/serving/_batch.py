"""Batch scoring: a registered model over a Parquet or CSV file, streamed in bounded memory.

:func:`predict_file` reads the input one batch of rows at a time (Parquet through
:func:`mloop.tables.iter_batches`; CSV and TSV through Arrow's streaming CSV reader, with the column
types the signature declares, so a column is typed the same in every block), validates each batch
against the model's signature, predicts, and appends the predictions to the output (Parquet or
CSV). A scikit-learn model fitted on float64 columns gets each batch as one float64 array (checked
to predict what the DataFrame gives), which makes batch scoring no slower than a bare
``model.predict`` on the whole file read into pandas. Peak memory is a few batches, whatever the size of the file. The output is written to a
temporary sibling and renamed into place at the end: a failure on any batch (a bad column, a model
error) leaves no output file, and an existing file at ``output`` is replaced only on success.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from mloop import tables
from mloop.errors import InvalidInputError, MloopError

from ._batch_io import CSV_TYPES, AtomicOutput, Writer, read_ahead, read_batches, rebatch, suffixes

if TYPE_CHECKING:
    from mloop.registry import Registry

__all__ = ["DEFAULT_BATCH_SIZE", "BatchPredictionStats", "predict_file"]

#: Rows predicted at once by default: large enough that per-batch overhead is noise, small enough
#: that a batch of a few hundred float columns stays in the hundreds of MB.
DEFAULT_BATCH_SIZE = 100_000
MAX_BATCH_SIZE = 10_000_000

_OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_CHECK_ROWS = 256  # rows on which the array path is checked against the DataFrame path


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
    target = AtomicOutput(out_text)  # checks that the output's folder exists
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
    fast = _ArrayPath(loaded, method) if _ArrayPath.applies(loaded) else None

    def prepare(batch: pa.Table) -> tuple[pa.Table, pa.Table, np.ndarray | None]:
        """On the reader thread: the model's columns, and their array when it takes one."""
        feed = batch if features is None else batch.select(features)
        return batch, feed, None if fast is None or not batch.num_rows else fast.block(feed)

    source = read_batches(input, in_text, wanted, available, loaded, batch_size)
    batches = read_ahead(rebatch(source, batch_size), prepare)
    rows = n_batches = 0
    columns: tuple[str, ...] = ()
    # closed on the way out, failure included: it stops the read-ahead thread, closes the input
    with contextlib.closing(batches), target as tmp, Writer(tmp, out_format, label) as writer:
        for batch, feed, block in batches:
            first, rows = rows, rows + batch.num_rows
            if batch.num_rows == 0:  # an empty input: an empty output, with the columns' types
                out = _empty_output(batch, keep_cols, loaded, columns_out)
            else:
                where = f"rows {first}-{rows - 1} of {in_text!r}"
                pred = None if fast is None else fast.predict(feed, block, where)
                if pred is None:
                    pred = _guarded(where, loaded.predict, feed, method=method)
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


def _output_format(text: str) -> str:
    suffix, codec = suffixes(text)
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


# ------------------------------------------------------------------------------------ predicting


def _guarded(where: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, its errors saying which rows they are about."""
    try:
        return call(*args, **kwargs)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc.message}", details=exc.details) from exc
    except MloopError:
        raise
    except Exception as exc:  # the user's model failed on the user's rows: say which
        raise MloopError(f"The model failed on {where}: {type(exc).__name__}: {exc}") from exc


class _ArrayPath:
    """A scikit-learn model fitted on a DataFrame of float64 columns gets each batch as one
    float64 array, in the signature's column order, instead of a DataFrame.

    The check is the signature's (every column float64, no null, no NaN where the signature
    allows none) and the DataFrame conversion is skipped: a third of the time per batch for a
    logistic regression. It is taken only once the array has given exactly the DataFrame's
    predictions on the first rows; a batch it does not fit (another type, a missing value) takes
    the DataFrame path, which says what is wrong.
    """

    def __init__(self, model: Any, method: str | None) -> None:
        self.model, self.method = model, method
        self.no_nan = [not spec.nullable for spec in model.signature.inputs.specs]
        self.checked = False
        self.enabled = True

    @staticmethod
    def applies(model: Any) -> bool:
        signature = getattr(model, "signature", None)
        inputs = getattr(signature, "inputs", None)
        if getattr(model, "flavor", None) != "sklearn" or inputs is None or inputs.is_tensor:
            return False
        assert signature is not None
        if signature.params or any(spec.dtype != "float64" for spec in inputs.specs):
            return False
        names = getattr(getattr(model, "raw", None), "feature_names_in_", None)
        return names is not None and [str(n) for n in names] == [str(n) for n in inputs.names]

    def block(self, feed: pa.Table) -> np.ndarray | None:
        """The batch as one float64 array, or None when it must take the DataFrame path."""
        if not self.enabled:
            return None
        block = np.empty((feed.num_rows, feed.num_columns), order="F")  # as pandas lays it out
        for i, (column, no_nan) in enumerate(zip(feed.columns, self.no_nan, strict=True)):
            if column.type != pa.float64() or column.null_count:
                return None
            block[:, i] = column.to_numpy()
            # a sum is NaN when a value is (or when +inf meets -inf: the DataFrame path decides)
            if no_nan and np.isnan(block[:, i].sum()):
                return None
        return block

    def _call(self, block: np.ndarray) -> Any:
        with warnings.catch_warnings():  # the names were checked: by position, against the fit's
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            return self.model.predict(block, method=self.method, validate=False)

    def predict(self, feed: pa.Table, block: np.ndarray | None, where: str) -> Any:
        """The predictions, or None when this batch takes the DataFrame path."""
        if block is None or not self.enabled:
            return None
        if not self.checked:
            self.checked = True
            n = min(_CHECK_ROWS, len(block))
            try:
                same = _same(
                    self._call(block[:n]), self.model.predict(feed.slice(0, n), method=self.method)
                )
            except Exception:  # the DataFrame path will raise it, naming the rows
                same = False
            if not same:
                self.enabled = False
                return None
        return _guarded(where, self._call, block)


def _same(a: Any, b: Any) -> bool:
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape or x.dtype != y.dtype:
        return False
    try:
        return bool(np.array_equal(x, y, equal_nan=True))
    except TypeError:  # not numbers
        return bool(np.array_equal(x, y))


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
    kind = CSV_TYPES.get(str(dtype), pa.null())
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
