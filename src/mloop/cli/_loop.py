"""``mloop loop template | scenario | replay``: the closed loop from files."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mloop.cli._common import console, print_json
from mloop.errors import InvalidInputError

if TYPE_CHECKING:
    from mloop.loop import ReplayResult

loop_app = typer.Typer(
    help="The closed loop: the retraining template, simulated scenarios, and replays.",
    no_args_is_help=True,
)


def template(
    path: Annotated[
        Path, typer.Argument(help="Where to write the pipeline (a .py file or a folder).")
    ] = Path("retrain.py"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write the standard retraining pipeline (gather, validate, train, check, promote) to edit."""
    from mloop.loop import templates

    source = Path(templates.__file__).parent / "retrain.py"
    target = path / "retrain.py" if path.is_dir() else path
    if target.exists() and not force:
        raise InvalidInputError(f"{target} exists; pass --force to overwrite it.")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    console.print(
        f"wrote {target}: edit make_model() and the steps, then point a trigger at "
        f"'{target.stem}:retrain'."
    )


def scenario(
    kind: Annotated[
        str,
        typer.Argument(
            help="no_change, covariate_shift, irrelevant_shift, "
            "concept_drift, broken_feature or gradual_drift."
        ),
    ],
    out: Annotated[Path, typer.Argument(help="The folder to write (the replay layout).")],
    windows: Annotated[int, typer.Option("--windows", help="Production windows.")] = 20,
    rows: Annotated[int, typer.Option("--rows", help="Requests per window.")] = 150,
    change: Annotated[int, typer.Option("--change", help="The first changed window.")] = 10,
    shift: Annotated[float, typer.Option("--shift", help="Shift size in sd.")] = 2.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Write a seeded simulated scenario in the replay layout."""
    from mloop.loop import generate_scenario

    spec = generate_scenario(
        kind, out, n_windows=windows, rows_per_window=rows, change_window=change,
        shift_sd=shift, seed=seed,
    )  # fmt: skip
    console.print(
        f"wrote {out}: {spec.kind}, {spec.n_windows} windows of {spec.rows_per_window} rows, "
        f"change at window {spec.change_window}."
    )


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    if not enabled:
        yield lambda stage, done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _cell(value: Any) -> str:
    if value is None or value == [] or value is False:
        return ""
    if value is True:
        return "yes"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def render_timeline(result: ReplayResult) -> None:
    """The replay's timeline as a table, then its summary."""
    table = Table(title=f"replay of {result.model}", title_justify="left")
    heads = ["window", "drift", "quality", "accuracy", "alerts", "retrain", "candidate",
             "check", "promoted", "serving"]  # fmt: skip
    for h in heads:
        table.add_column(h, overflow="fold")
    for e in result.windows:
        check = "" if e["check_passed"] is None else ("pass" if e["check_passed"] else "fail")
        retrain = "blocked" if e["retrain_blocked"] else _cell(e["retrain_started"])
        table.add_row(
            str(e["window"]), _cell(e["drifted_columns"]), _cell(e["quality_columns"]),
            _cell(e["accuracy"]), _cell(e["alerts"]), retrain, _cell(e["candidate_version"]),
            check, _cell(e["promoted_version"]), _cell(e["serving_version"]),
        )  # fmt: skip
    console.print(table)
    s = result.summary
    console.print(
        f"{s['windows']} windows, {s['requests']} requests ({s['errors']} errors); alerts: "
        f"drift {s['drift_alerts']}, quality {s['quality_alerts']}, performance "
        f"{s['performance_alerts']}; retrains {s['retrains']} ({s['blocked']} blocked); "
        f"candidates {s['candidates'] or 'none'}; promoted {s['promotions'] or 'none'}; serving "
        f"v{s['first_version']} -> v{s['final_serving_version']} (champion now "
        f"v{s['final_champion']}); accuracy before the first swap "
        f"{_cell(s['accuracy_before']) or '-'}, after it {_cell(s['accuracy_after']) or '-'}."
    )


def replay(
    folder: Annotated[Path, typer.Argument(help="train.parquet, windows/wNNN.parquet, labels/.")],
    label_delay: Annotated[
        int, typer.Option("--label-delay", help="K: window w's labels arrive after w + K.")
    ] = 1,
    policy: Annotated[
        str | None, typer.Option("--policy", help="The gate policy (default: the loop's).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Model/deployment name (default: fresh).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the timeline as JSON.")] = False,
) -> None:
    """Replay production traffic from files through the whole loop and print its timeline."""
    from mloop.loop import replay as run_replay

    with _progress(not as_json and console.is_terminal) as progress:
        result = run_replay(
            folder, label_delay=label_delay, policy=policy, model=model, progress=progress
        )
    if as_json:
        print_json(result.to_dict())
    else:
        render_timeline(result)


def register(app: typer.Typer) -> None:
    """Add ``loop`` (template, scenario, replay) to the root app."""
    loop_app.command("template")(template)
    loop_app.command("scenario")(scenario)
    loop_app.command("replay")(replay)
    app.add_typer(loop_app, name="loop")
