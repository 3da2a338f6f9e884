"""Pipeline engine overhead (issue 15): a 100-step local flow of trivial steps, mloop vs Prefect 3.

    .venv/bin/python bench/pipelines.py                    # 3 repetitions, chain and fan-out
    .venv/bin/python bench/pipelines.py --repeat 2 --flows chain --no-prefect

Flows (the same shape in both engines, steps that do ~no work):

- ``chain``: ``inc(x) -> x + 1`` 100 times, each step reading the previous step's output;
- ``fanout``: one ``start``, 50 independent ``leaf`` steps reading it, and a pairwise tree of 49
  ``add`` steps summing them (100 steps). Both engines run it in-process, one step at a time
  (mloop's ``local`` executor; Prefect's direct task calls inside the flow).

mloop runs ``flow.run()`` with its defaults: SQLite store and local artifact folder in a fresh
``MLOOP_HOME``, the cache on (key: inputs, parameters and code, with the project modules the code
uses), a tracking run per pipeline run (``track=True``); the same flow with ``track=False`` is
measured too. Prefect 3 (``PREFECT_REQUIREMENTS``, in ``bench/.venv-prefect``, never in the project's
``.venv``) runs ``@flow``/``@task`` the way a user runs a local flow: no ``PREFECT_API_URL``, so its
default ephemeral local server with a SQLite database under ``PREFECT_HOME`` (a fresh temp dir per
repetition: nothing cached, nothing written to ``~/.prefect``); tasks have
``cache_policy=INPUTS + TASK_SOURCE`` and ``persist_result=True`` (results in
``PREFECT_HOME/storage``), its nearest equivalent of mloop's key. Prefect's console log level is set
to WARNING (less work for Prefect, not more).

Each repetition is one fresh worker process per engine: a first run of the flow with other inputs
(imports; Prefect starts its server and creates its database, mloop creates its store; its time
is reported as "first"), then the timed cold run (nothing cached for these inputs) and the timed
fully cached run (the same flow again: every step a cache hit, checked: mloop's records say
``cached``, Prefect's task bodies do not run). Per-step overhead = (flow wall time - the steps' own
work, timed as plain calls) / steps. "marginal" is the cost of one more step without the run's
fixed costs: (the 100-step chain - a ``--short``-step chain, both cold or both cached) / 90.
Medians over repetitions; ratios are Prefect/mloop (> 1: mloop's overhead is lower). Writes
``bench/results/pipelines.json`` (with each worker process's wall time, exit included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
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

PREFECT_REQUIREMENTS = ["prefect>=3.9,<3.10"]
FLOWS = ("chain", "fanout")
WARM_SEED = 1_000_000  # the untimed first run's inputs: no step of it matches a timed step
SHORT_SEED = 2_000_000  # the short chain's inputs (the marginal cost per step), likewise
GOAL_RATIO = 10.0  # Prefect's per-task overhead / mloop's per-step overhead, cold and cached
GOAL_HIT_MS = 5.0  # a cache hit, per step, code-hash check included


# ============================================================================================ work
def _plain_work(steps: int) -> float:
    """Seconds the steps' own work takes as plain calls (the chain's; the fan-out's is the same
    number of additions)."""

    def inc(x: int) -> int:
        return x + 1

    t0 = time.perf_counter()
    x = 0
    for _ in range(steps):
        x = inc(x)
    return time.perf_counter() - t0


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _expected(flow: str, steps: int, seed: int) -> int:
    if flow == "chain":
        return seed + steps
    leaves = (steps - 2) // 2 + 1
    return leaves * seed + leaves * (leaves - 1) // 2


# ============================================================================================ workers
def worker_mloop(args: argparse.Namespace) -> dict[str, Any]:
    import _pipeline_flows as flows

    from mloop.config import Settings

    root = Path(tempfile.mkdtemp(prefix="bench-mloop-pipelines-"))
    try:
        return _mloop_flows(args, flows, Settings, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)  # each repetition's stores and outputs (~40 MB)


def _mloop_flows(args: argparse.Namespace, flows: Any, Settings: Any, root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"work_s": _plain_work(args.steps)}
    for flow_name in args.flows.split(","):
        pdef = flows.FLOWS[flow_name]
        for track in (True, False):
            label = f"{flow_name}/{'track' if track else 'no-track'}"
            # A fresh home per flow and variant; its first run (other inputs) creates the store,
            # as Prefect's first run starts its server and creates its database.
            settings = Settings.from_env(home=str(root / label))
            first_s, _ = _timed(
                lambda s=settings, t=track, p=pdef: p.run(
                    settings=s, track=t, steps=args.steps, seed=WARM_SEED
                )
            )
            cold_s, cold = _timed(
                lambda s=settings, t=track, p=pdef: p.run(settings=s, track=t, steps=args.steps)
            )
            hit_s, hit = _timed(
                lambda s=settings, t=track, p=pdef: p.run(settings=s, track=t, steps=args.steps)
            )
            want = _expected(flow_name, args.steps, 0)
            if cold.output != want or hit.output != want:
                raise SystemExit(
                    f"mloop {label}: wrong output {cold.output}/{hit.output} != {want}"
                )
            if len(cold.executed) != args.steps or len(hit.cached) != args.steps:
                raise SystemExit(
                    f"mloop {label}: {len(cold.executed)} executed cold, {len(hit.cached)} cached "
                    f"on the second run; want {args.steps} each"
                )
            out[label] = {"first_s": first_s, "cold_s": cold_s, "cached_s": hit_s}
            if flow_name == "chain":
                short = [
                    _timed(
                        lambda s=settings, t=track, p=pdef: p.run(
                            settings=s, track=t, steps=args.short, seed=SHORT_SEED
                        )
                    )[0]
                    for _ in range(2)
                ]
                out[label].update(cold_short_s=short[0], cached_short_s=short[1])
    return out


def _prefect_flows() -> tuple[dict[str, Any], list[int], list[float]]:
    """The two flows as Prefect ``@flow``/``@task``, a counter of executed task bodies, and the
    seconds each flow function's body took (its tasks, without the flow run's start and end)."""
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, TASK_SOURCE

    calls = [0]
    body: list[float] = []  # the flow function's own span: its tasks, not the run around them
    policy = INPUTS + TASK_SOURCE

    @task(cache_policy=policy, persist_result=True)
    def inc(x: int) -> int:
        calls[0] += 1
        return x + 1

    @task(cache_policy=policy, persist_result=True)
    def start(seed: int) -> int:
        calls[0] += 1
        return seed

    @task(cache_policy=policy, persist_result=True)
    def leaf(x: int, i: int) -> int:
        calls[0] += 1
        return x + i

    @task(cache_policy=policy, persist_result=True)
    def add(a: int, b: int) -> int:
        calls[0] += 1
        return a + b

    @flow(name="bench-chain")
    def chain(seed: int = 0, steps: int = 100) -> int:
        t0 = time.perf_counter()
        x = seed
        for _ in range(steps):
            x = inc(x)
        body.append(time.perf_counter() - t0)
        return x

    @flow(name="bench-fanout")
    def fanout(seed: int = 0, steps: int = 100) -> int:
        t0 = time.perf_counter()
        src = start(seed)
        refs = [leaf(src, i) for i in range((steps - 2) // 2 + 1)]
        while len(refs) > 1:
            paired = [add(refs[i], refs[i + 1]) for i in range(0, len(refs) - 1, 2)]
            refs = paired + ([refs[-1]] if len(refs) % 2 else [])
        body.append(time.perf_counter() - t0)
        return refs[0]

    return {"chain": chain, "fanout": fanout}, calls, body


def worker_prefect(args: argparse.Namespace) -> dict[str, Any]:
    flows, calls, body = _prefect_flows()
    out: dict[str, Any] = {"work_s": _plain_work(args.steps)}
    n = args.steps
    for flow_name in args.flows.split(","):
        fn = flows[flow_name]
        first_s, _ = _timed(lambda f=fn: f(seed=WARM_SEED, steps=n))
        before = calls[0]
        cold_s, cold = _timed(lambda f=fn: f(seed=0, steps=n))
        executed = calls[0] - before
        before = calls[0]
        hit_s, hit = _timed(lambda f=fn: f(seed=0, steps=n))
        rerun = calls[0] - before
        want = _expected(flow_name, args.steps, 0)
        if cold != want or hit != want:
            raise SystemExit(f"prefect {flow_name}: wrong output {cold}/{hit} != {want}")
        if executed != args.steps or rerun != 0:
            raise SystemExit(
                f"prefect {flow_name}: {executed} task bodies ran cold and {rerun} on the cached "
                f"run; want {args.steps} and 0"
            )
        out[flow_name] = {"first_s": first_s, "cold_s": cold_s, "cached_s": hit_s,
                          "cold_body_s": body[-2], "cached_body_s": body[-1]}  # fmt: skip
        if flow_name == "chain":
            short = [_timed(lambda f=fn: f(seed=SHORT_SEED, steps=args.short))[0] for _ in range(2)]
            out[flow_name].update(cold_short_s=short[0], cached_short_s=short[1])
    return out


WORKERS = {"mloop": worker_mloop, "prefect": worker_prefect}


# ============================================================================================ main
def _per_step_ms(runs: list[dict[str, Any]], label: str, key: str, steps: int) -> float:
    return median([(r[label][key] - r["work_s"]) / steps * 1e3 for r in runs])


def _marginal_ms(runs: list[dict[str, Any]], label: str, key: str, n: int, short: int) -> float:
    """Per step of the long chain beyond the short one: the cost of one more step, without the
    run's fixed costs (starting and finishing the flow run)."""
    return median([(r[label][f"{key}_s"] - r[label][f"{key}_short_s"]) / (n - short) * 1e3
                   for r in runs])  # fmt: skip


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.2f} ms"


def _ratio(peer: float | None, mine: float | None) -> str:
    return "-" if peer is None or mine is None else f"{peer / mine:,.1f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--short", type=int, default=10, help="the short chain's steps")
    parser.add_argument("--repeat", type=int, default=3, help="worker processes per engine")
    parser.add_argument("--flows", default=",".join(FLOWS))
    parser.add_argument("--no-prefect", action="store_true")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.short < args.steps:
        parser.error(f"`--short` must be in [1, --steps); got {args.short}.")
    if any(f not in FLOWS for f in args.flows.split(",")):
        parser.error(f"`--flows` must be a comma-separated subset of {','.join(FLOWS)}")
    if args.worker is not None:
        Path(args.out).write_text(json.dumps(WORKERS[args.worker](args)))
        return

    script = str(Path(__file__).resolve())
    common = ["--steps", str(args.steps), "--short", str(args.short), "--flows", args.flows]
    prefect_python = None if args.no_prefect else ensure_venv("prefect", PREFECT_REQUIREMENTS)
    versions = {"mloop": package_version(sys.executable, "mloop")}
    if prefect_python is not None:
        versions["prefect"] = package_version(prefect_python, "prefect")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    mine: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-pipelines-") as tmp:
            env = quiet_env(MLOOP_HOME=os.path.join(tmp, "mloop-home"))
            t0 = time.perf_counter()
            mine.append(run_worker(sys.executable, [script, "--worker", "mloop", *common], env=env))
            mine[-1]["process_s"] = time.perf_counter() - t0
            if prefect_python is not None:
                penv = quiet_env(
                    PREFECT_HOME=os.path.join(tmp, "prefect-home"),
                    PREFECT_LOGGING_LEVEL="WARNING",
                    PREFECT_SERVER_ANALYTICS_ENABLED="false",
                )
                penv.pop("PREFECT_API_URL", None)
                t0 = time.perf_counter()
                theirs.append(
                    run_worker(prefect_python, [script, "--worker", "prefect", *common], env=penv)
                )
                theirs[-1]["process_s"] = time.perf_counter() - t0
        print(f"[bench] repetition {i + 1}/{args.repeat} done", file=sys.stderr)

    rows, cases, goals = [], {}, {}
    for flow_name in args.flows.split(","):
        peer = {
            k: (_per_step_ms(theirs, flow_name, f"{k}_s", args.steps) if theirs else None)
            for k in ("first", "cold", "cached")
        }
        for variant in ("track", "no-track"):
            label = f"{flow_name}/{variant}"
            me = {
                k: _per_step_ms(mine, label, f"{k}_s", args.steps)
                for k in ("first", "cold", "cached")
            }
            me_any: dict[str, float | None] = dict(me)
            if flow_name == "chain":
                for k in ("cold", "cached"):
                    me_any[f"{k} marginal"] = _marginal_ms(mine, label, k, args.steps, args.short)
                    peer[f"{k} marginal"] = (
                        _marginal_ms(theirs, flow_name, k, args.steps, args.short)
                        if theirs
                        else None
                    )
            for k in ("cold", "cached"):
                # mloop's pipeline function only builds the graph: its marginal is the nearest
                me_any[f"{k} in-flow"] = me_any.get(f"{k} marginal")
                peer[f"{k} in-flow"] = (
                    _per_step_ms(theirs, flow_name, f"{k}_body_s", args.steps) if theirs else None
                )
            cases[label] = {"mloop_ms_per_step": me_any, "prefect_ms_per_step": dict(peer)}
            for k, v in me_any.items():
                rows.append([label, k, _ms(v), _ms(peer[k]), _ratio(peer[k], v)])
            if variant == "track":  # the default is what the goals are about
                for k in ("cold", "cached"):
                    if peer[k] is not None:
                        ratio = peer[k] / me[k]
                        goals[f"{flow_name} {k}: Prefect/mloop >= {GOAL_RATIO:g}x"] = {
                            "value": round(ratio, 2), "met": ratio >= GOAL_RATIO,
                        }  # fmt: skip
                goals[f"{flow_name} cache hit <= {GOAL_HIT_MS:g} ms/step"] = {
                    "value": round(me["cached"], 3), "met": me["cached"] <= GOAL_HIT_MS,
                }  # fmt: skip
    print(
        f"\nper-step overhead, {args.steps} trivial steps, median of {args.repeat} processes "
        f"(marginal: ({args.steps}-step run - {args.short}-step run) / {args.steps - args.short}; "
        "in-flow: Prefect's flow function's own span / steps, beside mloop's marginal)"
    )
    print_table(["flow (mloop tracking)", "run", "mloop", "Prefect", "Prefect/mloop"], rows)
    print("\ngoals (mloop's default, track=True):")
    for name, g in goals.items():
        print(f"  {'met   ' if g['met'] else 'MISSED'}  {name}: {g['value']}")
    write_results(
        "pipelines.json",
        "pipelines",
        {
            "versions": versions,
            "steps": args.steps,
            "repeat": args.repeat,
            "cases": cases,
            "goals": goals,
            "raw": {"mloop": mine, "prefect": theirs},
        },
    )


if __name__ == "__main__":
    main()
