"""Drift benchmark: ``mloop.monitoring.drift_report`` vs Evidently's ``DataDriftPreset`` (and NannyML).

    .venv/bin/python bench/drift.py [--rows 100000,1000000] [--repeat 3] [--peer-repeat 1]
                                    [--no-evidently] [--no-nannyml]

Data (seeded, written once to ``bench/results/drift-data/``): 27 columns per row: 20 numeric of
varied shapes (normal, lognormal, Student t, Pareto, exponential, integer-valued Poisson / uniform /
binomial / geometric, rounded, bimodal, three with 5% missing values), 5 categoricals of cardinality
3, 10, 50, 200 and 1000 (Zipf-like), a binary target and a probability column. The current window
drifts some columns by known amounts (a 0.5 sd mean shift, a 0.17 sd shift, a 10% scale change, a
reweighted categorical, a new category, a shifted target rate) and leaves the rest alone; a second
window with the same drift checks a stored profile.

Wall time and CPU time (all threads; robust when the machine is shared) are both reported.
Every engine runs in its own process (clean peak RSS): mloop in this interpreter; Evidently 0.7.23
in ``bench/.venv-evidently`` (with ``pandas<3``) and NannyML in ``bench/.venv-nannyml``, each created
on first use so neither enters the project's ``.venv``. Each loads the same Parquet files into pandas,
then the timed call runs; memory is the peak RSS during the call minus the RSS after loading (peak
reset through ``/proc/self/clear_refs``). Evidently and mloop get the same column kinds. Prints a
table of medians and writes ``bench/results/drift.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _common import (  # noqa: E402
    RESULTS_DIR,
    ensure_venv,
    median,
    package_version,
    print_table,
    quiet_env,
    run_worker,
)

EVIDENTLY_REQUIREMENTS = ["evidently==0.7.23", "pandas<3", "pyarrow", "psutil"]
# nannyml 0.13 imports statsmodels without declaring it, and predates pandas 3
NANNYML_REQUIREMENTS = ["nannyml", "statsmodels", "pandas<3", "pyarrow", "psutil"]
DATA_VERSION = 1
NUMERIC = [f"n{i:02d}" for i in range(20)] + ["target", "proba"]
CATEGORICAL = ["c3", "c10", "c50", "c200", "c1000"]


# ============================================================================================ data
def generate(n: int, seed: int, drift: bool) -> dict[str, Any]:
    """One window; ``drift=True`` applies the known shifts described in the module docstring."""
    import numpy as np

    rng = np.random.default_rng(seed)
    d = 1.0 if drift else 0.0
    cols: dict[str, Any] = {
        "n00": rng.normal(0, 1, n),
        "n01": rng.normal(10 + 1.5 * d, 3, n),  # drift: +0.5 sd
        "n02": rng.lognormal(0, 1, n),
        "n03": rng.standard_t(2, n),  # heavy tails
        "n04": rng.pareto(1.5, n),  # heavier tails
        "n05": rng.exponential(2, n),
        "n06": rng.uniform(0, 100, n) + 5 * d,  # drift: +0.17 sd
        "n07": rng.poisson(3, n),  # integer-valued
        "n08": rng.integers(0, 100, n),
        "n09": rng.binomial(20, 0.3, n),
        "n10": rng.normal(50, 10, n),
        "n11": rng.gamma(2, 2 * (1 + 0.1 * d), n),  # drift: 10% scale
        "n12": rng.beta(2, 5, n),
        "n13": np.where(rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(2, 1, n)),
        "n14": rng.normal(0.05 * d, 1, n),  # tiny shift: no drift
        "n15": rng.lognormal(3, 0.5, n),
        "n16": rng.weibull(1.5, n),
        "n17": rng.geometric(0.2, n),
        "n18": np.round(rng.normal(100, 15, n), 2),
        "n19": rng.laplace(0, 1, n),
    }
    for name in ("n10", "n11", "n15"):  # 5% missing
        cols[name] = cols[name].astype(float)
        cols[name][rng.random(n) < 0.05] = np.nan
    for k in (3, 10, 50, 200, 1000):
        p = 1.0 / np.arange(1, k + 1) ** 0.8
        if drift and k == 10:
            p = p[::-1].copy()  # reweighted categories
        p /= p.sum()
        labels = np.array([f"v{i}" for i in range(k)], dtype=object)
        values = labels[rng.choice(k, size=n, p=p)]
        if drift and k == 3:
            values[rng.random(n) < 0.08] = "new"  # a category the reference never saw
        cols[f"c{k}"] = values
    cols["target"] = (rng.random(n) < (0.3 + 0.05 * d)).astype(np.int64)
    cols["proba"] = np.clip(rng.beta(2, 4, n) + 0.02 * d, 0, 1)
    return cols


def data_files(n: int) -> dict[str, Path]:
    import pandas as pd

    folder = RESULTS_DIR / "drift-data" / f"v{DATA_VERSION}-{n}"
    files = {k: folder / f"{k}.parquet" for k in ("reference", "current", "window")}
    if all(f.exists() for f in files.values()):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    for path, (seed, drift) in zip(files.values(), [(1, False), (2, True), (3, True)], strict=True):
        pd.DataFrame(generate(n, seed, drift)).to_parquet(path, index=False)
    return files


# ============================================================================================ memory
def _status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _measure(fn: Any, repeat: int) -> tuple[list[float], int, Any]:
    """Run ``fn`` ``repeat`` times; return times, peak RSS above the RSS before, last result."""
    import gc

    gc.collect()
    base = _status("VmRSS")
    _reset_peak()
    times, result = [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        t0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t0)
        _CPU.append(time.process_time() - c0)
    return times, max(_status("VmHWM") - base, 0), result


_CPU: list[float] = []  # CPU seconds (all threads) of every measured call, in order


def _load(path: str) -> Any:
    import pandas as pd

    return pd.read_parquet(path)


# ============================================================================================ workers
def _column_result(c: Any) -> dict[str, Any]:
    keys = ("method", "statistic", "p_value", "drifted", "status")
    return {k: getattr(c, k) for k in keys}


def worker_mloop(args: argparse.Namespace) -> dict[str, Any]:
    from mloop import monitoring as mon

    ref, cur, window = _load(args.reference), _load(args.current), _load(args.window)
    rss_loaded = _status("VmRSS")
    times, above, report = _measure(lambda: mon.drift_report(ref, cur), args.repeat)
    out: dict[str, Any] = {
        "times": times,
        "rss_loaded": rss_loaded,
        "above_input": above,
        "dataset_drifted": report.drifted,
        "share": report.share_drifted,
        "columns": {c.name: _column_result(c) for c in report.columns.values()},
    }
    out["cpu"] = list(_CPU)
    prof_times, _, profile = _measure(lambda: mon.Profile.from_data(ref), args.repeat)
    path = Path(args.out).with_suffix(".profile")
    profile.save(path)
    out["profile_build_times"] = prof_times
    out["profile_build_s"] = median(prof_times)
    out["profile_build_cpu"] = _CPU[-args.repeat :]
    out["profile_bytes"] = path.stat().st_size
    del profile
    load_times, _, stored = _measure(lambda: mon.Profile.load(path), args.repeat)
    win_times, win_above, win = _measure(lambda: mon.drift_report(stored, window), args.repeat)
    out["profile_load_s"] = load_times
    out["window_times"] = win_times
    out["window_above_input"] = win_above
    out["window_drifted"] = win.drifted
    out["window_cpu"] = _CPU[-args.repeat :]
    return out


def _evidently_kind(method: str) -> bool:
    return "p_value" in method


def worker_evidently(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    warnings.filterwarnings("ignore")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    ref, cur = _load(args.reference), _load(args.current)
    rss_loaded = _status("VmRSS")
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)

    def run() -> Any:
        report = Report([DataDriftPreset()])
        return report.run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        ).dict()

    times, above, snap = _measure(run, args.repeat)
    columns, share = {}, None
    for m in snap["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            value, is_test = float(m["value"]), _evidently_kind(cfg["method"])
            drifted = value < cfg["threshold"] if is_test else value >= cfg["threshold"]
            columns[cfg["column"]] = {"method": cfg["method"], "value": value, "drifted": drifted}
        elif cfg["type"].endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
    return {
        "times": times,
        "cpu": list(_CPU),
        "rss_loaded": rss_loaded,
        "above_input": above,
        "share": share,
        "dataset_drifted": share is not None and share >= 0.5,
        "columns": columns,
    }


def worker_nannyml(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    warnings.filterwarnings("ignore")
    import nannyml as nml

    ref, cur = _load(args.reference), _load(args.current)
    rss_loaded = _status("VmRSS")

    def run() -> Any:
        calc = nml.UnivariateDriftCalculator(
            column_names=NUMERIC + CATEGORICAL,
            treat_as_categorical=CATEGORICAL,
            continuous_methods=["wasserstein"],
            categorical_methods=["jensen_shannon"],
            chunk_number=1,
        )
        calc.fit(ref)
        return calc.calculate(cur).filter(period="analysis").to_df()

    times, above, df = _measure(run, args.repeat)
    alerts = [c for c in df.columns if c[-1] == "alert"]
    return {
        "times": times,
        "cpu": list(_CPU),
        "rss_loaded": rss_loaded,
        "above_input": above,
        "n_alerts": int(sum(bool(df[c].iloc[-1]) for c in alerts)),
    }


WORKERS = {"mloop": worker_mloop, "evidently": worker_evidently, "nannyml": worker_nannyml}


# ============================================================================================ main
def _compare(mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    names = {"Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensenshannon",
             "K-S p_value": "ks", "chi-square p_value": "chisquare", "Z-test p_value": "z"}  # fmt: skip
    agree, same_method, diffs, disagreements = 0, 0, {}, []
    for name, ev in theirs["columns"].items():
        ml = mine["columns"].get(name)
        if ml is None:
            continue
        agree += ml["drifted"] == ev["drifted"]
        if ml["drifted"] != ev["drifted"]:
            disagreements.append(name)
        if names.get(ev["method"]) == ml["method"]:
            same_method += 1
            if ml["method"] in ("wasserstein", "jensenshannon"):
                a, b = ml["statistic"], ev["value"]
                diffs[name] = abs(a - b) / max(abs(b), 1e-300) if b else abs(a)
    return {
        "columns": len(theirs["columns"]),
        "verdicts_agree": agree,
        "disagreements": disagreements,
        "same_method": same_method,
        "dataset_verdict_agrees": mine["dataset_drifted"] == theirs["dataset_drifted"],
        "max_rel_diff": max(diffs.values()) if diffs else None,
        "rel_diffs": diffs,
    }


def _mb(b: float | None) -> str:
    return "-" if b is None else f"{b / 2**20:,.0f} MB"


def _secs(s: float | None) -> str:
    return "-" if s is None else (f"{s * 1e3:,.0f} ms" if s < 1 else f"{s:,.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3, help="mloop repetitions (median)")
    parser.add_argument("--peer-repeat", type=int, default=1, help="Evidently/NannyML repetitions")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--no-nannyml", action="store_true")
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--reference")
    parser.add_argument("--current")
    parser.add_argument("--window")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        result = WORKERS[args.worker](args)
        Path(args.out).write_text(json.dumps(result))
        return

    env = quiet_env(OMP_NUM_THREADS="2", NML_DISABLE_USAGE_LOGGING="1")
    peers: dict[str, Path | None] = {"evidently": None, "nannyml": None}
    notes: list[str] = []
    if not args.no_evidently:
        peers["evidently"] = ensure_venv("evidently", EVIDENTLY_REQUIREMENTS)
    if not args.no_nannyml:
        try:
            peers["nannyml"] = ensure_venv("nannyml", NANNYML_REQUIREMENTS)
        except Exception as exc:  # a broken optional peer is reported, not fatal
            notes.append(f"NannyML not measured: it did not install ({exc})")
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "versions": {p: package_version(py, p) for p, py in peers.items() if py is not None},
        "rows": {},
        "notes": notes,
    }
    script = str(Path(__file__).resolve())
    table = []
    for n in [int(x) for x in args.rows.split(",")]:
        files = data_files(n)
        common = ["--reference", str(files["reference"]), "--current", str(files["current"]),
                  "--window", str(files["window"])]  # fmt: skip
        print(f"[bench] {n:,} rows: mloop", file=sys.stderr, flush=True)
        mloop_args = [script, "--worker", "mloop", "--repeat", str(args.repeat), *common]
        row: dict[str, Any] = {"mloop": run_worker(sys.executable, mloop_args, env=env)}
        for peer, python in peers.items():
            if python is None:
                continue
            print(f"[bench] {n:,} rows: {peer}", file=sys.stderr, flush=True)
            try:
                peer_args = [script, "--worker", peer, "--repeat", str(args.peer_repeat), *common]
                row[peer] = run_worker(python, peer_args, env=env)
            except RuntimeError as exc:
                notes.append(f"{peer} at {n:,} rows failed: {exc}")
        ml = row["mloop"]
        ml_t = median(ml["times"])
        ev = row.get("evidently")
        if ev:
            row["agreement"] = _compare(ml, ev)
        ml_cpu = median(ml["cpu"][: len(ml["times"])])
        for engine in ("evidently", "nannyml"):
            if engine in row:
                t = median(row[engine]["times"])
                table.append([f"{n:,}", engine, _secs(t), _secs(median(row[engine]["cpu"])),
                              _mb(row[engine]["rss_loaded"]), _mb(row[engine]["above_input"]),
                              "", "", ""])  # fmt: skip
        ratio = "-"
        if ev:
            ratio = (
                f"{median(ev['times']) / ml_t:,.0f}x (wall), "
                f"{median(ev['cpu']) / ml_cpu:,.0f}x (CPU)"
            )
        mem = f"{ml['above_input'] / ev['above_input']:.2f}x" if ev and ev["above_input"] else "-"
        agree = row.get("agreement")
        agree_s = (
            f"{agree['verdicts_agree']}/{agree['columns']} cols, dataset "
            f"{'same' if agree['dataset_verdict_agrees'] else 'DIFFERENT'}"
            if agree
            else "-"
        )
        diff_s = (
            f"{agree['max_rel_diff']:.1e}" if agree and agree["max_rel_diff"] is not None else "-"
        )
        table.append([f"{n:,}", "mloop", _secs(ml_t), _secs(ml_cpu), _mb(ml["rss_loaded"]),
                      _mb(ml["above_input"]), ratio, mem,
                      f"{agree_s}; max rel diff {diff_s}"])  # fmt: skip
        table.append([f"{n:,}", "mloop: build profile", _secs(ml["profile_build_s"]),
                      _secs(median(ml["profile_build_cpu"])), "",
                      "", "", "", f"profile file {ml['profile_bytes'] / 2**20:,.1f} MB"])  # fmt: skip
        table.append([f"{n:,}", "mloop: new window vs stored profile",
                      _secs(median(ml["window_times"])), _secs(median(ml["window_cpu"])), "",
                      _mb(ml["window_above_input"]), "", "",
                      f"+ {_secs(median(ml['profile_load_s']))} to load the profile"])  # fmt: skip
        results["rows"][str(n)] = row
    print()
    print_table(
        ["rows", "engine", "wall (median)", "CPU (median)", "RSS loaded", "peak above input",
         "speed vs Evidently", "memory vs Evidently", "agreement with Evidently"],
        table,
    )  # fmt: skip
    for note in notes:
        print(f"note: {note}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "drift.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS_DIR / 'drift.json'}")


if __name__ == "__main__":
    main()
