"""A model as served: the loaded package, the version it is, and its request path.

A served model is immutable; a swap replaces the whole object, so a request that picked a model
finishes on it whatever moves meanwhile.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa

from mloop.errors import InvalidInputError, MloopError
from mloop.registry import ModelRef, ModelVersion, Registry, parse_model_uri, validate_input

from ._forest import forest_predictor
from ._payload import Block, ServingError, bad_request, row_count

__all__ = ["ServedModel", "load_served", "version_label"]

log = logging.getLogger("mloop.serving")


def version_label(mv: ModelVersion) -> str:
    return f"{mv.name}/{mv.version}"


@dataclass(frozen=True, eq=False)
class ServedModel:
    """One loaded version: ``uri`` as asked (``models:/churn@champion``), ``version`` as resolved."""

    uri: str
    version: ModelVersion
    model: Any  # PackagedModel
    loaded_ms: int
    load_s: float
    columns: tuple[str, ...] | None = field(default=None)
    # The fast path: float64 rows in this column order are fed to the model as one numpy array
    # (checked at load to predict exactly what the validated DataFrame path predicts).
    fast_columns: tuple[str, ...] | None = field(default=None)
    nullable: bool = True
    # How a fast-path block is predicted: the model's own predict, or a verified faster twin.
    block_predict: Any = None
    # Moving average of one model call in seconds (measured at load on the input example, then
    # on requests): short calls run in the event loop, long ones in the predict thread.
    cost_s: list[float] = field(default_factory=lambda: [1.0])
    # The model method that answers requests (None: ``predict``).
    method: str | None = None

    def block_call(self) -> Any:
        """What a fast-path float64 array is fed to: the faster twin, or the model's method."""
        return self.block_predict or getattr(self.model.raw, self.method or "predict")

    @cached_property
    def label(self) -> str:
        """``churn/3``: what answered (the ``X-Mloop-Model-Version`` header)."""
        return version_label(self.version)

    @cached_property
    def label_header(self) -> tuple[bytes, bytes]:
        return (b"x-mloop-model-version", self.label.encode("latin-1"))

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def signature(self) -> Any:
        return self.model.signature

    def prepare(self, data: Any) -> Any:
        """The request's rows, ready for :meth:`predict` and for the inference log.

        Numeric rows stay a :class:`Block` when this model takes the fast path (every signature
        column present, float64, no missing value where none is allowed); otherwise they become an
        Arrow table for the signature check. Columns the signature does not name are dropped
        here (as MLflow does), silently: the server does not warn per request.
        """
        cols = self.columns
        if (
            cols is not None
            and isinstance(data, np.ndarray)
            and data.ndim == 2
            and data.shape[1] == len(cols)
            and data.dtype.kind in "biuf"
        ):
            data = Block(data, list(cols), None)  # rows of values given in the signature's order
        if isinstance(data, Block):
            fast = self.fast_columns
            if fast is not None:
                block = data.select(fast)
                if block is not None:
                    values = block.values.astype(np.float64, copy=False)
                    if self.nullable or block.no_nan or not np.isnan(values).any():
                        return Block(values, block.columns, None, True)
            data = data.to_table()
        if cols is not None and isinstance(data, pa.Table) and data.column_names != list(cols):
            present = set(data.column_names)
            data = data.select([c for c in cols if c in present])
        return data

    def predict(
        self, data: Any, *, params: Mapping[str, Any] | None = None, method: str | None = None
    ) -> Any:
        """Signature check, then the flavor's predict. A mismatch is a 400 naming the columns."""
        method = method or self.method
        if isinstance(data, Block):  # prepared by this model: checked already
            if params or method != self.method:
                data = data.values_table()
            else:
                return self.block_call()(data.values)
        try:
            return self.model.predict(data, params=params, method=method)
        except InvalidInputError as exc:
            details = dict(exc.details or {})
            raise bad_request(str(exc), **details) from None


def load_served(
    registry: Registry, uri: str, *, verify: bool = True, method: str | None = None
) -> ServedModel:
    """Resolve ``uri`` to a version, load it (hashes checked), smoke-test it on its input example.

    ``method`` is the model method that answers (default ``predict``).

    Raises :class:`~mloop.errors.MloopError` (the version, the file, the example that failed).
    """
    ref = parse_model_uri(uri)
    if not isinstance(ref, ModelRef):
        raise InvalidInputError(
            f"serve a registered model (models:/name@alias or models:/name/3); got {uri!r}."
        )
    start = time.perf_counter()
    mv = registry.resolve(uri)
    model = registry.load(f"models:/{mv.name}/{mv.version}")
    served = ServedModel(
        uri=uri,
        version=mv,
        model=model,
        loaded_ms=int(time.time() * 1000),
        load_s=0.0,
        columns=_columns(model.signature),
        method=None if method == "predict" else method,
    )
    if method is not None and not callable(getattr(model.raw, method, None)):
        raise InvalidInputError(
            f"{served.label} ({type(model.raw).__name__}) has no method {method!r} to serve.",
            details={"method": method},
        )
    if verify:
        t0 = time.perf_counter()
        smoke_test(served)
        served.cost_s[0] = time.perf_counter() - t0
    fast = _fast_columns(served)
    if fast is not None:
        nullable = any(getattr(s, "nullable", True) for s in model.signature.inputs.specs)  # type: ignore[union-attr]
        served = replace(
            served, fast_columns=fast, nullable=nullable, block_predict=_faster_twin(served)
        )
    object.__setattr__(served, "load_s", time.perf_counter() - start)
    return served


def _fast_columns(served: ServedModel) -> tuple[str, ...] | None:
    """The column order in which this model can take a float64 array instead of a DataFrame.

    Only for scikit-learn models whose signature is all float64 and whose ``feature_names_in_``
    are the signature's columns in the same order, and only when the array gives exactly the
    predictions the DataFrame gives on the stored input example. Then the names are checked here
    (by position) instead of by scikit-learn, which would warn that the array has none.
    """
    sig = served.signature
    cols = served.columns
    if served.model.flavor != "sklearn" or sig is None or cols is None:
        return None
    if any(str(s.dtype) != "float64" for s in sig.inputs.specs):
        return None
    names = getattr(served.model.raw, "feature_names_in_", None)
    if names is None or [str(n) for n in names] != list(cols):
        return None
    example = served.model.input_example
    if example is None:
        return None
    try:
        table = validate_input(example, sig, to="arrow")
        block = np.column_stack([c.to_numpy() for c in table.columns]).astype(np.float64)
        _quiet_feature_names()
        fast = np.asarray(getattr(served.model.raw, served.method or "predict")(block))
        slow = np.asarray(served.model.predict(example, method=served.method))
        if served.method is None or fast.dtype.kind not in "fc":
            same = np.array_equal(fast, slow)
        else:  # scores: the array's memory order may change BLAS's summation order (~1e-16)
            same = fast.shape == slow.shape and bool(np.allclose(fast, slow, rtol=1e-9, atol=1e-12))
    except Exception as exc:  # the model's own code: no fast path, the general one still works
        log.info("mloop serve: %s takes the DataFrame path (%s)", served.label, exc)
        return None
    return cols if same else None


def _faster_twin(served: ServedModel) -> Any:
    """A faster ``predict`` for fast-path arrays (tree ensembles), if it predicts exactly what
    the model does on the input example; else None."""
    fn = forest_predictor(served.model.raw)
    if fn is None or served.method is not None:  # the twins reproduce ``predict`` only
        return None
    try:
        table = validate_input(served.model.input_example, served.signature, to="arrow")
        block = np.column_stack([c.to_numpy() for c in table.columns]).astype(np.float64)
        if np.array_equal(np.asarray(fn(block)), np.asarray(served.model.raw.predict(block))):
            return fn
    except Exception as exc:  # the model's own code: its predict stays
        log.info("mloop serve: %s keeps its own predict (%s)", served.label, exc)
    return None


def _quiet_feature_names() -> None:
    """In the server, scikit-learn's "X does not have valid feature names" is expected (the fast
    path checked them); silence only that message, once."""
    warnings.filterwarnings(
        "ignore", message="X does not have valid feature names", category=UserWarning
    )


def _columns(signature: Any) -> tuple[str, ...] | None:
    if signature is None or signature.inputs.is_tensor:
        return None
    return tuple(str(s.name) for s in signature.inputs.specs)


def smoke_test(served: ServedModel) -> None:
    """Predict on the stored input example: a version that cannot is not swapped in."""
    example = served.model.input_example
    if example is None:
        return
    try:
        out = served.model.predict(example, method=served.method)
    except Exception as exc:  # the model's own code: any failure refuses the version
        raise MloopError(
            f"{served.label} failed its smoke test on the stored input example: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    n = row_count(example)
    got = row_count(out)
    if n is not None and got is not None and got != n:
        raise MloopError(
            f"{served.label} returned {got} predictions for the {n} rows of its input example."
        )


def as_serving_error(exc: BaseException) -> ServingError:
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, InvalidInputError):
        return bad_request(str(exc), **dict(exc.details or {}))
    return ServingError(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
