"""Start-up time (issue 17): ``import mloop``, ``mloop --help`` and ``mloop runs list`` as fresh
processes, beside ``import mlflow`` and ``mlflow --help`` from the MLflow bench env.

    .venv/bin/python bench/startup.py                 # 9 fresh processes per command
    .venv/bin/python bench/startup.py --repeat 5

Each command runs once untimed (bytecode caches written), then ``--repeat`` times; the table shows
the median wall time of the whole process (start to exit, output discarded) and mloop/MLflow ratios.
``mloop runs list`` reads a small store the script creates (20 runs of 3 params and 2 metrics in a
temp ``MLOOP_HOME``). Writes ``bench/results/startup.json``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

# Issue 17's goals, in seconds.
GOALS = {"import": 0.150, "help": 0.250, "runs list": 0.350}
SMALL_STORE_RUNS = 20


def _time_process(cmd: list[str], *, env: dict[str, str], cwd: str, repeat: int) -> list[float]:
    """Wall seconds of ``repeat`` fresh processes of ``cmd`` (after one untimed warm-up)."""
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(
            cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}): {proc.stderr}")
        if i:
            times.append(elapsed)
    return times


def _shown(cmd: list[str]) -> str:
    """The command as recorded: the program's name, not the machine's path to it."""
    return " ".join([Path(cmd[0]).name, *cmd[1:]])


def _fill_small_store(python: str, env: dict[str, str], cwd: str) -> None:
    code = (
        "import mloop\n"
        f"for i in range({SMALL_STORE_RUNS}):\n"
        "    with mloop.start_run(project='startup', config={'lr': 0.1 * i, 'depth': i, 'seed': 0})"
        " as run:\n"
        "        run.log({'loss': 1.0 / (i + 1), 'acc': i / 20})\n"
    )
    subprocess.run([python, "-c", code], env=env, cwd=cwd, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9, help="fresh processes per command")
    parser.add_argument("--no-mlflow", action="store_true", help="measure mloop alone")
    args = parser.parse_args()
    if args.repeat < 5:
        parser.error(
            f"`--repeat` must be an int >= 5 (medians of fresh processes); got {args.repeat}"
        )
    if not c.mloop_importable():
        return 2

    python = sys.executable
    mloop_cli = str(Path(python).with_name("mloop"))
    mlflow_python: str | None = None
    if not args.no_mlflow:
        from tracking import MLFLOW_REQUIREMENTS  # one pinned MLflow env for every benchmark

        mlflow_python = str(c.ensure_venv("mlflow", MLFLOW_REQUIREMENTS))

    rows: list[tuple[str, list[str] | None, list[str] | None]] = [
        ("python -c pass", [python, "-c", "pass"], [mlflow_python, "-c", "pass"] if mlflow_python else None),
        ("import", [python, "-c", "import mloop"], [mlflow_python, "-c", "import mlflow"] if mlflow_python else None),
        ("help", [mloop_cli, "--help"], [str(Path(mlflow_python).with_name("mlflow")), "--help"] if mlflow_python else None),
        ("runs list", [mloop_cli, "runs", "list", "startup"], None),
    ]  # fmt: skip

    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        home = os.path.join(tmp, ".mloop")
        env = c.quiet_env(MLOOP_HOME=home)
        # What a user's machine does: the untimed first run writes the bytecode caches (a shell
        # with PYTHONDONTWRITEBYTECODE set would make every timed run compile changed modules).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        _fill_small_store(python, env, tmp)
        for case, mloop_cmd, mlflow_cmd in rows:
            assert mloop_cmd is not None
            print(f"[bench] {case}", file=sys.stderr)
            ours = _time_process(mloop_cmd, env=env, cwd=tmp, repeat=args.repeat)
            peer = (
                _time_process(mlflow_cmd, env=env, cwd=tmp, repeat=args.repeat)
                if mlflow_cmd
                else None
            )
            results[case] = {
                "mloop_command": _shown(mloop_cmd),
                "mlflow_command": _shown(mlflow_cmd) if mlflow_cmd else None,
                "mloop_s": ours,
                "mlflow_s": peer,
                "mloop_median_s": c.median(ours),
                "mlflow_median_s": c.median(peer) if peer else None,
                "goal_s": GOALS.get(case),
            }

    table = []
    for case, r in results.items():
        ours_m, peer_m, goal = r["mloop_median_s"], r["mlflow_median_s"], r["goal_s"]
        assert isinstance(ours_m, float)
        ratio = peer_m / ours_m if isinstance(peer_m, float) else None
        met = "-" if goal is None else ("met" if ours_m <= goal else "MISSED")  # type: ignore[operator]
        r["goal_met"] = None if goal is None else ours_m <= goal  # type: ignore[operator]
        table.append(
            [
                case,
                c.fmt_value(ours_m, "s"),
                c.fmt_value(peer_m if isinstance(peer_m, float) else None, "s"),
                c.fmt_ratio(ratio),
                c.fmt_value(goal, "s") if isinstance(goal, float) else "-",
                met,
            ]
        )
    print(f"\nStart-up, median wall time of {args.repeat} fresh processes (output discarded)")
    c.print_table(["case", "mloop", "MLflow", "mloop vs MLflow", "goal", "goal met"], table)
    fields: dict[str, object] = {
        "repeat": args.repeat,
        "small_store_runs": SMALL_STORE_RUNS,
        "cases": results,
    }
    if mlflow_python:
        fields["mlflow_version"] = c.package_version(mlflow_python, "mlflow")
    c.write_results("startup.json", "startup", fields)
    return 0


if __name__ == "__main__":
    sys.exit(main())
