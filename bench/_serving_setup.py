"""Setup for ``bench/serving.py``: the models, the workspace they live in, the servers.

Runs in the project's ``.venv``, except :func:`worker_mlflow_save`, which ``bench/serving.py
--worker mlflow-save`` runs in ``bench/.venv-mlflow``: it imports nothing from mloop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any

import _common as c
import _load

ALIAS = "champion"
ROWS = (1, 100)  # rows per request


def model_name(model: str) -> str:
    return f"bench-{model}"


# ============================================================================================ setup
class Workspace:
    """Models fitted once (project env), registered in a fresh mloop home, pickled for the minimal
    endpoint, saved in MLflow's format by a worker in MLflow's env; request bodies; expected
    predictions."""

    def __init__(self, root: Path, models: list[str], mlflow_python: Path | None) -> None:
        from sklearn.datasets import load_breast_cancer

        self.root = root
        self.home = root / "mloop-home"
        self.models = models
        X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
        self.X = X
        fitted = fit_models()
        self.fitted = fitted
        self.bodies: dict[int, Path] = {}
        self.expected: dict[tuple[str, int], list[Any]] = {}
        for rows in ROWS:
            doc = {
                "dataframe_split": {
                    "columns": list(X.columns),
                    "data": X.iloc[:rows].to_numpy().tolist(),
                }
            }
            self.bodies[rows] = root / f"body-{rows}.json"
            self.bodies[rows].write_text(json.dumps(doc))
            for name in models:
                self.expected[(name, rows)] = fitted[name].predict(X.iloc[:rows]).tolist()
        (root / "pickles").mkdir()
        for name in models:
            with open(root / "pickles" / f"{name}.pkl", "wb") as f:
                pickle.dump(fitted[name], f)
        self._register()
        self.mlflow_dir = root / "mlflow-models"
        if mlflow_python is not None:
            script = str(c.BENCH_DIR / "serving.py")
            c.run_worker(
                mlflow_python,
                [
                    script,
                    "--worker",
                    "mlflow-save",
                    "--workdir",
                    str(root),
                    "--models",
                    ",".join(models),
                ],
                env=c.quiet_env(),
            )

    def settings(self) -> Any:
        from mloop.config import Settings

        return Settings.from_env(env={}, home=str(self.home))

    def registry(self) -> Any:
        import mloop

        return mloop.Registry(settings=self.settings())

    def _register(self) -> None:
        import mloop

        settings = self.settings()
        reg = self.registry()
        x5 = self.X.iloc[:5]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in self.models:
                with mloop.start_run(
                    project="bench-serving", settings=settings, system_metrics=False
                ) as run:
                    mloop.log_model(
                        self.fitted[name], model_name(name), run=run, input_example=x5, registry=reg
                    )
                reg.set_alias(model_name(name), ALIAS, 1)
            if "pipe" in self.models:  # a second version for the hot-swap run
                with mloop.start_run(
                    project="bench-serving", settings=settings, system_metrics=False
                ) as run:
                    mloop.log_model(
                        self.fitted["pipe2"],
                        model_name("pipe"),
                        run=run,
                        input_example=x5,
                        registry=reg,
                    )


def fit_models() -> dict[str, Any]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bare model on unscaled features: ConvergenceWarning
        return {
            "pipe": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y),
            "pipe2": make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=1000)).fit(
                X, y
            ),
            "lr": LogisticRegression(max_iter=5000).fit(X, y),
            "rf": RandomForestClassifier(n_estimators=100, random_state=0).fit(X, y),
        }


# ============================================================================================ servers
def server_cmd(
    ws: Workspace, kind: str, model: str, port: int, *, workers: int, args: argparse.Namespace
) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one server; ``kind`` is mloop, mloop+batch,
    mloop+log, mlflow or minimal."""
    if kind.startswith("mloop"):
        cmd = [
            sys.executable,
            "-m",
            "mloop",
            "serve",
            f"models:/{model_name(model)}@{ALIAS}",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ]
        if kind == "mloop+batch":
            cmd += [
                "--max-batch-size",
                str(args.max_batch_size),
                "--max-wait-ms",
                str(args.max_wait_ms),
            ]
        if kind == "mloop+log":
            cmd += ["--log-sample", "1"]
        return cmd, c.quiet_env(MLOOP_HOME=str(ws.home))
    if kind == "mlflow":
        mlflow_bin = Path(args.mlflow_python).parent / "mlflow"
        cmd = [
            str(mlflow_bin),
            "models",
            "serve",
            "-m",
            str(ws.mlflow_dir / model),
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        # MLflow starts `uvicorn` by name, so its environment's bin comes first on PATH
        path = f"{mlflow_bin.parent}{os.pathsep}{os.environ.get('PATH', '')}"
        return cmd, c.quiet_env(PATH=path)
    if kind == "minimal":
        script = str(c.BENCH_DIR / "minimal_endpoint.py")
        cmd = [
            sys.executable,
            script,
            str(ws.root / "pickles" / f"{model}.pkl"),
            "--port",
            str(port),
            "--workers",
            str(workers),
        ]
        return cmd, c.quiet_env()
    raise ValueError(kind)


@contextlib.contextmanager
def start(ws: Workspace, kind: str, model: str, *, workers: int, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    port = c.free_port()
    cmd, env = server_cmd(ws, kind, model, port, workers=workers, args=args)
    log = ws.root / f"server-{kind}-{model}-{port}.log"
    with _load.running(f"{kind} ({model})", cmd, env, port, log) as server:
        for rows in ROWS:  # the right answers before any load
            status, _, data = _load.post(port, ws.bodies[rows].read_bytes())
            got = json.loads(data).get("predictions") if status == 200 else data[:300]
            if status != 200 or got != ws.expected[(model, rows)]:
                raise RuntimeError(
                    f"{kind} ({model}) answered {status} {got!r} for {rows} rows; "
                    f"expected {ws.expected[(model, rows)]!r}"
                )
        yield server


def worker_mlflow_save(args: argparse.Namespace) -> dict[str, Any]:
    """In bench/.venv-mlflow: the pickled estimators saved as MLflow models."""
    import mlflow
    import mlflow.sklearn
    import sklearn
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    root = Path(args.workdir)
    for name in args.models.split(","):
        with open(root / "pickles" / f"{name}.pkl", "rb") as f:
            model = pickle.load(f)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mlflow.sklearn.save_model(
                model,
                str(root / "mlflow-models" / name),
                input_example=X.iloc[:5],
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
                # MLflow's default format (skops) refuses tree node storage unless it is trusted;
                # the benchmark made these files itself
                skops_trusted_types=["sklearn.tree._tree.Tree"] if name == "rf" else None,
            )
    return {"mlflow": mlflow.__version__, "sklearn": sklearn.__version__}
