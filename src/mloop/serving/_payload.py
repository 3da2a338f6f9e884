"""MLflow's scoring protocol: request bodies in, ``{"predictions": ...}`` out, errors as MLflow's.

Accepted on ``POST /invocations`` (as ``mlflow models serve`` accepts them):

- ``application/json`` with exactly one of ``dataframe_split`` (``{"columns", "data", "index"}``),
  ``dataframe_records`` (a list of row objects), ``instances`` or ``inputs`` (row objects, an
  object of columns, or nested lists for tensors), and optionally ``params``;
- ``text/csv`` / ``application/csv`` (a header row, then rows);
- ``application/vnd.apache.parquet``.

Column data becomes a pyarrow Table (numbers, strings, booleans and nulls typed by Arrow), which the
model's signature then validates. Errors carry MLflow's ``error_code`` names and HTTP statuses:
``BAD_REQUEST`` (400) for a body that cannot be read or does not match the signature, 415 (plain
text, as MLflow) for a content type or charset it does not take.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from mloop.tables import arrow_buffer, read_parquet_bytes

__all__ = [
    "CONTENT_TYPES",
    "Block",
    "ParsedRequest",
    "ServingError",
    "encode_predictions",
    "parse_invocation",
    "row_count",
]

JSON = "application/json"
CSV_TYPES = ("text/csv", "application/csv")
PARQUET = "application/vnd.apache.parquet"
CONTENT_TYPES = (JSON, *CSV_TYPES, PARQUET)
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_FORMAT_SET = frozenset(FORMATS)
REQUIRED_INPUT_FORMAT = (
    "The input must be a JSON dictionary with exactly one of the input fields "
    "{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"
)


class ServingError(Exception):
    """An error answered to the client: HTTP ``status``, MLflow ``error_code``, ``message``."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        details: Mapping[str, Any] | None = None,
        plain: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.details = dict(details or {})
        self.plain = plain  # MLflow answers 415 as text/plain
        self.headers = dict(headers or {})

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"error_code": self.error_code, "message": self.message}
        if self.details:
            out["details"] = self.details
        if request_id is not None:
            out["request_id"] = request_id
        return out


def bad_request(message: str, **details: Any) -> ServingError:
    return ServingError(400, "BAD_REQUEST", message, details=details or None)


@dataclass(eq=False)
class Block:
    """Numeric rows as one 2-D numpy array with column names (the fast path of column data).

    ``to_table()`` gives the Arrow table the general path validates; the served model may instead
    feed the block itself when it has been checked to predict the same from it.
    """

    values: np.ndarray
    columns: list[str]
    rows: Sequence[Any] | None = None  # the JSON rows, typed exactly (booleans stay booleans)
    # JSON has no NaN (orjson refuses it) and a null makes the rows objects, never a block: the
    # values of a block read from JSON need no missing-value scan.
    no_nan: bool = False

    @property
    def num_rows(self) -> int:
        return int(self.values.shape[0])

    def to_table(self) -> pa.Table:
        """The rows as the general path reads them (each column typed from its JSON values)."""
        if self.rows is not None:
            return _columns_to_table(
                {c: [row[i] for row in self.rows] for i, c in enumerate(self.columns)}
            )
        return self.values_table()

    def values_table(self) -> pa.Table:
        """The block's own values as a table (what a fast-path model was fed)."""
        block = np.ascontiguousarray(self.values.T)
        return pa.Table.from_arrays(
            [pa.array(block[i]) for i in range(len(self.columns))], names=self.columns
        )

    def select(self, columns: Sequence[str]) -> Block | None:
        """The block with exactly ``columns`` in that order (extra ones dropped); None when one is
        missing."""
        if list(columns) == self.columns:
            return self
        index = {c: i for i, c in enumerate(self.columns)}
        try:
            idx = [index[c] for c in columns]
        except KeyError:
            return None
        return Block(self.values[:, idx], list(columns), None, self.no_nan)

    @staticmethod
    def concat(blocks: Sequence[Block]) -> Block:
        return Block(np.concatenate([b.values for b in blocks]), blocks[0].columns, None)


@dataclass
class ParsedRequest:
    """A request body read into model input.

    ``data`` is a pyarrow Table for column data, a numpy array for one tensor, or a dict of numpy
    arrays for named tensors; ``format`` is the key (or content type) it came in.
    """

    data: Any
    format: str
    params: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return row_count(self.data) or 0


def row_count(value: Any) -> int | None:
    """Rows in a table, block, array (its first dimension), list, or dict of columns or tensors;
    None for a scalar or an empty dict."""
    n = getattr(value, "num_rows", None)
    if n is not None:
        return int(n)
    shape = getattr(value, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict) and value:
        return row_count(np.asarray(next(iter(value.values()))))
    return None


# ------------------------------------------------------------------------------------ content type


_KNOWN_TYPES: dict[str, str] = {}  # Content-Type header -> its accepted mime type (a few entries)


def split_content_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    """``"text/csv; charset=utf-8"`` -> ``("text/csv", {})``; 415 for what MLflow refuses."""
    if content_type is not None:
        known = _KNOWN_TYPES.get(content_type)
        if known is not None:
            return known, {}
    mime, params = _split_content_type(content_type)
    if len(_KNOWN_TYPES) < 64:
        _KNOWN_TYPES[content_type] = mime  # type: ignore[index]
    return mime, params


def _split_content_type(content_type: str | None) -> tuple[str, dict[str, str]]:
    if not content_type:
        raise ServingError(
            415,
            "BAD_REQUEST",
            f"This predictor only supports the following content types: {list(CONTENT_TYPES)}. "
            "Got no Content-Type header.",
            plain=True,
        )
    parts = [p.strip() for p in content_type.split(";")]
    mime = parts[0].lower()
    params = {}
    for pair in parts[1:]:
        key, _, value = pair.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    charset = params.pop("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ServingError(415, "BAD_REQUEST", "The scoring server only supports UTF-8", plain=True)
    if params:
        raise ServingError(
            415,
            "BAD_REQUEST",
            f"Unrecognized content type parameters: {', '.join(sorted(params))}.",
            plain=True,
        )
    if mime not in CONTENT_TYPES:
        raise ServingError(
            415,
            "BAD_REQUEST",
            f"This predictor only supports the following content types: {list(CONTENT_TYPES)}. "
            f"Got '{content_type}'.",
            plain=True,
        )
    return mime, params


# ------------------------------------------------------------------------------------------ parsing


def parse_invocation(body: bytes, content_type: str | None) -> ParsedRequest:
    """Read an ``/invocations`` body; :class:`ServingError` (400/415) when it cannot be read."""
    mime, _ = split_content_type(content_type)
    if mime == JSON:
        return parse_json_body(body)
    if mime in CSV_TYPES:
        return ParsedRequest(_read_csv(body), "csv")
    return ParsedRequest(_read_parquet(body), "parquet")


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(
            f"Invalid input. Ensure that input is a valid JSON formatted string. Error: '{exc}'"
        ) from None


def parse_json_body(body: bytes) -> ParsedRequest:
    doc = load_json(body)
    if isinstance(doc, list):
        raise bad_request(f"Invalid input. {REQUIRED_INPUT_FORMAT}. Received a list.")
    if not isinstance(doc, dict):
        raise bad_request(
            f"Invalid input. {REQUIRED_INPUT_FORMAT}. Received unexpected input type "
            f"'{type(doc).__name__}'."
        )
    keys = [k for k in doc if k in _FORMAT_SET]
    if len(keys) != 1:
        raise bad_request(
            f"{REQUIRED_INPUT_FORMAT}. Received dictionary with input fields: {list(doc)}."
        )
    key = keys[0]
    params = doc.get("params")
    if params is not None and not isinstance(params, dict):
        raise bad_request(f"`params` must be a JSON object; got {type(params).__name__}.")
    if key in ("instances", "inputs") and any(k not in (key, "params") for k in doc):
        raise bad_request(
            'Invalid input. One of "instances" and "inputs" must be specified (not both or any '
            f"other keys).Received: {list(doc)}"
        )
    value = doc[key]
    if key == "dataframe_split":
        data = _read_split(value)
    elif key == "dataframe_records":
        if not isinstance(value, list):
            what = "dictionary" if isinstance(value, dict) else f"type {type(value).__name__}"
            raise bad_request(
                f"Invalid input. Dataframe records format must be a list of records. Got {what}."
            )
        data = _read_records(value, key)
    else:
        data = _read_tf_serving(value, key)
    return ParsedRequest(data, key, params)


def _read_split(value: Any) -> pa.Table | Block:
    if not isinstance(value, dict):
        what = "list" if isinstance(value, list) else f"type {type(value).__name__}"
        raise bad_request(
            f"Invalid input. Dataframe split format must be a dictionary. Got {what}."
        )
    keys = set(value)
    if "data" not in keys or keys - {"columns", "data", "index"}:
        raise bad_request(
            "Invalid input. Dataframe split format must have 'data' field and optionally "
            f"'columns' and 'index' fields. Got {sorted(keys)}."
        )
    rows = value["data"]
    columns = value.get("columns")
    if not isinstance(rows, list):
        raise bad_request("Invalid input. 'data' of dataframe_split must be a list of rows.")
    if rows and not isinstance(rows[0], list):
        rows = [[v] for v in rows]  # a single column given as a flat list
    width = len(rows[0]) if rows else len(columns or ())
    if columns is None:
        columns = [str(i) for i in range(width)]
    if not isinstance(columns, list):
        raise bad_request("Invalid input. 'columns' of dataframe_split must be a list of names.")
    columns = _checked_columns(columns)
    index = value.get("index")
    if index is not None and (not isinstance(index, list) or len(index) != len(rows)):
        raise bad_request(
            f"Invalid input. 'index' of dataframe_split has {len(index or [])} entries for "
            f"{len(rows)} rows."
        )
    return rows_to_table(rows, columns, from_json=True)


_COLUMNS: dict[
    tuple[Any, ...], list[str]
] = {}  # column lists already checked (clients repeat them)


def _checked_columns(columns: list[Any]) -> list[str]:
    """Column names as text, refused when not names or repeated; a repeated list costs a lookup."""
    try:
        key = tuple(columns)
        known = _COLUMNS.get(key)
    except TypeError:  # unhashable entries (lists, objects): not names
        key, known = (), None
    if known is not None:
        return known
    if not all(isinstance(c, str | int) and not isinstance(c, bool) for c in columns):
        raise bad_request("Invalid input. 'columns' of dataframe_split must be a list of names.")
    names = [str(c) for c in columns]
    if len(set(names)) != len(names):
        raise bad_request(f"Invalid input. Duplicate column names in dataframe_split: {names}.")
    if key and len(_COLUMNS) < 256 and all(isinstance(c, str) for c in columns):
        _COLUMNS[key] = names  # only text names: 1 == True == 1.0 must not share an entry
    return names


def rows_to_table(
    rows: Sequence[Any], columns: Sequence[str], *, from_json: bool = False
) -> pa.Table | Block:
    """Row-major values -> a :class:`Block` when all are numbers, else an Arrow table.

    ``from_json``: the values were parsed from JSON, which cannot hold NaN.
    """
    width = len(columns)
    if rows and isinstance(rows[0], list):
        try:
            arr = np.asarray(rows)
        except (ValueError, TypeError):  # ragged rows: reported below, row by row
            arr = None
        # A 2-D array of numbers means every row is a list of `width` numbers (the common case,
        # checked in one step); anything else gets the row-by-row check and its message.
        if arr is not None and arr.ndim == 2 and arr.shape[1] == width and arr.dtype.kind in "biuf":
            return Block(arr, list(columns), rows, no_nan=from_json or arr.dtype.kind != "f")
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise bad_request(
                f"Invalid input. Row {i} has {got} values; the columns are {list(columns)} "
                f"({width})."
            )
    if not rows:
        return pa.table({c: pa.array([], pa.null()) for c in columns})
    return _columns_to_table({c: [row[i] for row in rows] for i, c in enumerate(columns)})


def _columns_to_table(cols: Mapping[str, Any]) -> pa.Table:
    arrays = []
    for name, values in cols.items():
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            message = f"column {name!r} mixes value types that cannot form one column ({exc})"
            raise bad_request(
                f"Invalid input. {message[0].upper()}{message[1:]}.",
                problems=[
                    {"column": name, "problem": "dtype", "received": "mixed", "message": message}
                ],
            ) from None
    return pa.Table.from_arrays(arrays, names=[str(n) for n in cols])


def _read_records(records: list[Any], key: str) -> pa.Table:
    columns: dict[str, None] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise bad_request(
                f"Invalid input. Each entry of {key} must be an object of column values; entry "
                f"{i} is {type(rec).__name__}."
            )
        for k in rec:
            columns.setdefault(str(k), None)
    return _columns_to_table({c: [rec.get(c) for rec in records] for c in columns})


def _read_tf_serving(value: Any, key: str) -> Any:
    """``instances`` / ``inputs``: row objects, an object of columns (or named tensors), or lists."""
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return _read_records(value, key)
        return _tensor(value, key)
    if isinstance(value, dict):
        if not value:
            raise bad_request(f"Invalid input. `{key}` is an empty object.")
        out: dict[str, np.ndarray] = {}
        for name, v in value.items():
            out[str(name)] = _tensor(v if isinstance(v, list) else [v], f"{key}.{name}")
        if all(a.ndim == 1 for a in out.values()) and len({len(a) for a in out.values()}) == 1:
            return _columns_to_table(
                {k: value[k] if isinstance(value[k], list) else [value[k]] for k in value}
            )
        return out
    return _tensor([value], key)


def _tensor(value: list[Any], where: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise bad_request(f"Invalid input. `{where}` is not a rectangular array: {exc}.") from None
    if arr.dtype.kind == "O":
        raise bad_request(
            f"Invalid input. `{where}` mixes value types (or holds nulls) that cannot form one "
            "tensor."
        )
    return arr


def _read_csv(body: bytes) -> pa.Table:
    import pyarrow.csv as pacsv

    if not body.strip():
        raise bad_request("Invalid input. The CSV body is empty; expected a header row and rows.")
    try:  # from an Arrow-owned copy: Arrow's threads may release it without the GIL
        return pacsv.read_csv(pa.BufferReader(arrow_buffer(body)))
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise bad_request(
            "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
            f"CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` "
            f"method. Error: '{exc}'"
        ) from None


def _read_parquet(body: bytes) -> pa.Table:
    try:
        return read_parquet_bytes(body)
    except (pa.ArrowInvalid, OSError) as exc:
        raise bad_request(f"Failed to parse input as a Parquet table. Error: '{exc}'") from None


# ------------------------------------------------------------------------------------------ output


def jsonable_predictions(raw: Any) -> Any:
    """Model output in MLflow's response shape (frames as a list of records)."""
    if isinstance(raw, pa.Table):
        return raw.to_pylist()
    to_dict = getattr(raw, "to_dict", None)
    if callable(to_dict) and hasattr(raw, "columns"):  # a pandas DataFrame
        return raw.to_dict(orient="records")
    to_numpy = getattr(raw, "to_numpy", None)
    if callable(to_numpy) and not isinstance(raw, np.ndarray):  # a Series
        return to_numpy()
    return raw


def encode_predictions(raw: Any) -> bytes:
    """``{"predictions": ...}`` as bytes (numpy arrays serialised natively)."""
    return orjson.dumps(
        {"predictions": jsonable_predictions(raw)},
        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
        default=_default,
    )


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):  # non-contiguous or object arrays
        return value.tolist()
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return iso()
    raise TypeError(f"cannot serialise {type(value).__name__}")
