"""Importable model classes and a fresh-process loader for the registry packaging tests."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

HERE = Path(__file__).resolve().parent


class Doubler(TransformerMixin, BaseEstimator):
    """A custom sklearn transformer: skops stores it but must be told to trust its type."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def fit(self, X: Any, y: Any = None) -> Doubler:
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=float) * self.factor


class Threshold:
    """A python_function model: a plain class with predict."""

    def __init__(self, cut: float = 0.0) -> None:
        self.cut = cut

    def predict(self, data: Any) -> np.ndarray:
        return (np.asarray(data["x"]) > self.cut).astype(np.int64)


try:
    import torch
except ImportError:  # torch is optional; the torch tests skip
    pass
else:

    class TinyNet(torch.nn.Module):
        """A module rebuilt from its class and constructor kwargs (state_dict format)."""

        def __init__(self, n_in: int, hidden: int = 8) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Linear(n_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)


def predict_in_fresh_process(
    model_dir: Path,
    data: Any,
    *,
    methods: tuple[str | None, ...] = (None,),
    extra_path: list[Path] | None = None,
) -> Any:
    """Load ``model_dir`` in a new Python process (warnings are errors) and predict with it.

    Returns the loaded object's class name and the prediction, or with several ``methods`` the
    list of predictions, one per method (one process: each start costs seconds of imports).
    """
    work = model_dir.parent
    inp, out = work / f"{model_dir.name}.in.pkl", work / f"{model_dir.name}.out.pkl"
    inp.write_bytes(pickle.dumps(data))
    script = textwrap.dedent(
        f"""
        import pickle, sys
        from mloop.registry._package import load_model_dir
        data = pickle.loads(open({str(inp)!r}, "rb").read())
        model = load_model_dir({str(model_dir)!r})
        assert {str(HERE)!r} not in sys.path or {bool(extra_path)!r}
        preds = [model.predict(data, method=m) for m in {methods!r}]
        open({str(out)!r}, "wb").write(pickle.dumps((type(model.raw).__name__, preds)))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in extra_path)
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    name, preds = pickle.loads(out.read_bytes())
    return (name, preds[0]) if len(methods) == 1 else (name, preds)
