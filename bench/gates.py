"""CI gate benchmark: ``mloop check`` vs MLflow's model validation, on the same data and models.

    .venv/bin/python bench/gates.py [--rows 100000] [--repeat 5] [--resamples 1000] [--threads 1]
                                    [--no-mlflow] [--workdir DIR]

Issue 12's speed goal: ``mloop check`` on a 100k-row holdout with 1,000 bootstrap resamples and all
default checks in <= 5 s on this machine.

Data (seeded, ``make_classification``): 24 numeric features (12 informative, 4 redundant, 5% of
labels flipped) plus two string categoricals derived from the informative features (``region``,
8 values, and ``plan``, 4 values), so both carry signal; ``--rows`` training rows and ``--rows``
holdout rows (Parquet). Two real models fitted once, in this interpreter:

* champion: OneHotEncoder + StandardScaler + LogisticRegression (a ColumnTransformer pipeline);
* candidate: OrdinalEncoder + HistGradientBoostingClassifier (categoricals native, 200 iterations).

mloop: both are logged with ``mloop.log_model`` in a temp ``MLOOP_HOME``, each run logging the
training set (``run.log_dataset(train, name="train")``, the data checks' reference); the first is
``champion``. The policy (``mloop.yaml``) is the default one (signature compatibility, data schema,
missing values and drift against the training data) plus three thresholds (``roc_auc >= 0.8``,
``accuracy >= 0.7``, ``log_loss <= 0.6``) and paired non-regression on three metrics with
``resamples: 1000``: ``roc_auc`` (DeLong), ``accuracy`` (McNemar) and ``log_loss`` (the paired
bootstrap: 1,000 resamples of 100k rows). Timed:

* ``mloop check --candidate models:/gates-bench/2 --data holdout.parquet --policy mloop.yaml
  --format json --output report.json`` as a fresh subprocess: what a CI job pays (interpreter
  start-up and imports, loading both models, reading the Parquet holdout, every check, storing the
  report, writing the JSON, interpreter exit); wall and CPU time of the process;
* the same command through ``mloop.cli.main`` in a launcher that marks when the imports are done,
  when ``check_model`` starts and ends and when the interpreter starts exiting (the phase table),
  once as is and once with PyTorch made unimportable (a CI image without mloop's torch extra:
  skops imports it through scikit-learn when it is installed, see the notes);
* ``check_model(...)`` in a warm process (imports done, one untimed call first), which still loads
  both models, reads the holdout and stores a report on every call; the first load, read and call
  in that process are reported too, and the report's own per-check ``duration_ms``.

MLflow (``bench/.venv-mlflow``, the env ``bench/tracking.py`` pins): the same fitted estimators
(pickled here, logged there with ``mlflow.sklearn.log_model`` and registered; the champion alias on
the first) and the same holdout, validated as MLflow's docs recommend for champion/challenger:
``mlflow.models.evaluate(model_uri, data, targets="label", model_type="classifier")`` on the
candidate and on the baseline, then ``mlflow.validate_evaluation_results(thresholds,
candidate_result, baseline_result)`` with ``MetricThreshold``s for the same thresholds and, on the
same three metrics, "beat the baseline by 0.005" (``min_absolute_change``, the fixed margin teams
use instead of a test). Timed the same two ways (a fresh ``python`` process doing the whole job;
the same calls in a warm process).

Every timed process gets ``OMP_NUM_THREADS=1`` (``--threads``; 0 leaves the libraries' default):
on a shared 2-CPU machine, OpenMP threads spinning beside another job make HistGradientBoosting's
predict several times slower and the wall time a measure of the neighbours. Each timed variant
runs ``--repeat`` times (default 5), alternating engines; medians are printed with the ratio
MLflow / mloop (> 1: mloop faster) and the phase tables. Writes ``bench/results/gates.json``.
The data, models and registries are set up by ``bench/_gates_setup.py``; ``--workdir DIR`` keeps
them (for profiling: ``cd DIR && MLOOP_HOME=DIR/mloop-home mloop check ...``).

What the two do differs, and the notes say so: MLflow's validation has no significance test (it
compares point values: a lucky 0.006 gain on a noisy holdout passes), so it does less statistical
work, and no data or signature checks; ``evaluate`` computes more metrics and logs plots (ROC, precision-recall, lift, calibration,
confusion matrix) and a per-class table as artifacts. SHAP explainability is turned off
(``evaluator_config={"log_model_explainability": False}``); the plots cannot be turned off.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
from _gates_setup import (
    ALIAS,
    MIN_GAIN,
    MLFLOW_THRESHOLDS,
    MODEL,
    TARGET,
    mlflow_env,
    setup_mloop,
    worker_mlflow_setup,
    write_workspace,
)

GOAL_S = 5.0  # issue 12: mloop check on 100k rows with 1,000 resamples in <= 5 s


def check_args(candidate: int) -> list[str]:
    return ["check", "--candidate", f"models:/{MODEL}/{candidate}", "--data", "holdout.parquet",
            "--policy", "mloop.yaml", "--format", "json", "--output", "report.json"]  # fmt: skip


# ``mloop check`` through ``mloop.cli.main`` (what the console script runs), marking when the CLI
# is imported, when check_model starts and ends, and when the last atexit handler runs; with
# ``hide_torch`` PyTorch cannot be imported (as on a CI image without mloop's torch extra).
_LAUNCHER = """
import atexit, importlib.abc, json, sys, time
T0, OUT, MARKS = time.perf_counter(), sys.argv.pop(1), {}
def mark(what):
    MARKS[what] = time.perf_counter() - T0
atexit.register(lambda: (mark("atexit"), open(OUT, "w").write(json.dumps(MARKS))))
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError(name + " hidden by bench/gates.py")
if sys.argv.pop(1) == "hide":
    sys.meta_path.insert(0, NoTorch())
from mloop.cli import main
import mloop.gates
mark("imports")
check_model = mloop.gates.check_model
def timed_check(*args, **kwargs):
    mark("check_model start")
    try:
        return check_model(*args, **kwargs)
    finally:
        mark("check_model end")
mloop.gates.check_model = timed_check
sys.argv[0] = "mloop"
sys.exit(main())
"""


def mloop_cli(candidate: int, *, marks: Path | None = None, hide_torch: bool = False) -> list[str]:
    """The ``mloop check`` command line: the console script, or the marking launcher."""
    if marks is None:
        return [str(Path(sys.executable).with_name("mloop")), *check_args(candidate)]
    how = "hide" if hide_torch else "keep"
    return [sys.executable, "-c", _LAUNCHER, str(marks), how, *check_args(candidate)]


def worker_mloop(args: argparse.Namespace) -> dict[str, Any]:
    """Warm process: phases of a first call, then ``--repeat`` timed ``check_model`` calls."""
    t0 = time.perf_counter()
    from mloop.artifacts import dataset_digest
    from mloop.config import Settings
    from mloop.gates import check_model
    from mloop.registry import Registry
    from mloop.tables import read_table

    imported = time.perf_counter() - t0
    root = Path(args.workdir)
    registry = Registry(settings=Settings.from_env({"MLOOP_HOME": str(root / "mloop-home")}))
    cand_uri, base_uri = f"models:/{MODEL}/{args.candidate}", f"models:/{MODEL}@{ALIAS}"
    holdout, policy = str(root / "holdout.parquet"), str(root / "mloop.yaml")

    def timed(fn: Any) -> tuple[float, Any]:
        t = time.perf_counter()
        out = fn()
        return time.perf_counter() - t, out

    # the first of each in this process: what a fresh `mloop check` pays for them
    first = {"import mloop.gates": imported}
    first["read holdout"], table = timed(lambda: read_table(holdout))
    first["load candidate (first: imports skops)"], _ = timed(lambda: registry.load(cand_uri))
    first["load baseline"], _ = timed(lambda: registry.load(base_uri))
    first["check_model (models cached)"], report = timed(
        lambda: check_model(cand_uri, data=holdout, policy=policy, registry=registry)
    )
    times, reports = [], []
    for _ in range(args.repeat):
        t, report = timed(
            lambda: check_model(cand_uri, data=holdout, policy=policy, registry=registry)
        )
        times.append(t)
        reports.append(report)
    warm: dict[str, list[float]] = {}
    for _ in range(args.repeat):
        for name, fn in (
            ("read holdout", lambda: read_table(holdout)),
            ("load candidate (first: imports skops)", lambda: registry.load(cand_uri)),
            ("load baseline", lambda: registry.load(base_uri)),
            ("dataset digest", lambda: dataset_digest(table)),
        ):
            warm.setdefault(name, []).append(timed(fn)[0])
    phases: dict[str, list[float]] = {}
    for r in reports:
        for key, ms in r.extra["timings"].items():
            phases.setdefault(key.replace("_ms", "").replace("_", " "), []).append(ms / 1e3)
        for check in r.checks:
            phases.setdefault(f"check {check.name}", []).append((check.duration_ms or 0) / 1e3)
        phases.setdefault("check_model (report's duration_ms)", []).append(r.duration_ms / 1e3)
    last = reports[-1]
    return {
        "times": times,
        "first": first,
        "warm": warm,
        "phases": phases,
        "status": last.status,
        "checks": [{"name": c.name, "status": c.status, "summary": c.summary} for c in last.checks],
    }


# ============================================================================================ MLflow
def _mlflow_validate(root: Path, candidate: int, data: Any) -> dict[str, float]:
    """MLflow's champion/challenger validation, as its docs show it; returns phase times."""
    import mlflow
    from mlflow.models import MetricThreshold

    thresholds = {
        name: MetricThreshold(min_absolute_change=MIN_GAIN, **rule)
        for name, rule in MLFLOW_THRESHOLDS.items()
    }
    config = {"log_model_explainability": False}  # SHAP off; the plots cannot be turned off
    t0 = time.perf_counter()
    cand = mlflow.models.evaluate(f"models:/{MODEL}/{candidate}", data, targets=TARGET,
                                  model_type="classifier", evaluator_config=config)  # fmt: skip
    t1 = time.perf_counter()
    base = mlflow.models.evaluate(f"models:/{MODEL}@{ALIAS}", data, targets=TARGET,
                                  model_type="classifier", evaluator_config=config)  # fmt: skip
    t2 = time.perf_counter()
    mlflow.validate_evaluation_results(thresholds, cand, base)  # raises when a rule fails
    t3 = time.perf_counter()
    return {
        "evaluate candidate": t1 - t0,
        "evaluate baseline": t2 - t1,
        "validate_evaluation_results": t3 - t2,
        "candidate roc_auc": cand.metrics["roc_auc"],
        "baseline roc_auc": base.metrics["roc_auc"],
        "metrics computed": len(cand.metrics),
        "artifacts logged": len(cand.artifacts),
    }


def _quiet_mlflow() -> None:
    import logging

    import mlflow  # noqa: F401  (it sets its loggers' levels when imported)

    warnings.simplefilter("ignore")
    for name in ("mlflow", "matplotlib", "PIL"):
        logging.getLogger(name).setLevel(logging.ERROR)


def worker_mlflow_cli(args: argparse.Namespace) -> dict[str, Any]:
    """A fresh process doing a CI job's whole validation (the caller times the process)."""
    t0 = time.perf_counter()
    import mlflow
    import pandas as pd

    _quiet_mlflow()
    root = Path(args.workdir)
    mlflow_env(root)
    t1 = time.perf_counter()
    data = pd.read_parquet(root / "holdout.parquet")
    t2 = time.perf_counter()
    phases = _mlflow_validate(root, args.candidate, data)
    return {"import mlflow": t1 - t0, "read holdout": t2 - t1, **phases,
            "mlflow": mlflow.__version__}  # fmt: skip


def worker_mlflow(args: argparse.Namespace) -> dict[str, Any]:
    """Warm process: one untimed validation, then ``--repeat`` timed ones."""
    import pandas as pd

    _quiet_mlflow()
    root = Path(args.workdir)
    mlflow_env(root)
    data = pd.read_parquet(root / "holdout.parquet")
    first = _mlflow_validate(root, args.candidate, data)
    times, phases = [], {}
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        one = _mlflow_validate(root, args.candidate, pd.read_parquet(root / "holdout.parquet"))
        times.append(time.perf_counter() - t0)
        for k, v in one.items():
            phases.setdefault(k, []).append(v)
    return {"times": times, "first": first, "phases": phases}


WORKERS = {
    "mloop": worker_mloop,
    "mlflow": worker_mlflow,
    "mlflow-cli": worker_mlflow_cli,
    "mlflow-setup": worker_mlflow_setup,
}


# ====================================================================================== orchestration
def run_timed(cmd: list[str], *, env: dict[str, str], cwd: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds (user + system, all threads) of a fresh process, and its exit code."""
    with open(cwd / "stderr.txt", "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        sys.stderr.write((cwd / "stderr.txt").read_text(errors="replace")[-3000:])
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


@contextlib.contextmanager
def workspace(keep: str | None) -> Iterator[Path]:
    if keep:
        root = Path(keep).resolve()
        root.mkdir(parents=True, exist_ok=True)
        yield root
        return
    root = Path(tempfile.mkdtemp(prefix="bench-gates-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _s(v: float | None) -> str:
    return c.fmt_value(v, "s")


def orchestrate(args: argparse.Namespace) -> int:
    if not c.mloop_importable():
        return 2
    mlflow_python = None
    if not args.no_mlflow:
        from tracking import MLFLOW_REQUIREMENTS  # one pinned MLflow env for every benchmark

        mlflow_python = c.ensure_venv("mlflow", MLFLOW_REQUIREMENTS)
    script = str(Path(__file__).resolve())
    # OpenMP's spinning threads (HistGradientBoosting's predict) make wall time depend on what
    # else runs on a shared machine; one thread per process by default, the same for both engines
    threads = {} if args.threads == 0 else {"OMP_NUM_THREADS": str(args.threads)}
    env = c.quiet_env(**threads)
    results: dict[str, Any] = {
        "versions": {
            "mloop": c.package_version(sys.executable, "mloop"),
            "scikit-learn": c.package_version(sys.executable, "scikit-learn"),
            "python": platform.python_version(),
        },
        "repeat": args.repeat,
        "resamples": args.resamples,
        "omp_num_threads": args.threads or "library default",
    }
    with workspace(args.workdir) as root:
        print(f"[bench] data and models ({args.rows:,} + {args.rows:,} rows) in {root}",
              file=sys.stderr, flush=True)  # fmt: skip
        results["data"] = write_workspace(root, args.rows, args.seed, args.resamples)
        results["mloop_versions"] = setup_mloop(root)
        candidate = results["mloop_versions"]["candidate"]
        common = [
            "--workdir",
            str(root),
            "--candidate",
            str(candidate),
            "--repeat",
            str(args.repeat),
        ]
        if mlflow_python is not None:
            setup = c.run_worker(
                mlflow_python, [script, "--worker", "mlflow-setup", *common], env=env
            )
            results["versions"]["mlflow"] = setup["mlflow"]
            results["versions"]["scikit-learn (MLflow env)"] = setup["sklearn"]
            if setup["versions"]["candidate"] != candidate:
                raise RuntimeError(f"MLflow registered the candidate as {setup['versions']}")

        # fresh processes, alternating engines
        cold: dict[str, dict[str, list[Any]]] = {"mloop": {}, "mloop_marked": {},
                                                 "mloop_no_torch": {}, "mlflow": {}}  # fmt: skip
        mloop_env = {**env, "MLOOP_HOME": str(root / "mloop-home")}
        marks = root / "marks.json"
        for rep in range(args.repeat):
            print(f"[bench] fresh processes {rep + 1}/{args.repeat}", file=sys.stderr, flush=True)
            for variant, cmd in (
                ("mloop", mloop_cli(candidate)),
                ("mloop_marked", mloop_cli(candidate, marks=marks)),
                ("mloop_no_torch", mloop_cli(candidate, marks=marks, hide_torch=True)),
            ):
                wall, cpu, rc = run_timed(cmd, env=mloop_env, cwd=root)
                if rc not in (0, 1):
                    raise RuntimeError(f"mloop check ({variant}) exited {rc}")
                report = json.loads((root / "report.json").read_text())
                row = {"wall": wall, "cpu": cpu, "exit": rc,
                       "check_model": report["duration_ms"] / 1e3}  # fmt: skip
                if variant != "mloop":
                    row.update(json.loads(marks.read_text()))
                for key, value in row.items():
                    cold[variant].setdefault(key, []).append(value)
            if mlflow_python is not None:
                out = root / "mlflow-cli.json"
                cmd = [str(mlflow_python), script, "--worker", "mlflow-cli", *common, "--out", str(out)]  # fmt: skip
                wall, cpu, rc = run_timed(cmd, env=env, cwd=root)
                if rc != 0:
                    raise RuntimeError(f"the MLflow validation process exited {rc}")
                phases = json.loads(out.read_text())
                for key, value in (("wall", wall), ("cpu", cpu), *phases.items()):
                    cold["mlflow"].setdefault(key, []).append(value)
        results["fresh"] = cold
        results["report"] = {k: report[k] for k in ("status", "duration_ms", "data")}
        results["report"]["checks"] = [
            {k: ch.get(k) for k in ("name", "status", "summary", "duration_ms")}
            for ch in report["checks"]
        ]

        print("[bench] warm: mloop", file=sys.stderr, flush=True)
        results["warm"] = {"mloop": c.run_worker(sys.executable, [script, "--worker", "mloop", *common], env=env)}  # fmt: skip
        if mlflow_python is not None:
            print("[bench] warm: MLflow", file=sys.stderr, flush=True)
            results["warm"]["mlflow"] = c.run_worker(mlflow_python, [script, "--worker", "mlflow", *common], env=env)  # fmt: skip

    report_tables(results, args)
    c.write_results("gates.json", "gates", results)
    return 0


def _phases(run: dict[str, list[float]]) -> dict[str, float]:
    """A marked fresh process, phase by phase (medians)."""
    m = {k: c.median(v) for k, v in run.items()}
    return {
        "import mloop.cli, mloop.gates": m["imports"],
        "CLI up to check_model (typer, registry, store)": m["check_model start"] - m["imports"],
        "check_model": m["check_model end"] - m["check_model start"],
        "after check_model (render + write the JSON)": m["atexit"] - m["check_model end"],
        "interpreter start (~20 ms) + exit (modules torn down)": m["wall"] - m["atexit"],
        "total (wall)": m["wall"],
    }


def report_tables(results: dict[str, Any], args: argparse.Namespace) -> None:
    med = c.median
    fresh, warm = results["fresh"], results["warm"]
    has_mlflow = "wall" in fresh["mlflow"]
    rows = []
    for label, ours, theirs, goal in (
        ("mloop check, fresh process (wall)", med(fresh["mloop"]["wall"]),
         med(fresh["mlflow"]["wall"]) if has_mlflow else None, GOAL_S),
        ("  same, CPU time (all threads)", med(fresh["mloop"]["cpu"]),
         med(fresh["mlflow"]["cpu"]) if has_mlflow else None, None),
        ("  same, PyTorch not importable (wall)", med(fresh["mloop_no_torch"]["wall"]),
         med(fresh["mlflow"]["wall"]) if has_mlflow else None, GOAL_S),
        ("check_model, warm process (wall)", med(warm["mloop"]["times"]),
         med(warm["mlflow"]["times"]) if "mlflow" in warm else None, None),
    ):  # fmt: skip
        ratio = theirs / ours if theirs else None
        goal_text = (
            "" if goal is None else f"<= {goal:g} s " + ("(met)" if ours <= goal else "(MISSED)")
        )
        rows.append([label, _s(ours), _s(theirs), c.fmt_ratio(ratio), goal_text])
    v = results["versions"]
    d = results["data"]
    print()
    print(f"mloop {v['mloop']} vs MLflow {v.get('mlflow', '-')}; scikit-learn {v['scikit-learn']}; "
          f"Python {v['python']}; holdout {d['rows']['holdout']:,} rows x "
          f"{d['columns']['numeric'] + d['columns']['categorical']} features, "
          f"{args.resamples:,} bootstrap resamples; OMP_NUM_THREADS="
          f"{args.threads or 'default'}; medians of {args.repeat}; "
          "ratio = MLflow time / mloop time")  # fmt: skip
    c.print_table(["case", "mloop", "MLflow", "mloop vs MLflow", "goal (issue 12)"], rows)

    print("\nmloop check in a fresh process, phase by phase (medians of the marked runs)")
    marked, hidden = _phases(fresh["mloop_marked"]), _phases(fresh["mloop_no_torch"])
    c.print_table(
        ["phase", "fresh", "fresh, PyTorch not importable"],
        [[k, _s(t), _s(hidden[k])] for k, t in marked.items()],
    )

    wm = warm["mloop"]
    print("\ncheck_model, phase by phase (first: the first call of each in a new process)")
    prow = []
    for name, t in wm["first"].items():
        prow.append([name, _s(t), _s(med(wm["warm"][name])) if name in wm["warm"] else ""])
    prow.append(
        ["dataset digest (sha256 of the holdout)", "", _s(med(wm["warm"]["dataset digest"]))]
    )
    for name, ts in wm["phases"].items():
        prow.append([f"  {name}", "", _s(med(ts))])
    c.print_table(["phase", "first", "warm (median)"], prow)
    print("  (data:schema and data:missing come from one quality report; each shows its time)")
    if "mlflow" in warm:
        wf = warm["mlflow"]
        print("\nMLflow, phase by phase")
        frow = []
        for name in ("import mlflow", "read holdout"):
            frow.append([name, _s(med(fresh["mlflow"][name])), ""])
        for name in ("evaluate candidate", "evaluate baseline", "validate_evaluation_results"):
            frow.append([name, _s(med(fresh["mlflow"][name])), _s(med(wf["phases"][name]))])
        c.print_table(["phase", "fresh", "warm (median)"], frow)
    print("\nmloop's verdicts (last fresh run):")
    for ch in results["report"]["checks"]:
        print(f"  {ch['status']:5} {ch['name']}: {ch['summary'][:150]}")
    results["notes"] = notes(results)
    for note in results["notes"]:
        print("note: " + note)


def notes(results: dict[str, Any]) -> list[str]:
    fresh = results["fresh"]["mlflow"]
    computed = (
        f"{int(c.median(fresh['metrics computed']))} metrics and "
        f"{int(c.median(fresh['artifacts logged']))} artifacts per model"
        if "metrics computed" in fresh
        else "more metrics and artifacts"
    )
    out = [
        "mloop's policy: the default checks (signature compatibility; data schema, missing "
        "values and drift of the holdout against the candidate's logged training set) plus "
        "thresholds on roc_auc, accuracy and log_loss and paired non-regression on the same three "
        "(DeLong, McNemar, and a bootstrap of 1,000 resamples of the holdout for log_loss), each a "
        "one-sided test at level 0.05; the report is stored and written as JSON.",
        "MLflow has no significance test: its MetricThreshold compares point values, so the same "
        f"policy is written as the thresholds plus 'beat the baseline by {MIN_GAIN}' "
        "(min_absolute_change); no resampling, less statistical work than mloop does. It has no "
        "data or signature checks either.",
        f"mlflow.models.evaluate computes more ({computed}: the model's own score(), which "
        "predicts once more, and ROC, precision-recall, lift and calibration plots and a "
        "confusion matrix logged to a run per model); those cannot be turned off. SHAP "
        "explainability is turned off (evaluator_config={'log_model_explainability': False}).",
        "Both sides load the models from their registry (mloop: skops, content-verified; MLflow "
        "3's sklearn flavor) and predict with the same fitted estimators on the same rows; "
        "HistGradientBoosting predicts with OpenMP threads; on this shared 2-CPU machine two "
        "spinning threads beside someone else's job take several times longer than one, so every "
        "timed process gets OMP_NUM_THREADS=1 unless --threads says otherwise (0: the "
        "libraries' default), both engines alike.",
        "PyTorch not importable: the same command with `import torch` refused, as on a CI image "
        "without mloop's torch extra. skops imports scikit-learn's all_estimators, whose package "
        "walk imports sklearn.externals.array_api_compat.torch and so PyTorch when it is "
        "installed: its import and teardown are part of the first model load and of the exit "
        "(issue 17, start-up time).",
    ]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="holdout rows (and training rows)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per variant (median)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS for every timed process, both engines (0: the libraries' default)",
    )
    p.add_argument("--no-mlflow", action="store_true", help="measure mloop only")
    p.add_argument("--workdir", help="keep the data, stores and models here (default: a temp dir)")
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--candidate", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat < 1 or args.rows < 1000 or not 100 <= args.resamples <= 100_000:
        p.error("--repeat must be >= 1, --rows >= 1000 and --resamples in [100, 100000].")
    if args.worker is None:
        return orchestrate(args)
    result = WORKERS[args.worker](args)
    Path(args.out).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
