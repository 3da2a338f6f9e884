"""The Open Inference Protocol (KServe v2): model metadata from the signature, tensor JSON infer.

A column signature is served as one input tensor per column (shape ``[-1]``), as MLServer's pandas
codec does; a tensor signature as its tensors. Errors are ``{"error": message}`` (400, 404).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ._payload import ServingError, load_json

__all__ = ["DATATYPES", "infer_request", "infer_response", "model_metadata"]

# OIP datatype -> numpy dtype
DATATYPES: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
_SIG_TO_OIP = {v: k for k, v in DATATYPES.items() if k != "BYTES"}
_SIG_TO_OIP.update({"string": "BYTES", "category": "BYTES", "binary": "BYTES", "datetime": "BYTES"})


def oip_error(status: int, message: str) -> ServingError:
    err = ServingError(status, "BAD_REQUEST" if status == 400 else "NOT_FOUND", message)
    err.details["oip"] = True
    return err


def _datatype(dtype: str) -> str:
    return _SIG_TO_OIP.get(dtype, "BYTES")


def model_metadata(name: str, versions: list[str], platform: str, signature: Any) -> dict[str, Any]:
    inputs: list[dict[str, Any]] = []
    outputs: list[dict[str, Any]] = []
    if signature is not None:
        for spec in signature.inputs.specs:
            inputs.append(_spec_meta(spec))
        if signature.outputs is not None:
            outputs = [_spec_meta(s) for s in signature.outputs.specs]
    return {
        "name": name,
        "versions": versions,
        "platform": platform,
        "inputs": inputs,
        "outputs": outputs,
    }


def _spec_meta(spec: Any) -> dict[str, Any]:
    shape = list(getattr(spec, "shape", None) or [-1])
    return {
        "name": str(spec.name if spec.name is not None else "input-0"),
        "datatype": _datatype(str(spec.dtype)),
        "shape": shape,
    }


def infer_request(body: bytes, signature: Any) -> tuple[Any, str | None, dict[str, Any] | None]:
    """An OIP infer body -> (model input, the request ``id``, ``parameters``)."""
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise oip_error(400, "The infer request must be a JSON object with `inputs`.")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise oip_error(400, "The infer request needs a non-empty `inputs` list.")
    rid = doc.get("id")
    if rid is not None and not isinstance(rid, str):
        raise oip_error(400, f"`id` must be a string; got {type(rid).__name__}.")
    params = doc.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise oip_error(400, "`parameters` must be an object.")
    tensors: dict[str, np.ndarray] = {}
    for i, t in enumerate(inputs):
        if not isinstance(t, dict):
            raise oip_error(400, f"inputs[{i}] must be an object.")
        name, shape, datatype, data = (t.get(k) for k in ("name", "shape", "datatype", "data"))
        if not isinstance(name, str) or not name:
            raise oip_error(400, f"inputs[{i}] needs a `name`.")
        if datatype not in DATATYPES:
            raise oip_error(
                400, f"input {name!r}: unknown datatype {datatype!r}; known: {sorted(DATATYPES)}."
            )
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise oip_error(400, f"input {name!r}: `shape` must be a list of non-negative ints.")
        if not isinstance(data, list):
            raise oip_error(400, f"input {name!r}: `data` must be a list.")
        try:
            arr = np.asarray(data, dtype=DATATYPES[datatype])
        except (ValueError, TypeError) as exc:
            raise oip_error(400, f"input {name!r}: data is not {datatype}: {exc}.") from None
        size = int(np.prod(shape)) if shape else 1
        if arr.size != size:
            raise oip_error(
                400, f"input {name!r}: shape {shape} holds {size} values; `data` has {arr.size}."
            )
        tensors[name] = arr.reshape(shape)
    columns = signature is not None and not signature.inputs.is_tensor
    if columns:
        cols = {}
        for name, arr in tensors.items():
            if arr.ndim == 2 and arr.shape[1] == 1:
                arr = arr[:, 0]
            if arr.ndim != 1:
                raise oip_error(
                    400,
                    f"input {name!r}: a column of this model takes shape [n] or [n, 1]; got {list(arr.shape)}.",
                )
            cols[name] = pa.array(arr.tolist() if arr.dtype == object else arr)
        lengths = {len(c) for c in cols.values()}
        if len(lengths) > 1:
            raise oip_error(
                400,
                f"The column inputs have different lengths: { {k: len(v) for k, v in cols.items()} }.",
            )
        return pa.table(cols), rid, params
    if len(tensors) == 1 and (signature is None or signature.inputs.specs[0].name is None):
        return next(iter(tensors.values())), rid, params
    return tensors, rid, params


def infer_response(
    name: str, version: str, rid: str | None, predictions: Any, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    outputs = []
    to_numpy = getattr(predictions, "to_numpy", None)
    if hasattr(predictions, "columns") and callable(to_numpy):  # a DataFrame: one output a column
        for col in predictions.columns:
            outputs.append(_tensor_out(str(col), np.asarray(predictions[col].to_numpy())))
    elif isinstance(predictions, dict):
        for key, value in predictions.items():
            outputs.append(_tensor_out(str(key), np.asarray(value)))
    else:
        arr = np.asarray(to_numpy() if callable(to_numpy) else predictions)
        outputs.append(_tensor_out("predict", arr))
    out: dict[str, Any] = {"model_name": name, "model_version": version, "outputs": outputs}
    if rid is not None:
        out["id"] = rid
    if params:
        out["parameters"] = params
    return out


def _tensor_out(name: str, arr: np.ndarray) -> dict[str, Any]:
    kind = arr.dtype.kind
    data: Any
    if kind in "US" or kind == "O":
        datatype, data = "BYTES", [str(v) for v in arr.reshape(-1).tolist()]
    else:
        datatype = _SIG_TO_OIP.get(arr.dtype.name, "FP64")
        data = arr.reshape(-1)
    return {"name": name, "shape": list(arr.shape), "datatype": datatype, "data": data}
