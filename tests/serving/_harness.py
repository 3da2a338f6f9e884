"""Real `mloop serve` processes on free loopback ports, and the models they serve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

MODELS_DIR = Path(__file__).parent / "models_code"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLOOP_")}
    env["MLOOP_HOME"] = str(home)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


class Server:
    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log
        self.client = httpx.Client(base_url=url, timeout=30.0)

    def post_json(self, path: str, doc: Any, **headers: str) -> httpx.Response:
        return self.client.post(path, json=doc, headers=headers)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)


@contextmanager
def serve(home: Path, target: str, *args: str, ready_timeout: float = 90.0) -> Iterator[Server]:
    """Start ``mloop serve TARGET ARGS`` and wait until ``/ping`` answers 200."""
    port = free_port()
    log = home / f"serve-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mloop", "serve", target, "--port", str(port), *args]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env_for(home), stdout=out, stderr=subprocess.STDOUT)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mloop serve exited with {proc.returncode}:\n{server.output()}")
            try:
                if httpx.get(f"{server.url}/ping", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mloop serve did not come up:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def breast_cancer() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def build_models(home: Path) -> dict[str, Any]:
    """Register in ``home``: ``bc`` v1 (scaler + logistic pipeline, @champion) and v2 (bare
    logistic regression), and ``toy`` v1 (a model that fails or stalls on sentinel values)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import mloop
    from mloop.config import Settings
    from mloop.registry import Registry

    sys.path.insert(0, str(MODELS_DIR))
    from toymodels import Sentinel  # type: ignore[import-not-found]

    reg = Registry(settings=Settings.from_env({"MLOOP_HOME": str(home)}))
    X, y = breast_cancer()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bare = LogisticRegression(max_iter=200).fit(X, y)
    import pandas as pd

    v1 = mloop.log_model(pipe, "bc", input_example=X.head(5), registry=reg)
    v2 = mloop.log_model(bare, "bc", input_example=X.head(5), registry=reg)
    reg.set_alias("bc", "champion", 1)
    toy = mloop.log_model(
        Sentinel(),
        "toy",
        input_example=pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]}),
        code_paths=[str(MODELS_DIR / "toymodels.py")],
        registry=reg,
    )
    reg.set_alias("toy", "live", 1)
    return {"pipe": pipe, "bare": bare, "X": X, "y": y, "v1": v1, "v2": v2, "toy": toy, "reg": reg}
