"""``mloop predict``: batch scoring of a file with a registered model, in bounded memory."""

from __future__ import annotations

from typing import Annotated

import typer

from mloop.cli._common import console, print_json, settings


def predict(
    model_uri: Annotated[
        str,
        typer.Argument(
            metavar="MODEL_URI", help="models:/NAME@ALIAS, models:/NAME/VERSION or runs:/ID/PATH."
        ),
    ],
    input: Annotated[
        str,
        typer.Option(
            "--input",
            "-i",
            help="Rows to score: .parquet (or a folder of them), .csv or .tsv (maybe .gz/.zst); "
            "a path or URL.",
        ),
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Where to write: .parquet, .pq or .csv.")
    ],
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", "-b", help="Rows predicted at once (memory grows with it)."),
    ] = 100_000,
    method: Annotated[
        str | None,
        typer.Option("--method", "-m", help="Model method, e.g. predict_proba (default predict)."),
    ] = None,
    keep: Annotated[
        list[str] | None,
        typer.Option(
            "--keep",
            "-k",
            help="Input column to copy to the output before the predictions, e.g. an id "
            "(repeatable, or comma-separated).",
        ),
    ] = None,
    columns_out: Annotated[
        str,
        typer.Option(
            "--columns-out",
            help="Name of the prediction column (NAME_0, NAME_1... for several per row).",
        ),
    ] = "prediction",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Score every row of INPUT with MODEL_URI and write the predictions to OUTPUT.

    The input is read and predicted in batches of --batch-size rows, each validated against the
    model's signature; OUTPUT appears only when every batch succeeded.
    """
    from mloop.registry import Registry
    from mloop.serving import predict_file
    from mloop.store import open_store

    s = settings()
    registry = Registry(settings=s, store=open_store(s, create=False))
    kept = [c.strip() for item in keep or () for c in item.split(",") if c.strip()]
    stats = predict_file(
        model_uri,
        input,
        output,
        batch_size=batch_size,
        method=method,
        keep=kept,
        columns_out=columns_out,
        registry=registry,
    )
    if as_json:
        print_json(
            {
                "model": stats.model,
                "input": stats.input,
                "output": stats.output,
                "rows": stats.rows,
                "batches": stats.batches,
                "columns": list(stats.columns),
                "seconds": stats.seconds,
            }
        )
        return
    console.print(
        f"wrote {stats.rows:,} predictions ({stats.batches} batch"
        f"{'' if stats.batches == 1 else 'es'}; columns {', '.join(stats.columns)}) to "
        f"{stats.output} in {stats.seconds:.2f} s ({stats.rows_per_second:,.0f} rows/s)"
    )


def register(app: typer.Typer) -> None:
    """Add ``predict`` to the root app."""
    app.command("predict")(predict)
