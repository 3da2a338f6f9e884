"""Profiles benchmark: mloop's compact profiles vs whylogs (``whylogs.log``) on bench/drift.py's table.

    .venv/bin/python bench/profiles.py [--rows 1000000] [--repeat 5] [--window-rows 200000]

Data: bench/drift.py's seeded 27-column table (its generator and its Parquet files in
``bench/results/drift-data/``): the reference, and its drifted "window" for the window check. Each
engine runs in its own process on the same files, loaded into pandas before anything is timed:
mloop in this interpreter, whylogs 1.6.4 in ``bench/.venv-whylogs`` (created on first use; it never
enters the project's ``.venv``). Medians of ``--repeat`` runs of:

- build: ``Profile.from_data(df)`` (compact, the default) vs ``whylogs.log(df).view()``;
- size on disk: ``Profile.save`` (an .npz file) vs ``DatasetProfileView.write`` (whylogs'
  serialized profile), at ``--rows`` and at 100,000 rows (a compact profile must not grow with rows);
- merge of 8 partition profiles (contiguous eighths of the rows, profiled untimed): ``Profile.merge``
  in a chain vs ``DatasetProfileView.merge`` in a chain;
- window check: the drifted window (``--rows`` rows) against the stored reference profile:
  ``drift_report(profile, window)`` vs ``whylogs.log(window)`` + ``calculate_drift_scores`` (whylogs'
  OSS drift scores: KS on 100 quantiles of its KLL sketches for numeric columns, chi-square on its
  frequent-items sketches for the others, thresholds p < 0.05 DRIFT, < 0.15 POSSIBLE_DRIFT);
- quantile error: on every column mloop sketches, the rank error of each engine's KLL quantiles at
  1%..99% against the exact column (mloop: k = 2048; whylogs: k = 1024), with each a-priori bound;
- verdict agreement: scenario windows of ``--window-rows`` rows (mean shifts of 0..1 reference sd in
  steps of 0.1, scale changes of 5..50%, categorical reweighting of 10..100% of the rows) checked
  against the compact profile and against the exact one (``exact=True``): same verdict per column,
  disagreements borderline, each sketched statistic within its error bound. whylogs' categories on
  the same windows are reported next to mloop's exact verdicts (different methods: context only).

Prints the tables and the issue's goals (met/MISSED); writes ``bench/results/profiles.json``. The
10M-row memory goal is bench/profiles_scale.py's.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _common import (  # noqa: E402
    ensure_venv,
    median,
    package_version,
    print_table,
    quiet_env,
    run_worker,
    write_results,
)
from drift import data_files, generate  # noqa: E402

WHYLOGS_REQUIREMENTS = ["whylogs[viz]==1.6.4", "pandas<3", "pyarrow"]
PARTS = 8
SIZE_ROWS = 100_000
QUANTILES = [i / 100 for i in range(1, 100)]
SCENARIOS = (
    [("mean", round(0.1 * i, 1)) for i in range(11)]
    + [("scale", s) for s in (1.05, 1.1, 1.25, 1.5)]
    + [("categories", t) for t in (0.1, 0.25, 0.5, 1.0)]
)
GOALS = {
    "size_bytes": 1_000_000,
    "growth": 1.10,
    "agreement": 0.99,
    "build_speedup": 5.0,
    "window_s": 0.5,
}


# ============================================================================================ data
def reference_stats(df: Any) -> dict[str, Any]:
    """What the scenario windows shift by: each numeric column's mean and sd, each categorical's
    labels from most to least frequent and their shares (the reference's, so both engines agree)."""
    out: dict[str, Any] = {"numeric": {}, "categorical": {}}
    for name in df.columns:
        col = df[name]
        if col.dtype.kind in "iuf":
            out["numeric"][name] = {
                "mean": float(col.mean()),
                "sd": float(col.std(ddof=0)),
                "integer": col.dtype.kind in "iu",
            }
        else:
            shares = col.value_counts(normalize=True)
            out["categorical"][name] = {
                "labels": [str(x) for x in shares.index],
                "shares": [float(x) for x in shares.values],
            }
    return out


def scenario_window(n: int, index: int, kind: str, amount: float, stats: dict[str, Any]) -> Any:
    """bench/drift.py's undrifted table (seed 100 + index) with one kind of shift applied."""
    import numpy as np
    import pandas as pd

    cols = generate(n, 100 + index, drift=False)
    rng = np.random.default_rng(1000 + index)
    for name, st in stats["numeric"].items():
        x = cols[name]
        if kind == "mean" and name == "target":  # a binary column: its rate rises by 0.2 * amount
            cols[name] = np.where(rng.random(n) < 0.2 * amount, 1, x).astype(x.dtype)
        elif kind == "mean" and st["integer"]:
            cols[name] = x + round(amount * st["sd"])
        elif kind == "mean":
            cols[name] = x + amount * st["sd"]
        elif kind == "scale" and not st["integer"]:
            cols[name] = st["mean"] + (x - st["mean"]) * amount
        if name == "proba":
            cols[name] = np.clip(cols[name], 0.0, 1.0)
    if kind == "categories":  # a share `amount` of the rows redrawn with the shares reversed
        for name, st in stats["categorical"].items():
            labels = np.array(st["labels"], dtype=object)
            shares = np.array(st["shares"][::-1])
            redraw = rng.random(n) < amount
            values = cols[name].copy()
            values[redraw] = labels[
                rng.choice(labels.size, int(redraw.sum()), p=shares / shares.sum())
            ]
            cols[name] = values
    return pd.DataFrame(cols)


def rank_error(sorted_values: Any, quantiles: Any) -> float:
    """Largest distance of each asked rank (QUANTILES) from the true rank range of the value a
    sketch returned for it (ties make a range)."""
    import numpy as np

    v = np.asarray(quantiles, dtype=np.float64)
    n = sorted_values.size
    lo = np.searchsorted(sorted_values, v, side="left") / n
    hi = np.searchsorted(sorted_values, v, side="right") / n
    q = np.asarray(QUANTILES)
    return float(np.max(np.maximum(np.maximum(lo - q, q - hi), 0.0)))


def _exact_sorted(df: Any, name: str) -> Any:
    import numpy as np

    x = df[name].to_numpy(dtype=np.float64)
    return np.sort(x[np.isfinite(x)])


def _timed(fn: Any, repeat: int) -> tuple[list[float], Any]:
    import gc

    times, result = [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def _parts(df: Any) -> list[Any]:
    step = -(-len(df) // PARTS)
    return [df.iloc[i : i + step] for i in range(0, len(df), step)]


# ============================================================================================ workers
def worker_mloop(args: argparse.Namespace) -> dict[str, Any]:
    import pandas as pd

    from mloop import monitoring as mon

    ref, window = pd.read_parquet(args.reference), pd.read_parquet(args.window)
    stats = json.loads(Path(args.stats).read_text())
    out: dict[str, Any] = {}
    out["build_times"], profile = _timed(lambda: mon.Profile.from_data(ref), args.repeat)
    tmp = Path(tempfile.mkdtemp(prefix="bench-profiles-"))
    path = tmp / "reference.npz"
    profile.save(path)
    out["bytes"] = path.stat().st_size
    small = tmp / "small.npz"
    mon.Profile.from_data(pd.read_parquet(args.small)).save(small)
    out["bytes_small"] = small.stat().st_size
    parts = [mon.Profile.from_data(p) for p in _parts(ref)]

    def merge() -> Any:
        merged = parts[0]
        for p in parts[1:]:
            merged = merged.merge(p)
        return merged

    out["merge_times"], merged = _timed(merge, args.repeat)
    merged.save(tmp / "merged.npz")
    out["merged_bytes"] = (tmp / "merged.npz").stat().st_size
    out["load_times"], stored = _timed(lambda: mon.Profile.load(path), args.repeat)
    out["window_times"], _ = _timed(lambda: mon.drift_report(stored, window), args.repeat)
    sketched = [n for n, c in profile.columns.items() if c.kind == "numeric" and not c.is_exact]
    out["sketched"] = sketched
    out["rank_error"] = {
        n: rank_error(_exact_sorted(ref, n), profile.columns[n].sketch.get_quantiles(QUANTILES))
        for n in sketched
    }
    out["rank_bound"] = max(profile.columns[n].rank_error() for n in sketched) if sketched else 0.0
    exact = mon.Profile.from_data(ref, exact=True)
    cases, verdicts = [], {}
    for i, (kind, amount) in enumerate(SCENARIOS):
        w = scenario_window(args.window_rows, i, kind, amount, stats)
        compact, full = mon.drift_report(profile, w), mon.drift_report(exact, w)
        verdicts[f"{kind} {amount}"] = {n: c.drifted for n, c in full.columns.items()}
        for name, c in compact.columns.items():
            e = full.columns[name]
            within = None
            if c.error_bound is not None and c.statistic is not None and e.statistic is not None:
                within = abs(c.statistic - e.statistic) <= c.error_bound
            cases.append(
                {
                    "scenario": f"{kind} {amount}",
                    "column": name,
                    "sketched": not profile.columns[name].is_exact,
                    "agree": c.drifted == e.drifted,
                    "borderline": c.borderline,
                    "within_bound": within,
                    "statistic": c.statistic,
                    "exact_statistic": e.statistic,
                    "bound": c.error_bound,
                }
            )
    out["cases"], out["exact_verdicts"] = cases, verdicts
    return out


def worker_whylogs(args: argparse.Namespace) -> dict[str, Any]:
    import warnings

    warnings.filterwarnings("ignore")
    import pandas as pd
    import whylogs as why
    from whylogs.core.view.dataset_profile_view import DatasetProfileView
    from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

    ref, window = pd.read_parquet(args.reference), pd.read_parquet(args.window)
    stats = json.loads(Path(args.stats).read_text())
    out: dict[str, Any] = {}
    out["build_times"], view = _timed(lambda: why.log(ref).view(), args.repeat)
    tmp = Path(tempfile.mkdtemp(prefix="bench-profiles-"))
    path = tmp / "reference.bin"
    view.write(str(path))
    out["bytes"] = path.stat().st_size
    why.log(pd.read_parquet(args.small)).view().write(str(tmp / "small.bin"))
    out["bytes_small"] = (tmp / "small.bin").stat().st_size
    parts = [why.log(p).view() for p in _parts(ref)]

    def merge() -> Any:
        merged = parts[0]
        for p in parts[1:]:
            merged = merged.merge(p)
        return merged

    out["merge_times"], merged = _timed(merge, args.repeat)
    merged.write(str(tmp / "merged.bin"))
    out["merged_bytes"] = (tmp / "merged.bin").stat().st_size
    out["load_times"], stored = _timed(lambda: DatasetProfileView.read(str(path)), args.repeat)

    def check() -> Any:
        return calculate_drift_scores(why.log(window).view(), stored, with_thresholds=True)

    out["window_times"], _ = _timed(check, args.repeat)
    sketched = args.sketched.split(",") if args.sketched else []
    klls = {n: view.get_column(n).get_metric("distribution").kll.value for n in sketched}
    out["rank_error"] = {
        n: rank_error(_exact_sorted(ref, n), klls[n].get_quantiles(QUANTILES)) for n in sketched
    }
    out["rank_bound"] = max((k.normalized_rank_error(True) for k in klls.values()), default=0.0)
    categories = {}
    for i, (kind, amount) in enumerate(SCENARIOS):
        w = why.log(scenario_window(args.window_rows, i, kind, amount, stats)).view()
        scores = calculate_drift_scores(w, view, with_thresholds=True)
        categories[f"{kind} {amount}"] = {
            n: (s or {}).get("drift_category") for n, s in scores.items()
        }
    out["categories"] = categories
    return out


WORKERS = {"mloop": worker_mloop, "whylogs": worker_whylogs}


# ============================================================================================ main
def _secs(s: float) -> str:
    return f"{s * 1e3:,.0f} ms" if s < 1 else f"{s:,.2f} s"


def _size(b: int) -> str:
    return f"{b / 1e3:,.0f} KB" if b < 1e6 else f"{b / 1e6:,.2f} MB"


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _agreement(ml: dict[str, Any]) -> dict[str, Any]:
    cases = ml["cases"]
    verdicts = [c for c in cases if c["statistic"] is not None]
    sketched = [c for c in verdicts if c["sketched"]]
    disagree = [c for c in verdicts if not c["agree"]]
    bounded = [c for c in sketched if c["within_bound"] is not None]
    return {
        "cases": len(verdicts),
        "sketched_cases": len(sketched),
        "agree": len(verdicts) - len(disagree),
        "share": (len(verdicts) - len(disagree)) / len(verdicts) if verdicts else 1.0,
        "disagreements": [(c["scenario"], c["column"]) for c in disagree],
        "disagreements_borderline": all(c["borderline"] for c in disagree),
        "borderline": sum(bool(c["borderline"]) for c in verdicts),
        "within_bound": sum(bool(c["within_bound"]) for c in bounded),
        "bounded": len(bounded),
        "max_error_over_bound": max(
            (
                abs(c["statistic"] - c["exact_statistic"]) / c["bound"]
                for c in bounded
                if c["bound"]
            ),
            default=0.0,
        ),
    }


def _whylogs_context(ml: dict[str, Any], wl: dict[str, Any]) -> list[list[str]]:
    rows = []
    for scenario, exact in ml["exact_verdicts"].items():
        cats = wl["categories"].get(scenario, {})
        drift = sum(v == "DRIFT" for v in cats.values())
        possible = sum(v == "POSSIBLE_DRIFT" for v in cats.values())
        same = sum((cats.get(n) == "DRIFT") == d for n, d in exact.items() if n in cats)
        rows.append(
            [
                scenario,
                f"{sum(exact.values())}/{len(exact)}",
                f"{drift} (+{possible})",
                f"{same}/{len(exact)}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="mloop runs per measurement (median)")
    parser.add_argument("--peer-repeat", type=int, default=3, help="whylogs runs (median)")
    parser.add_argument("--window-rows", type=int, default=200_000, help="rows per scenario")
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--reference")
    parser.add_argument("--window")
    parser.add_argument("--small")
    parser.add_argument("--stats")
    parser.add_argument("--sketched", default="")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        Path(args.out).write_text(json.dumps(WORKERS[args.worker](args)))
        return

    import pandas as pd

    whylogs_python = ensure_venv("whylogs", WHYLOGS_REQUIREMENTS)
    files, small = data_files(args.rows), data_files(SIZE_ROWS)
    env = quiet_env(OMP_NUM_THREADS="2", WHYLOGS_NO_ANALYTICS="True")
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="bench-profiles-") as tmp:
        stats_path = Path(tmp) / "stats.json"
        stats_path.write_text(json.dumps(reference_stats(pd.read_parquet(files["reference"]))))
        common = [
            "--reference",
            str(files["reference"]),
            "--window",
            str(files["window"]),
            "--small",
            str(small["reference"]),
            "--stats",
            str(stats_path),
            "--window-rows",
            str(args.window_rows),
        ]
        print(f"[bench] {args.rows:,} rows: mloop", file=sys.stderr, flush=True)
        ml_args = [script, "--worker", "mloop", "--repeat", str(args.repeat), *common]
        ml = run_worker(sys.executable, ml_args, env=env)
        print(f"[bench] {args.rows:,} rows: whylogs", file=sys.stderr, flush=True)
        wl_args = [
            script,
            "--worker",
            "whylogs",
            "--sketched",
            ",".join(ml["sketched"]),
            "--repeat",
            str(args.peer_repeat),
            *common,
        ]
        wl = run_worker(whylogs_python, wl_args, env=env)

    t = {
        e: {k: median(r[k]) for k in ("build_times", "merge_times", "load_times", "window_times")}
        for e, r in (("mloop", ml), ("whylogs", wl))
    }
    rows = []
    for what, key in (
        ("build profile", "build_times"),
        ("merge 8 partition profiles", "merge_times"),
        ("load stored profile", "load_times"),
        ("window vs stored profile", "window_times"),
    ):
        a, b = t["mloop"][key], t["whylogs"][key]
        rows.append([what, _secs(a), _secs(b), f"mloop {b / a:,.1f}x faster" if a else "-"])
    for what, key in (
        ("profile on disk", "bytes"),
        (f"profile on disk ({SIZE_ROWS:,} rows)", "bytes_small"),
        ("merged profile on disk", "merged_bytes"),
    ):
        a, b = ml[key], wl[key]
        rows.append([what, _size(a), _size(b), f"mloop {a / b:,.2f}x the size"])
    ml_err, wl_err = max(ml["rank_error"].values()), max(wl["rank_error"].values())
    rows.append(
        [
            f"max quantile rank error ({len(ml['sketched'])} cols, 1..99%)",
            f"{ml_err:.5f} (bound {ml['rank_bound']:.5f})",
            f"{wl_err:.5f} (bound {wl['rank_bound']:.5f})",
            f"mloop {wl_err / ml_err:,.1f}x smaller" if ml_err else "-",
        ]
    )
    print()
    print(
        f"{args.rows:,} rows x 27 columns; medians of {args.repeat} (mloop) and "
        f"{args.peer_repeat} (whylogs) runs"
    )
    print_table(
        [
            "what",
            "mloop",
            f"whylogs {package_version(whylogs_python, 'whylogs')}",
            "ratio",
        ],
        rows,
    )

    agree = _agreement(ml)
    print()
    print(
        f"verdicts: compact vs exact mloop profile, {len(SCENARIOS)} scenarios of "
        f"{args.window_rows:,} rows x 27 columns"
    )
    print_table(
        [
            "cases",
            "sketched",
            "same verdict",
            "disagreements borderline",
            "flagged borderline",
            "statistic within bound",
            "max |error| / bound",
        ],
        [
            [
                str(agree["cases"]),
                str(agree["sketched_cases"]),
                f"{agree['agree']} ({agree['share']:.1%})",
                f"{len(agree['disagreements'])} ({'all' if agree['disagreements_borderline'] else 'NOT all'})",
                str(agree["borderline"]),
                f"{agree['within_bound']}/{agree['bounded']}",
                f"{agree['max_error_over_bound']:.2f}",
            ]
        ],
    )
    print()
    print(
        "whylogs' drift categories (KS / chi-square on its sketches) next to mloop's exact verdicts "
        "(Wasserstein / Jensen-Shannon): different methods, context only"
    )
    print_table(
        [
            "scenario",
            "mloop exact: drifted",
            "whylogs: DRIFT (+POSSIBLE)",
            "same (DRIFT = drifted)",
        ],
        _whylogs_context(ml, wl),
    )

    speedup = t["whylogs"]["build_times"] / t["mloop"]["build_times"]
    goals = [
        [
            "profile size <= 1 MB (1M x 27)",
            _size(ml["bytes"]),
            _met(ml["bytes"] <= GOALS["size_bytes"]),
        ],
        [
            "does not grow with rows (<= 1.10x from 100k)",
            f"{ml['bytes'] / ml['bytes_small']:.2f}x",
            _met(ml["bytes"] <= GOALS["growth"] * ml["bytes_small"]),
        ],
        [
            "verdict agreement >= 99%, disagreements borderline",
            f"{agree['share']:.1%}, {len(agree['disagreements'])} disagreements",
            _met(agree["share"] >= GOALS["agreement"] and agree["disagreements_borderline"]),
        ],
        [
            "statistic error within the bound in every case",
            f"{agree['within_bound']}/{agree['bounded']}",
            _met(agree["within_bound"] == agree["bounded"]),
        ],
        [
            "build >= 5x faster than whylogs",
            f"{speedup:,.1f}x",
            _met(speedup >= GOALS["build_speedup"]),
        ],
        [
            "window vs profile (1M rows) <= 0.5 s",
            _secs(t["mloop"]["window_times"]),
            _met(t["mloop"]["window_times"] <= GOALS["window_s"]),
        ],
    ]
    if args.rows != 1_000_000:
        goals = [[g, v, f"{m} (at {args.rows:,} rows, not the goal's 1M)"] for g, v, m in goals]
    print()
    print_table(["goal (issue 14)", "measured", ""], goals)
    print("(10M-row memory: bench/profiles_scale.py; Ray: tests/monitoring/test_profile_scale.py)")
    write_results(
        "profiles.json",
        "profiles",
        {
            "rows": args.rows,
            "repeat": args.repeat,
            "peer_repeat": args.peer_repeat,
            "window_rows": args.window_rows,
            "versions": {
                "whylogs": package_version(whylogs_python, "whylogs"),
                "mloop": package_version(sys.executable, "mloop"),
            },
            "medians_s": t,
            "agreement": agree,
            "goals": goals,
            "mloop": ml,
            "whylogs": wl,
        },
    )


if __name__ == "__main__":
    main()
