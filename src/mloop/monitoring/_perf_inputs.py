"""Input coercion for performance reports: 1-d arrays, scores, missing values, class labels."""

from __future__ import annotations

import sys
from typing import Any, Literal

import numpy as np

from mloop.errors import InvalidInputError

__all__: list[str] = []

Task = Literal["binary", "multiclass", "regression"]


def _as_1d(values: Any, name: str) -> np.ndarray:
    arr = _to_numpy(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise InvalidInputError(f"`{name}` must be one-dimensional; got shape {arr.shape}.")
    return arr


def _as_score(values: Any) -> np.ndarray:
    arr = _to_numpy(values)
    if arr.ndim not in (1, 2):
        raise InvalidInputError(f"`y_score` must be 1-D or 2-D; got shape {arr.shape}.")
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"`y_score` must be numeric; got dtype {arr.dtype}.") from exc


def _to_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.dtype.kind == "O":
        # pandas' nullable columns and lists with None: numeric when every present value is numeric.
        miss = _missing(arr)
        present = arr[~miss]
        if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in present):
            out = np.full(arr.shape, np.nan)
            out[~miss] = present.astype(np.float64)
            return out
    return arr


def _missing(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "f":
        return np.isnan(arr) if arr.ndim == 1 else np.isnan(arr).any(axis=1)
    if arr.dtype.kind == "O":
        # pandas' NA can only be in the array if pandas is imported: never import it to check
        na = getattr(sys.modules.get("pandas"), "NA", None)
        return np.fromiter(
            (v is None or (isinstance(v, float) and v != v) or v is na for v in arr),
            dtype=bool,
            count=len(arr),
        )
    return np.zeros(len(arr), dtype=bool)


def _class_labels(
    yt: np.ndarray, yp: np.ndarray | None, ys: np.ndarray | None, labels: Any, task: Task
) -> list[Any]:
    if labels is not None:
        classes = list(labels)
        if len(set(classes)) != len(classes):
            raise InvalidInputError(f"`labels` must be unique; got {classes!r}.")
    else:
        seen = [yt] if yp is None else [yt, yp]
        kinds = {a.dtype.kind for a in seen if len(a)}
        numeric = {"b", "i", "u", "f"}
        if len(kinds) > 1 and not kinds <= numeric:
            raise InvalidInputError(
                "`y_true` and `y_pred` hold labels of different types "
                f"({', '.join(a.dtype.name for a in seen)}); pass the same type or `labels=`."
            )
        try:
            classes = [_plain(v) for v in np.unique(np.concatenate(seen))]
        except TypeError as exc:
            raise InvalidInputError(
                "Labels of mixed, incomparable types; pass `labels=` explicitly."
            ) from exc
        if ys is not None and ys.ndim == 2 and task == "multiclass":
            k = ys.shape[1]
            ints = all(isinstance(c, (int, np.integer)) for c in classes)
            if len(classes) < k and ints and all(0 <= int(c) < k for c in classes):
                classes = list(range(k))
    if ys is not None and ys.ndim == 2 and task == "multiclass" and ys.shape[1] != len(classes):
        raise InvalidInputError(
            f"`y_score` has {ys.shape[1]} columns but there are {len(classes)} classes "
            f"({classes!r}); pass `labels=` in the order of the score columns."
        )
    if task == "binary" and len(classes) > 2:
        raise InvalidInputError(
            f"task='binary' but {len(classes)} classes were found ({classes[:10]!r}); "
            "use task='multiclass'."
        )
    return classes


def _binary_classes(classes: list[Any], pos_label: Any) -> tuple[list[Any], Any]:
    """Both classes of a binary task (even when a window shows only one) and the positive one."""
    if pos_label is None:
        if set(classes) <= {0, 1}:
            boolean = any(isinstance(c, (bool, np.bool_)) for c in classes)
            return ([False, True], True) if boolean else ([0, 1], 1)
        if set(classes) <= {-1, 1}:
            return [-1, 1], 1
        raise InvalidInputError(
            f"Binary labels are {classes!r}; pass `pos_label=` to say which is the positive class."
        )
    if pos_label not in classes:
        classes = [*classes, pos_label]
    if len(classes) < 2:
        raise InvalidInputError(
            f"Only the class {classes!r} was seen; pass `labels=` with both binary classes."
        )
    return classes, pos_label


# ---------------------------------------------------------------- classification


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
