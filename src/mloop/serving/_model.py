"""A model as served: the loaded package, the version it is, and its request path.

A served model is immutable; a swap replaces the whole object, so a request that picked a model
finishes on it whatever moves meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from mloop.errors import InvalidInputError, MloopError
from mloop.registry import ModelRef, ModelVersion, Registry, parse_model_uri

from ._payload import ServingError, bad_request

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

    @property
    def label(self) -> str:
        return version_label(self.version)

    @property
    def name(self) -> str:
        return self.version.name

    @property
    def signature(self) -> Any:
        return self.model.signature

    def prepare(self, data: Any) -> Any:
        """Validate a request against the signature; the features to log and to predict on.

        Columns the signature does not name are dropped here (as MLflow does), silently: the
        server does not warn per request.
        """
        cols = self.columns
        if cols is not None and isinstance(data, pa.Table) and data.column_names != list(cols):
            present = set(data.column_names)
            data = data.select([c for c in cols if c in present])
        return data

    def predict(
        self, data: Any, *, params: Mapping[str, Any] | None = None, method: str | None = None
    ) -> Any:
        """Signature check, then the flavor's predict. A mismatch is a 400 naming the columns."""
        try:
            return self.model.predict(data, params=params, method=method)
        except InvalidInputError as exc:
            details = dict(exc.details or {})
            raise bad_request(str(exc), **details) from None


def load_served(registry: Registry, uri: str, *, verify: bool = True) -> ServedModel:
    """Resolve ``uri`` to a version, load it (hashes checked), smoke-test it on its input example.

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
    )
    if verify:
        smoke_test(served)
    object.__setattr__(served, "load_s", time.perf_counter() - start)
    return served


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
        out = served.model.predict(example)
    except Exception as exc:  # the model's own code: any failure refuses the version
        raise MloopError(
            f"{served.label} failed its smoke test on the stored input example: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    n = _rows(example)
    got = _rows(out)
    if n is not None and got is not None and got != n:
        raise MloopError(
            f"{served.label} returned {got} predictions for the {n} rows of its input example."
        )


def _rows(value: Any) -> int | None:
    if isinstance(value, pa.Table):
        return int(value.num_rows)
    shape = getattr(value, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict) and value:
        first = np.asarray(next(iter(value.values())))
        return int(first.shape[0]) if first.ndim else None
    return None


def as_serving_error(exc: BaseException) -> ServingError:
    if isinstance(exc, ServingError):
        return exc
    if isinstance(exc, InvalidInputError):
        return bad_request(str(exc), **dict(exc.details or {}))
    return ServingError(500, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}")
