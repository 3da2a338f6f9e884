"""Mutation testing of the core modules with mutmut: each module against its own tests.

    make mutation                       # every module (about 30 minutes on 2 cores the first time)
    make mutation MODULES="store/_filter.py tracking/_spool.py"

Each module gets its own mutmut workspace under ``.mutation/<module>/``; mutmut remembers results, so
a rerun only retests functions that changed. The table printed at the end is the score per module:
killed (or timed out) / all mutants. Survivors are listed with ``mutmut show <name>`` commands.

Equivalent mutants (no observable change) are marked where they arise with ``# pragma: no mutate``
and a reason; they are then not generated, and the report lists those lines.

Scope of the mutations: mutmut's operators on logic and data (comparison, arithmetic and boolean
operators, numbers, constants, keywords, call arguments, dict keys, strings used as values). The
wording of error messages is left out (``do_not_mutate_patterns`` below): a message's text is
reviewed, its facts (names, positions, values) are asserted through the error's ``details`` and
``match=``; mutating every word of every message would measure how many messages a test quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".mutation"
PKG = "src/mloop"

# module (under src/mloop) -> the pytest arguments that select its tests. PostgreSQL variants are
# left out: the same code runs on SQLite, and a server per mutant would not fit the time budget.
MODULES: dict[str, list[str]] = {
    "store/_filter.py": ["tests/store", "-k", "not postgres"],
    "monitoring/stats/_distances.py": [
        "tests/monitoring/test_stats.py",
        "tests/monitoring/test_stats_edges.py",
    ],
    "monitoring/stats/_tests.py": [
        "tests/monitoring/test_stats.py",
        "tests/monitoring/test_stats_edges.py",
    ],
    "tracking/_spool.py": [
        "tests/tracking/test_spool_replay.py",
        "tests/tracking/test_spool_quarantine.py",
        "tests/tracking/test_durability.py",
        "tests/registry/test_offline_log_model.py",
        "-k",
        "not postgres",
    ],
    "registry/_signature.py": ["tests/registry/test_signature.py"],
    # the leaf-module test reads the imports, and mutmut adds its own
    "codec/_types.py": ["tests/test_codec.py", "tests/test_codec_entities.py", "-k", "not leaf"],
    "monitoring/_drift.py": [
        "tests/monitoring/test_drift.py",
        "tests/monitoring/test_drift_rules.py",
    ],
    # The tracking suite but for the framework integrations, system metrics and run context,
    # which use the writer only as every run does (and are the slowest to repeat per mutant).
    "tracking/_writer.py": [
        "tests/tracking",
        "--ignore=tests/tracking/test_integrations.py",
        "--ignore=tests/tracking/test_system.py",
        "--ignore=tests/tracking/test_context.py",
        # seconds of lock timeouts per run; stop()'s bounds are pinned by test_writer_edges
        "--ignore=tests/tracking/test_finish_bound.py",
        "-k",
        "not postgres and not busy_file",  # the spool's own lock wait (tracking/_spool.py)
    ],
    # The process-wide flusher thread, split out of the writer: the writer's tests drive it.
    "tracking/_flusher.py": ["tests/tracking/test_writer.py"],
    # Without the tests that run polars (they need the slow forkserver; see FORKSERVER): those
    # exercise the input-example and signature code of other modules, not packaging.
    "registry/_package.py": [
        "tests/registry/test_package.py",
        "-k",
        "not polars and not test_predict_validates_against_the_signature",
    ],
    # A cold load from a local store's blobs: its own tests and the warm-load ones around it.
    "registry/_blob_load.py": [
        "tests/registry/test_blob_load.py",
        "tests/registry/test_warm_load.py",
    ],
    # Content digests (BLAKE3 names, SHA-256 names from 0.1) and the copy-while-hashing under
    # every local upload: their own tests and the blob store's on a local folder.
    "_digest.py": ["tests/test_digest.py", "tests/artifacts/test_sha256_validation.py"],
    "artifacts/_hashing.py": [
        "tests/artifacts/test_kernel_copy.py",
        "tests/artifacts/test_blobstore.py",
        "tests/artifacts/test_verified.py",
        "tests/artifacts/test_sha256_blobs.py",
        "tests/artifacts/test_private_links.py",
        "-k",
        "not s3 and not server",
    ],
    "monitoring/_profile.py": ["tests/monitoring/test_profile.py"],
    "monitoring/_profile_columns.py": ["tests/monitoring/test_profile.py"],
}

# Modules whose tests use polars (see _workspace).
FORKSERVER = {"registry/_signature.py", "monitoring/_drift.py"}

# Lines that hold only the text of a message: a string literal (or f-string) continuation line, or
# the format string of a raise/warn/log call. See the module docstring.
MESSAGE_LINES = [
    r'^\s*f?r?"[^"]*"\s*,?\s*$',  # a line that is one string literal (a message continuation)
    r"^\s*f?r?'[^']*'\s*,?\s*$",
    r'^\s*raise \w+\(\s*f?"',  # raise SomeError("text ..." on one line
    r"_log\.(debug|info|warning|exception)\(",
]

THRESHOLD = 0.85


def _workspace(module: str, tests: list[str]) -> Path:
    ws = WORK / module.replace("/", "__")
    ws.mkdir(parents=True, exist_ok=True)
    for name in ("src", "tests"):
        link = ws / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    pyproject = (ROOT / "pyproject.toml").read_text()
    config = {
        "source_paths": [f"{PKG}/"],
        "only_mutate": [f"{PKG}/{module}"],
        "pytest_add_cli_args_test_selection": tests,
        # --timeout: a mutant that deadlocks sleeps, and mutmut's own limit is on CPU time; the
        # suite's 300 s per test would make each such mutant cost five minutes.
        "pytest_add_cli_args": [
            "-p",
            "no:cacheprovider",
            "-q",
            "-m",
            "not no_mutation",
            "--timeout",
            "60",
        ],
        "do_not_mutate_patterns": MESSAGE_LINES,
        # mutmut's default (1 s of CPU over 15x the test's time) kills a mutant whose forked test
        # merely imports something the warm-up did not: a false kill. 10 s catches real hangs.
        "timeout_constant": 10.0,
        # Tests that use polars fork each mutant from a server that has only collected them:
        # forked straight from the process that ran them, polars' thread pool deadlocks the
        # children. The others fork from that process, which is about 4x faster.
        "process_isolation": "forkserver" if module in FORKSERVER else "fork",
    }
    body = "\n".join(f"{k} = {json.dumps(v)}" for k, v in config.items())
    (ws / "pyproject.toml").write_text(f"{pyproject}\n\n[tool.mutmut]\n{body}\n")
    return ws


# No test writes a file this large; a mutant that turns a bounded copy into an endless one (say,
# ``copied += n`` into ``copied = n``) then fails on its first write past it instead of filling
# the disk before its timeout (one such mutant wrote 68 GB in a minute).
_MAX_FILE_BYTES = 2 << 30


def _limit_file_size() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (_MAX_FILE_BYTES, _MAX_FILE_BYTES))


def _mutmut(ws: Path, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONPATH": "", "CI": ""}  # services are not started per mutant
    return subprocess.run(
        [str(exe), *args],
        cwd=ws,
        env=env,
        text=True,
        capture_output=capture,
        check=False,
        preexec_fn=_limit_file_size,
    )


def run_module(module: str, *, children: int, quiet: bool) -> dict[str, object]:
    ws = _workspace(module, MODULES[module])
    t0 = time.monotonic()
    proc = _mutmut(ws, "run", "--max-children", str(children), capture=quiet)
    if proc.returncode != 0:
        tail = (proc.stdout or "")[-2000:] + (proc.stderr or "")[-2000:]
        raise SystemExit(f"mutmut failed on {module} (exit {proc.returncode}):\n{tail}")
    _mutmut(ws, "export-cicd-stats", capture=True)
    stats = json.loads((ws / "mutants" / "mutmut-cicd-stats.json").read_text())
    results = _mutmut(ws, "results", capture=True).stdout
    survivors = [
        line.split(":")[0].strip()
        for line in results.splitlines()
        if line.strip().endswith(("survived", "no tests", "suspicious"))
    ]
    killed = stats["killed"] + stats["timeout"] + stats["segfault"]
    counted = stats["total"] - stats["skipped"]
    return {
        "module": module,
        "mutants": counted,
        "killed": killed,
        "survived": counted - killed,
        "score": killed / counted if counted else 1.0,
        "seconds": round(time.monotonic() - t0),
        "survivors": survivors,
        "workspace": str(ws.relative_to(ROOT)),
    }


def equivalent_marks() -> list[str]:
    """Every ``# pragma: no mutate`` in the core modules, with its reason."""
    out = []
    for module in MODULES:
        path = ROOT / PKG / module
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines, 1):
            if "pragma: no mutate" not in line:
                continue
            reason = re.sub(r".*pragma: no mutate\s*[-:—]*\s*", "", line).strip()
            j = i - 2
            comment: list[str] = []
            while not reason and j >= 0:
                text = lines[j].strip()
                if text.startswith("#"):
                    comment.insert(0, text.lstrip("# "))
                elif "pragma: no mutate" not in text:  # a run of marked lines shares one comment
                    break
                j -= 1
            reason = reason or " ".join(comment)
            out.append(f"{PKG}/{module}:{i}: {reason or '(no reason given)'}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {list(MODULES)}")
    parser.add_argument("--children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--fresh", action="store_true", help="forget earlier results")
    parser.add_argument("--verbose", action="store_true", help="show mutmut's progress")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    modules = args.modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown modules {unknown}; known: {list(MODULES)}")
    if args.fresh:
        for m in modules:
            shutil.rmtree(WORK / m.replace("/", "__"), ignore_errors=True)
    rows = []
    for m in modules:
        print(f"mutating {m} ...", flush=True)
        rows.append(run_module(m, children=args.children, quiet=not args.verbose))
    print()
    print(f"{'module':<34} {'mutants':>7} {'killed':>7} {'survived':>8} {'score':>6} {'time':>6}")
    for r in rows:
        flag = "" if r["score"] >= THRESHOLD else "  < 85%"  # type: ignore[operator]
        print(
            f"{r['module']:<34} {r['mutants']:>7} {r['killed']:>7} {r['survived']:>8} "
            f"{r['score']:>6.1%} {r['seconds']:>5}s{flag}"
        )
    total = sum(int(r["mutants"]) for r in rows)  # type: ignore[call-overload]
    killed = sum(int(r["killed"]) for r in rows)  # type: ignore[call-overload]
    print(f"{'all':<34} {total:>7} {killed:>7} {total - killed:>8} {killed / total:>6.1%}")
    marks = equivalent_marks()
    print(f"\nequivalent mutants marked (# pragma: no mutate): {len(marks)}")
    for mark in marks:
        print(f"  {mark}")
    for r in rows:
        if r["survivors"]:
            print(f"\nsurvivors in {r['module']} (cd {r['workspace']} && mutmut show <name>):")
            for name in r["survivors"]:  # type: ignore[attr-defined]
                print(f"  {name}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(r["score"] >= THRESHOLD for r in rows) else 1  # type: ignore[operator]


if __name__ == "__main__":
    raise SystemExit(main())
