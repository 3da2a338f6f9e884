"""``mloop pipelines list | runs | show | run | resume``: run pipelines and read their records."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mloop.cli._common import console, fmt_duration, fmt_ms, print_json, settings
from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    from mloop.pipelines import PipelineDef, PipelineResult
    from mloop.store import PipelineRun, StepRun, Store

pipelines_app = typer.Typer(
    help="Pipelines: run them (cached, retried, resumable) and read their runs.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor",
        help="local (in this process), process (a process pool) or ray (Ray tasks on the "
        "cluster ray.init() finds, else a local one; pip install 'mloop[ray]').",
    ),
]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", help="Processes of the process executor.")
]
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Execute every step (MLOOP_PIPELINE_CACHE=0 too).")
]


def _store(*, create: bool) -> Store:
    from mloop.store import open_store

    return open_store(settings(), create=create)


def _importable_here() -> None:
    # A pipeline named ``module:function`` is imported like ``python -m``: from this folder.
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)


def _load_pipeline(target: str) -> PipelineDef:
    from mloop.pipelines import PipelineDef

    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise InvalidInputError(
            f"a pipeline is named `module:function` (e.g. `flows.churn:retrain`); got {target!r}."
        )
    _importable_here()
    import importlib

    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"cannot import {target!r}: {exc}.") from None
    if not isinstance(obj, PipelineDef):
        raise InvalidInputError(f"{target!r} is not a @pipeline function; got {obj!r}.")
    return obj


def _parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise InvalidInputError(f"`--param` takes name=value; got {item!r}.")
        try:
            params[key] = json.loads(text)  # numbers, booleans, lists... as JSON
        except ValueError:
            params[key] = text  # anything else is a string
    return params


def _run_dict(r: PipelineRun) -> dict[str, Any]:
    return r.to_dict()


def _steps_table(steps: list[StepRun]) -> Table:
    table = Table(show_edge=False)
    registered = any(s.models for s in steps)
    for col in ("step", "status", "attempts", "duration", "outputs", "note"):
        table.add_column(col)
    if registered:
        table.add_column("registered")
    for s in steps:
        outputs = ", ".join(f"{k}={v[:12]}" for k, v in s.outputs.items()) or "-"
        row = [
            s.name,
            s.status,
            str(s.attempts),
            fmt_duration(s.start_ms, s.end_ms),
            outputs,
            (s.error or s.cache_note or "").strip().splitlines()[-1:][0]
            if (s.error or s.cache_note)
            else "",
        ]
        if registered:
            row.append(", ".join(s.models))
        table.add_row(*row)
    return table


def _report(result: PipelineResult, as_json: bool) -> None:
    if as_json:
        print_json(
            {"run": _run_dict(result.run), "steps": [s.to_dict() for s in result.steps.values()]}
        )
        return
    r = result.run
    console.print(
        f"run {r.id} of {r.pipeline}: {r.status} ({len(result.executed)} executed, "
        f"{len(result.cached)} cached)"
    )
    console.print(_steps_table(list(result.steps.values())))


@pipelines_app.command("list")
def list_pipelines(as_json: JsonOpt = False) -> None:
    """Pipelines that have run, by name."""
    found = _store(create=False).list_pipelines()
    if as_json:
        print_json([p.to_dict() for p in found])
        return
    table = Table(show_edge=False)
    for col in ("name", "code", "updated"):
        table.add_column(col)
    for p in found:
        table.add_row(p.name, p.code_ref, fmt_ms(p.updated_ms))
    console.print(table)


@pipelines_app.command("runs")
def list_runs(
    pipeline: Annotated[str | None, typer.Argument(help="Only this pipeline's runs.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="running, finished or failed.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many runs.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Pipeline runs, newest first."""
    runs = _store(create=False).list_pipeline_runs(pipeline, status=status, limit=limit)
    if as_json:
        print_json([_run_dict(r) for r in runs])
        return
    table = Table(show_edge=False)
    for col in ("id", "pipeline", "status", "trigger", "started", "duration", "resumed from"):
        table.add_column(col)
    for r in runs:
        table.add_row(
            r.id, r.pipeline, r.status, r.trigger, fmt_ms(r.start_ms),
            fmt_duration(r.start_ms, r.end_ms), r.resumed_from or "-",
        )  # fmt: skip
    console.print(table)


@pipelines_app.command("show")
def show(
    run_id: Annotated[str, typer.Argument(help="A pipeline run id.")],
    as_json: JsonOpt = False,
) -> None:
    """One run and its steps: status, attempts, cache, output hashes, errors."""
    store = _store(create=False)
    r = store.get_pipeline_run(run_id)
    steps = store.list_step_runs(run_id)
    if as_json:
        print_json({"run": _run_dict(r), "steps": [s.to_dict() for s in steps]})
        return
    console.print(f"run {r.id} of {r.pipeline} ({r.code_ref})")
    console.print(
        f"  status {r.status}, trigger {r.trigger}, started {fmt_ms(r.start_ms)}, "
        f"took {fmt_duration(r.start_ms, r.end_ms)}"
    )
    console.print(f"  params {json.dumps(dict(r.params), sort_keys=True, default=str)}")
    if r.resumed_from:
        console.print(f"  resumes {r.resumed_from}")
    if r.error:
        console.print(f"  error: {r.error}")
    console.print(_steps_table(steps))


@pipelines_app.command("run")
def run_pipeline(
    target: Annotated[str, typer.Argument(help="The pipeline as module:function.")],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A pipeline argument, name=value (JSON or text)."),
    ] = None,
    no_cache: NoCacheOpt = False,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a pipeline; a failure prints how to resume it (exit 2)."""
    from mloop.pipelines import run

    pdef = _load_pipeline(target)
    s = settings()
    result = run(
        pdef, params=_parse_params(param or []), settings=s, store=_store(create=True),
        cache=False if no_cache else None, executor=executor,  # type: ignore[arg-type]
        max_workers=workers,
    )  # fmt: skip
    _report(result, as_json)


@pipelines_app.command("resume")
def resume_run(
    run_id: Annotated[str, typer.Argument(help="A failed pipeline run id.")],
    no_cache: NoCacheOpt = False,
    executor: ExecutorOpt = "local",
    workers: WorkersOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a failed run again from its failure (finished steps are reused)."""
    from mloop.pipelines import resume

    _importable_here()
    result = resume(
        run_id, settings=settings(), store=_store(create=True),
        cache=False if no_cache else None, executor=executor, max_workers=workers,
    )  # fmt: skip
    _report(result, as_json)


def register(app: typer.Typer) -> None:
    app.add_typer(pipelines_app, name="pipelines")
