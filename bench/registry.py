"""Model registry benchmark: the same work through mloop and through MLflow, in one invocation.

    .venv/bin/python bench/registry.py [--repeat 3] [--versions 100] [--loads 100]

Issue 3, section 9, and issue 17's goals for loading (warm: >= 10x mlflow.pyfunc.load_model and
>= 5x mlflow.sklearn.load_model; alias just moved: >= 5x). Each repetition, on a fresh store (a new temp dir holding the SQLite database,
the local artifact root, mloop's model cache and every temp file either library writes), times:

* registration: 100 versions of a small scikit-learn model (StandardScaler + LogisticRegression on
  ``load_breast_cancer``, a different ``C`` per version), each from its own run (3 params and 3
  metrics logged, untimed). Timed: the one call that packages, stores and registers. mloop:
  ``mloop.log_model(model, name, run=run, input_example=X[:5])``; MLflow:
  ``mlflow.sklearn.log_model(model, name="model", input_example=X[:5], registered_model_name=name,
  pip_requirements=[...])``. Without ``pip_requirements`` MLflow infers them by importing the model
  in a subprocess (seconds per version), so that default is timed on a few extra versions only
  (``--mlflow-default-versions``);
* resolve + load ``models:/name@champion`` 100 times, with one ``predict`` on 5 rows per load
  (checked against the model's own predictions). mloop: ``Registry.load``; MLflow:
  ``mlflow.pyfunc.load_model`` and ``mlflow.sklearn.load_model``. mloop's content-addressed cache
  is warm after the first load, so a second variant moves the alias to a different version before
  every load (untimed): every mloop load then verifies a package it has not seen (from a local
  store it reads the package's blobs in place and hashes them; no file is written);
* resolve only: ``Registry.get_version(name, "@champion")`` vs
  ``MlflowClient().get_model_version_by_alias(name, "champion")``.

Each (engine, repetition) runs in its own worker process, alternating engines: mloop in the
interpreter running this script, MLflow in ``bench/.venv-mlflow`` (the environment
``bench/tracking.py`` creates; same pinned requirements). Imports, and creating the store's schema,
happen in an untimed warm-up. Prints medians over
``--repeat`` of the per-call mean and mloop/MLflow ratios; writes ``bench/results/registry.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
from _workloads import per_call

MODEL = "churn"
ALIAS = "champion"
GOAL_LOAD = 5.0  # issue 3: resolve + load >= 5x faster than MLflow
GOAL_LOAD_PYFUNC = 10.0  # issue 17: warm resolve + load >= 10x faster than mlflow.pyfunc.load_model
MAX_VERSIONS = 10_000
# Logged in every training run (untimed), so mloop's versions carry their metric snapshot.
PARAMS = [{"C": f"{C:.6g}", "penalty": "l2", "scaler": "standard"} for C in np.logspace(-3, 3, MAX_VERSIONS)]  # fmt: skip
METRICS = [{"acc": 0.9 + i * 1e-6, "auc": 0.95, "loss": 0.1} for i in range(MAX_VERSIONS)]


# ============================================================================================ workers
class Ctx:
    def __init__(self, args: argparse.Namespace) -> None:
        self.engine: str = args.worker
        self.repeat: int = args.repeat
        self.versions: int = args.versions
        self.loads: int = args.loads
        self.default_reqs_versions: int = args.mlflow_default_versions
        self.results: dict[str, list[float]] = {}
        self.info: dict[str, Any] = {}

    def add(self, name: str, times: np.ndarray) -> None:
        """Record the mean per-call time of one repetition (and keep its median for the JSON)."""
        self.results.setdefault(name, []).append(float(times.mean()))
        self.results.setdefault(f"{name}_p50", []).append(float(np.median(times)))

    @contextlib.contextmanager
    def fresh(self) -> Iterator[Path]:
        """A fresh temp dir, also used as ``tempfile.tempdir`` so both libraries' scratch files
        (MLflow downloads every load into a new temp dir) land there and are deleted with it."""
        with tempfile.TemporaryDirectory(prefix=f"bench-registry-{self.engine}-") as tmp:
            scratch = Path(tmp) / "tmp"
            scratch.mkdir()
            saved, tempfile.tempdir = tempfile.tempdir, str(scratch)
            try:
                yield Path(tmp)
            finally:
                tempfile.tempdir = saved


def make_models(n: int) -> tuple[Any, list[Any], list[np.ndarray]]:
    """``n`` fitted pipelines (distinct ``C``, so distinct files), the 5-row example, and each
    model's predictions on it. Deterministic, so both engines register the same models."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    models = [
        make_pipeline(StandardScaler(), LogisticRegression(C=float(C), max_iter=1000)).fit(X, y)
        for C in np.logspace(-3, 3, n)
    ]
    x5 = X.iloc[:5]
    return x5, models, [np.asarray(m.predict(x5)) for m in models]


def settle() -> None:
    """A full garbage collection before a timed section, in both engines' workers: registering
    the versions (untimed) leaves a large young heap, and the collection it triggers otherwise
    lands in one timed load (one of 100 loads took ~110 ms, a third of the mean; timeit turns the
    collector off altogether)."""
    import gc

    gc.collect()


def check(pred: Any, expected: np.ndarray) -> None:
    if not np.array_equal(np.asarray(pred).ravel(), expected):
        raise AssertionError(f"wrong predictions after load: {pred!r} != {expected!r}")


# -------------------------------------------------------------------------------------------- mloop
def mloop_worker(ctx: Ctx) -> None:
    import mloop
    from mloop.config import Settings
    from mloop.store import open_store
    from mloop.store._open import clear_store_cache

    ctx.info["version"] = getattr(mloop, "__version__", "editable")
    x5, models, expected = make_models(ctx.versions)
    uri = f"models:/{MODEL}@{ALIAS}"

    def one_pass(tmp: Path, *, measure: bool) -> None:
        settings = Settings.from_env(env={}, home=str(tmp / "mloop"))
        open_store(settings)  # creates the schema (untimed)
        reg = mloop.Registry(settings=settings)
        n_versions = ctx.versions if measure else 2
        n_loads = ctx.loads if measure else 2

        reg_t = np.empty(n_versions)
        for i in range(n_versions):
            with mloop.start_run(
                project="bench", name=f"v{i + 1}", settings=settings, system_metrics=False,
                config=PARAMS[i],
            ) as run:  # fmt: skip
                run.log(METRICS[i])
                t0 = time.perf_counter()
                mv = mloop.log_model(models[i], MODEL, run=run, input_example=x5, registry=reg)
                reg_t[i] = time.perf_counter() - t0
            assert mv.version == i + 1

        # Alias moved: before each load the alias moves (untimed) to a version not loaded before.
        settle()
        cold = np.empty(n_loads)
        for i in range(n_loads):
            v = i % n_versions
            reg.set_alias(MODEL, ALIAS, v + 1)
            t0 = time.perf_counter()
            check(reg.load(uri).predict(x5), expected[v])
            cold[i] = time.perf_counter() - t0

        last = n_versions - 1
        reg.set_alias(MODEL, ALIAS, n_versions)

        def load(_: int) -> None:
            check(reg.load(uri).predict(x5), expected[last])

        load_t = per_call(load, n_loads)

        def resolve(_: int) -> None:
            assert reg.get_version(MODEL, f"@{ALIAS}").version == n_versions

        resolve_t = per_call(resolve, n_loads)
        if measure:
            ctx.add("register", reg_t)
            ctx.add("load", load_t)
            ctx.add("load_cold", cold)
            ctx.add("resolve", resolve_t)
            model = reg.load(uri)
            ctx.add("predict", per_call(lambda _: model.predict(x5), n_loads))
        clear_store_cache()

    with ctx.fresh() as tmp:
        one_pass(tmp, measure=False)  # warm-up: imports, first-use caches
    for _ in range(ctx.repeat):
        with ctx.fresh() as tmp:
            one_pass(tmp, measure=True)


# ------------------------------------------------------------------------------------------- mlflow
def mlflow_worker(ctx: Ctx) -> None:
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    import sklearn
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    ctx.info["version"] = mlflow.__version__
    x5, models, expected = make_models(ctx.versions)
    uri = f"models:/{MODEL}@{ALIAS}"

    def one_pass(tmp: Path, *, measure: bool) -> None:
        db = f"sqlite:///{tmp / 'mlflow.db'}"
        mlflow.set_tracking_uri(db)
        mlflow.set_registry_uri(db)
        exp = mlflow.create_experiment(  # creates the schema (untimed)
            "bench", artifact_location=(tmp / "mlartifacts").as_uri()
        )
        client = MlflowClient()
        n_versions = ctx.versions if measure else 2
        n_loads = ctx.loads if measure else 2

        def register(i: int, name: str, **kw: Any) -> float:
            with (
                mlflow.start_run(experiment_id=exp, run_name=f"v{i + 1}"),
                contextlib.redirect_stderr(io.StringIO()),  # "Created version '3' of model ..."
            ):
                mlflow.log_params(PARAMS[i])
                mlflow.log_metrics(METRICS[i])
                t0 = time.perf_counter()
                info = mlflow.sklearn.log_model(
                    models[i], name="model", input_example=x5, registered_model_name=name, **kw
                )
                took = time.perf_counter() - t0
            assert int(info.registered_model_version) == i + 1
            return took

        # pip_requirements given, as mloop pins from installed versions: no inference subprocess.
        pins = [f"scikit-learn=={sklearn.__version__}"]
        reg_t = np.array([register(i, MODEL, pip_requirements=pins) for i in range(n_versions)])
        settle()
        cold = np.empty(n_loads)  # same protocol as mloop's alias-moved case
        for i in range(n_loads):
            v = i % n_versions
            client.set_registered_model_alias(MODEL, ALIAS, str(v + 1))
            t0 = time.perf_counter()
            check(mlflow.pyfunc.load_model(uri).predict(x5), expected[v])
            cold[i] = time.perf_counter() - t0

        last = n_versions - 1
        client.set_registered_model_alias(MODEL, ALIAS, str(n_versions))

        def load_pyfunc(_: int) -> None:
            check(mlflow.pyfunc.load_model(uri).predict(x5), expected[last])

        def load_sklearn(_: int) -> None:
            check(mlflow.sklearn.load_model(uri).predict(x5), expected[last])

        pyfunc_t = per_call(load_pyfunc, n_loads)
        sklearn_t = per_call(load_sklearn, n_loads)

        def resolve(_: int) -> None:
            assert int(client.get_model_version_by_alias(MODEL, ALIAS).version) == n_versions

        resolve_t = per_call(resolve, n_loads)
        if measure:
            ctx.add("register", reg_t)
            ctx.add("load", pyfunc_t)
            ctx.add("load_sklearn", sklearn_t)
            ctx.add("load_cold", cold)
            ctx.add("resolve", resolve_t)
            model = mlflow.pyfunc.load_model(uri)
            ctx.add("predict", per_call(lambda _: model.predict(x5), n_loads))
            # MLflow's defaults infer requirements in a subprocess (~seconds): a few versions only.
            n_default = min(ctx.default_reqs_versions, n_versions)
            if n_default:
                ctx.add(
                    "register_default",
                    np.array([register(i, f"{MODEL}-defaults") for i in range(n_default)]),
                )

    with ctx.fresh() as tmp:
        one_pass(tmp, measure=False)
    for _ in range(ctx.repeat):
        with ctx.fresh() as tmp:
            one_pass(tmp, measure=True)


# ====================================================================================== orchestration
# (label, mloop key, MLflow key, goal ratio)
ROWS = [
    ("log_model + register, 1 version", "register", "register", None),
    ("  same, vs MLflow defaults (requirements inferred)", "register", "register_default", None),
    ("resolve + load @alias  vs mlflow.pyfunc.load_model", "load", "load", GOAL_LOAD_PYFUNC),
    ("resolve + load @alias  vs mlflow.sklearn.load_model", "load", "load_sklearn", GOAL_LOAD),
    ("resolve + load @alias, alias moved (mloop cache cold)", "load_cold", "load_cold", GOAL_LOAD),
    ("resolve only (get_version / get_model_version_by_alias)", "resolve", "resolve", None),
    ("predict 5 rows on a loaded model (pyfunc)", "predict", "predict", None),
]  # fmt: skip


def orchestrate(args: argparse.Namespace) -> int:
    if not c.mloop_importable():
        return 2
    from tracking import MLFLOW_REQUIREMENTS  # one pinned MLflow env for every benchmark

    mlflow_python = c.ensure_venv("mlflow", MLFLOW_REQUIREMENTS)
    versions = {
        **c.peer_versions(mlflow_python),
        "scikit-learn": c.package_version(sys.executable, "scikit-learn"),
        "scikit-learn (MLflow env)": c.package_version(mlflow_python, "scikit-learn"),
    }
    script = str(Path(__file__).resolve())
    # Repetitions alternate engines (one worker process per engine and repetition), so a change in
    # the machine's background load hits both sides rather than one.
    raw: dict[str, dict[str, Any]] = {
        e: {"results": {}, "info": {}, "wall_s": 0.0} for e in ("mloop", "mlflow")
    }
    for rep in range(args.repeat):
        for engine, python in (("mloop", sys.executable), ("mlflow", mlflow_python)):
            print(f"[bench] {engine} {rep + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            worker_args = [script, "--worker", engine, "--repeat", "1",
                           "--versions", str(args.versions), "--loads", str(args.loads),
                           "--mlflow-default-versions", str(args.mlflow_default_versions)]  # fmt: skip
            t0 = time.perf_counter()
            res = c.run_worker(python, worker_args, env=c.quiet_env())
            raw[engine]["wall_s"] += time.perf_counter() - t0
            raw[engine]["info"].update(res["info"])
            for key, values in res["results"].items():
                raw[engine]["results"].setdefault(key, []).extend(values)

    table, records = [], []
    for label, mk, fk, goal in ROWS:
        ours_all = raw["mloop"]["results"].get(mk)
        theirs_all = raw["mlflow"]["results"].get(fk)
        ours = c.median(ours_all) if ours_all else None
        theirs = c.median(theirs_all) if theirs_all else None
        ratio = theirs / ours if ours and theirs else None
        met = None if goal is None or ratio is None else ratio >= goal
        goal_text = "" if goal is None else f">= {goal:g}x" + (" (met)" if met else " (MISSED)")
        table.append([label, c.fmt_value(ours, "s"), c.fmt_value(theirs, "s"),
                      c.fmt_ratio(ratio), goal_text])  # fmt: skip
        records.append({"case": label, "unit": "s", "mloop": ours, "mlflow": theirs,
                        "ratio": ratio, "mloop_runs": ours_all, "mlflow_runs": theirs_all,
                        "goal": None if goal is None else f">= {goal:g}x", "goal_met": met})  # fmt: skip

    print()
    print(f"mloop {versions['mloop']} vs MLflow {versions['mlflow']}; scikit-learn "
          f"{versions['scikit-learn']}; Python {versions['python']}, SQLite {versions['sqlite']}, "
          f"local artifacts; {args.versions} versions, {args.loads} loads; median over "
          f"{args.repeat} repetitions of the mean per call; ratio = mloop speed / MLflow speed")  # fmt: skip
    c.print_table(["case (per call)", "mloop", "MLflow", "mloop vs MLflow", "goal"], table)
    notes = [
        "mloop packages scikit-learn models with skops (secure format, types allow-listed at save) "
        "and checks every file's digest (BLAKE3) before loading (a warm load: that the stat of every file "
        "and folder it hashed before is unchanged, then a copy of the model built from those "
        "bytes); MLflow cloudpickles and checks nothing.",
        "register: the log_model call in a run that logged 3 params and 3 metrics (untimed): "
        "mloop.log_model(input_example=) vs mlflow.sklearn.log_model(input_example=, "
        "registered_model_name=, pip_requirements=[scikit-learn==...]); MLflow's default (no "
        "pip_requirements) infers them in a subprocess, measured on "
        f"{args.mlflow_default_versions} extra versions per repetition (another model name).",
        "resolve + load includes one predict on 5 rows (checked). mloop reads a local store's "
        "skops package where its blobs are; MLflow downloads to a new temp dir per load.",
        "alias moved: measured first; before each load the alias moves (untimed) to the next "
        "version (1, 2, ...), so every mloop load meets a package it has not verified (while "
        "loads <= versions) and hashes every file of it.",
    ]
    print()
    for note in notes:
        print("  " + note)

    c.write_results(
        "registry.json",
        "registry",
        {
            "versions": versions,
            "repeat": args.repeat,
            "n_versions": args.versions,
            "n_loads": args.loads,
            "rows": records,
            "notes": notes,
            "raw": raw,
        },
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="repetitions (median reported)")
    p.add_argument("--versions", type=int, default=100, help="versions registered per repetition")
    p.add_argument("--loads", type=int, default=100, help="loads (and resolves) per repetition")
    p.add_argument(
        "--mlflow-default-versions",
        type=int,
        default=3,
        help="versions MLflow also registers with its defaults (requirements inferred in a "
        "subprocess, seconds each) per repetition",
    )
    p.add_argument("--worker", choices=["mloop", "mlflow"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat < 1 or not 1 <= args.versions <= MAX_VERSIONS or args.loads < 1:
        p.error(
            f"--repeat must be >= 1, --versions in [1, {MAX_VERSIONS}] and --loads >= 1; "
            f"got {args.repeat}, {args.versions}, {args.loads}."
        )
    if args.worker is None:
        return orchestrate(args)
    ctx = Ctx(args)
    (mloop_worker if args.worker == "mloop" else mlflow_worker)(ctx)
    Path(args.out).write_text(json.dumps({"results": ctx.results, "info": ctx.info}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
