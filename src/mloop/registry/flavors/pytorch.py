"""PyTorch flavor: a ``state_dict`` plus an importable module class, or TorchScript.

``format="state_dict"`` (the default for an ``nn.Module``) stores the weights with ``torch.save``
and reads them back with ``torch.load(weights_only=True)``, which cannot run code; the module is
rebuilt as ``module_class(**init_kwargs)`` (``"pkg.mod:ClassName"``, by default the model's own
class when it is importable; ship its source with ``code_paths`` when it is not installed).
``format="torchscript"`` (the default for a ``ScriptModule``) stores a TorchScript archive; an
``nn.Module`` is scripted (``torchscript="script"``) or traced on the input example
(``torchscript="trace"``). Both are checked at save time: the reloaded module must reproduce the
original's output on the input example.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mloop.errors import InvalidInputError

from . import Flavor, SavedFlavor, call_method, import_object, qualified_name
from ._checks import checked_subclass

STATE_FILE = "state_dict.pt"
SCRIPT_FILE = "model.torchscript.pt"


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    # TorchScript is deprecated upstream but still what many teams ship; we read and write it
    # on purpose, so its deprecation warnings are not the user's to act on.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit.*deprecated", category=DeprecationWarning
        )
        yield


class PyTorchFlavor(Flavor):
    """``torch.nn.Module`` (weights + class) and TorchScript modules; predictions come back as numpy."""

    name = "pytorch"
    framework = "torch"
    module = "torch"

    def save(
        self, model: Any, path: Path, *, options: Mapping[str, Any], input_example: Any
    ) -> SavedFlavor:
        torch = self.import_framework()
        if not isinstance(model, torch.nn.Module):
            raise InvalidInputError(
                f"The pytorch flavor takes a torch.nn.Module; got {qualified_name(type(model))}."
            )
        is_script = isinstance(model, torch.jit.ScriptModule)
        fmt = options.get("format", "torchscript" if is_script else "state_dict")
        input_dtype = options.get("input_dtype") or _param_dtype(torch, model)
        base = {"format": fmt, "input_dtype": input_dtype}
        if fmt == "torchscript":
            scripted = (
                model
                if is_script
                else self._to_script(torch, model, options, input_example, input_dtype)
            )
            with _quiet_jit():
                torch.jit.save(scripted, str(path / SCRIPT_FILE))
            saved = SavedFlavor({**base, "file": SCRIPT_FILE})
        elif fmt == "state_dict":
            if is_script:
                raise InvalidInputError(
                    "A TorchScript module cannot be saved as a state_dict; use format='torchscript'."
                )
            module_class = options.get("module_class") or qualified_name(type(model))
            init_kwargs = dict(options.get("init_kwargs") or {})
            torch.save(model.state_dict(), str(path / STATE_FILE))
            saved = SavedFlavor(
                {
                    **base,
                    "file": STATE_FILE,
                    "module_class": module_class,
                    "init_kwargs": init_kwargs,
                }
            )
        else:
            raise InvalidInputError(
                f"pytorch `format` must be 'state_dict' or 'torchscript'; got {fmt!r}."
            )
        reloaded = self.load(path, saved.options)
        if input_example is not None and not _same(
            self.predict(model, input_example, options=saved.options),
            self.predict(reloaded, input_example, options=saved.options),
        ):
            raise InvalidInputError(
                "The saved pytorch model does not reproduce the original's output on the input "
                "example (non-deterministic layers in train mode? wrong init_kwargs?)."
            )
        return saved

    @staticmethod
    def _to_script(
        torch: Any, model: Any, options: Mapping[str, Any], example: Any, dtype: str
    ) -> Any:
        how = options.get("torchscript", "script")
        with _quiet_jit():
            if how == "script":
                return torch.jit.script(model)
            if how == "trace":
                if example is None:
                    raise InvalidInputError(
                        "torchscript='trace' needs an input_example to trace with."
                    )
                return torch.jit.trace(model.eval(), _to_tensor(torch, example, dtype))
        raise InvalidInputError(f"`torchscript` must be 'script' or 'trace'; got {how!r}.")

    def load(self, path: Path, options: Mapping[str, Any]) -> Any:
        torch = self.import_framework()
        file = str(path / options["file"])
        if options.get("format") == "torchscript":
            with _quiet_jit():
                return torch.jit.load(file, map_location="cpu").eval()
        ref = options["module_class"]
        if ref.startswith("__main__:"):
            raise InvalidInputError(
                f"The module class {ref!r} was defined in a script's __main__ and cannot be "
                "imported; move it into a module (shipped with code_paths=[...]) and pass "
                "module_class='module:ClassName', or use format='torchscript'."
            )
        importlib.invalidate_caches()
        cls = checked_subclass(
            import_object(ref, where="the pytorch module class"), torch.nn.Module
        )
        try:
            module = cls(**dict(options.get("init_kwargs") or {}))
        except TypeError as exc:
            raise InvalidInputError(
                f"Cannot construct {ref}(**init_kwargs) with init_kwargs="
                f"{options.get('init_kwargs')}: {exc}. Pass flavor_options={{'init_kwargs': ...}}."
            ) from exc
        state = torch.load(file, map_location="cpu", weights_only=True)
        module.load_state_dict(state, strict=True)
        return module.eval()

    def predict(
        self,
        raw: Any,
        data: Any,
        *,
        method: str | None = None,
        params: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> Any:
        torch = self.import_framework()
        dtype = (options or {}).get("input_dtype", "float32")
        was_training = raw.training
        raw.eval()
        try:
            with torch.inference_mode():
                if isinstance(data, Mapping):
                    tensors = {k: _to_tensor(torch, v, dtype) for k, v in data.items()}
                    if method not in (None, "predict", "forward"):
                        return _to_numpy(
                            torch, getattr(raw, method)(**tensors, **dict(params or {}))
                        )
                    return _to_numpy(torch, raw(**tensors, **dict(params or {})))
                x = _to_tensor(torch, data, dtype)
                if method in (None, "predict", "forward"):
                    return _to_numpy(torch, raw(x, **dict(params or {})))
                return _to_numpy(torch, call_method(raw, method, x, params))
        finally:
            raw.train(was_training)


def _param_dtype(torch: Any, model: Any) -> str:
    for p in model.parameters():
        if p.is_floating_point():
            return str(p.dtype).removeprefix("torch.")
    return "float32"


def _to_tensor(torch: Any, data: Any, dtype: str) -> Any:
    if isinstance(data, torch.Tensor):
        return data
    to_numpy = getattr(data, "to_numpy", None)
    arr = np.asarray(to_numpy() if callable(to_numpy) else data)
    if arr.dtype.kind == "f" or (arr.dtype.kind == "b" and dtype.startswith("float")):
        arr = arr.astype(dtype, copy=False)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _to_numpy(torch: Any, out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().numpy()
    if isinstance(out, tuple | list):
        return type(out)(_to_numpy(torch, o) for o in out)
    if isinstance(out, Mapping):
        return {k: _to_numpy(torch, v) for k, v in out.items()}
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-7, equal_nan=True))
