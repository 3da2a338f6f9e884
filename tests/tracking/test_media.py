"""Rich logging: images, figures, tables and histograms stored as artifacts with an index entry,
from ``run.log_*``, the module functions and ``mloop.log({...})``; bad input refused with what was
received; offline, everything is spooled and replayed."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mloop
from _fresh_python import run_fresh
from mloop.artifacts import BlobStore
from mloop.config import Settings
from mloop.errors import InvalidInputError, MloopError
from mloop.store import MediaItem, open_store
from mloop.tracking import Histogram, Image, Table, replay_spool

PIL = pytest.importorskip("PIL.Image", reason="Pillow decodes what the tests store")


def _bytes(settings: Settings, run: Any, item: MediaItem) -> bytes:
    entry = run.store.get_artifact(run.id, item.path)
    with BlobStore(settings.artifact_uri).open(entry.sha256) as f:
        return f.read()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(PIL.open(io.BytesIO(data)))


def _start(settings: Settings) -> Any:
    return mloop.start_run(project="media", settings=settings, system_metrics=False)


def test_images_of_every_accepted_form(settings: Settings, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    floats = rng.random((6, 5))
    png_file, jpg_file = tmp_path / "a.png", tmp_path / "b.jpg"
    PIL.fromarray(rgb).save(png_file)
    PIL.fromarray(rgb).save(jpg_file, quality=90)
    with _start(settings) as run:
        a = run.log_image(rgb, "samples")
        b = run.log_image(floats, "samples")
        c = run.log_image(PIL.fromarray(rgb).convert("RGBA"), "samples", step=10)
        d = run.log_image(png_file, "files")
        e = run.log_image(str(jpg_file), "files")
        run.flush()
        assert (a.step, b.step, c.step, d.step, e.step) == (0, 1, 10, 0, 1)
        assert a.meta == {"width": 20, "height": 12, "channels": 3, "format": "png"}
        assert np.array_equal(_pixels(_bytes(settings, run, a)), rgb)
        assert np.array_equal(
            _pixels(_bytes(settings, run, b)), np.rint(floats * 255).astype(np.uint8)
        )
        assert c.meta["channels"] == 4 and _pixels(_bytes(settings, run, c))[..., :3].tolist() == (
            rgb.tolist()
        )
        assert _bytes(settings, run, d) == png_file.read_bytes()  # a file is stored as it is
        assert _bytes(settings, run, e) == jpg_file.read_bytes()
        assert (e.meta["width"], e.meta["height"], e.meta["format"]) == (20, 12, "jpeg")
        listed = run.store.list_media(run.id)
        assert [(m.key, m.step, m.kind) for m in listed] == [
            ("files", 0, "image"),
            ("files", 1, "image"),
            ("samples", 0, "image"),
            ("samples", 1, "image"),
            ("samples", 10, "image"),
        ]
        # The bytes are ordinary artifacts of the run (previews, downloads and gc see them).
        assert {x.path for x in listed} <= {x.path for x in run.store.list_artifacts(run.id)}
        # After step 10, the key goes on from there.
        assert run.log_image(rgb, "samples").step == 11


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.full((4, 4), 1.5), r"`image` must hold floats in \[0, 1\].*got values in \[1\.5, 1\.5\]"),
        (np.array([[0.1, np.nan]]), "with NaN or inf"),
        (np.zeros((4, 4, 5), np.uint8), r"`image` must be an array of shape HxW.*got shape \(4, 4, 5\)"),
        (np.zeros((3, 4, 4, 3)), r"got shape \(3, 4, 4, 3\)"),
        (np.zeros((0, 4)), "at least one pixel"),
        (np.full((2, 2), 300), r"integers in \[0, 255\].*got int64 values in \[300, 300\]"),
        (np.zeros((2, 2), complex), "got dtype complex128"),
        (object(), "`image` must be a numpy array .*got object"),
        ("no/such/file.png", "`image` must be a readable PNG or JPEG file; got 'no/such/file.png'"),
    ],
)  # fmt: skip
def test_bad_images_are_refused(settings: Settings, image: Any, message: str) -> None:
    with _start(settings) as run:
        with pytest.raises(InvalidInputError, match=message):
            run.log_image(image, "x")
        run.flush()
        assert run.store.list_media(run.id) == [] and run.store.list_artifacts(run.id) == []


def test_bad_keys_steps_and_files(settings: Settings, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    img = np.zeros((2, 2), np.uint8)
    with _start(settings) as run:
        with pytest.raises(InvalidInputError, match="`image` must be a PNG or JPEG file"):
            run.log_image(text, "x")
        cut = tmp_path / "cut.jpg"
        cut.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")  # a JPEG that stops in its header
        with pytest.raises(InvalidInputError, match="has no readable frame header"):
            run.log_image(cut, "x")
        short = tmp_path / "short.png"
        short.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
        with pytest.raises(InvalidInputError, match="not a PNG"):
            run.log_image(short, "x")
        with pytest.raises(InvalidInputError, match="media key must be a non-empty string"):
            run.log_image(img, "")
        with pytest.raises(InvalidInputError, match=r"`step` must be an int; got float 1\.5"):
            run.log_image(img, "x", step=1.5)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match=r"`bins` must be an int in \[1, 512\]; got 0"):
            run.log_histogram([1.0, 2.0], "h", bins=0)
        with pytest.raises(InvalidInputError, match="at least one finite number; got 2 values"):
            run.log_histogram([np.nan, np.inf], "h")
        with pytest.raises(InvalidInputError, match="`values` must be numbers"):
            run.log_histogram(["a", "b"], "h")
        with pytest.raises(InvalidInputError, match=r"`frame` must be a table .*got int"):
            run.log_table(42, "t")
        with pytest.raises(InvalidInputError, match=r"`fig` must be a matplotlib Figure .*got"):
            run.log_figure(img, "f")
    with pytest.raises(MloopError, match="is finished"):
        run.log_image(img, "x")


def test_png_encoder_round_trips_through_pillow() -> None:
    from mloop.tracking import encode_png

    rng = np.random.default_rng(1)
    for shape in [(1, 1), (7, 13), (9, 4, 2), (16, 11, 3), (5, 8, 4)]:
        pixels = rng.integers(0, 256, shape, dtype=np.uint8)
        data = encode_png(pixels)
        decoded = PIL.open(io.BytesIO(data))
        decoded.load()  # checks every chunk's CRC and the zlib stream
        assert np.array_equal(np.asarray(decoded), pixels), shape
    smooth = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    assert len(encode_png(smooth)) < 2_000  # the Up filter makes identical rows nearly free
    with pytest.raises(InvalidInputError, match="`pixels` must be a uint8 array"):
        encode_png(np.zeros((2, 2)))


def test_without_pillow_images_are_written_by_the_zlib_encoder(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mloop.tracking import encode_png

    rgba = np.random.default_rng(2).integers(0, 256, (10, 6, 4), dtype=np.uint8)
    with _start(settings) as run:
        monkeypatch.setitem(__import__("sys").modules, "PIL", None)  # `import PIL` now fails
        item = run.log_image(rgba, "x")
        monkeypatch.undo()
        run.flush()
        data = _bytes(settings, run, item)
    assert data == encode_png(rgba)
    assert np.array_equal(_pixels(data), rgba)


def test_histograms_are_counted_client_side(settings: Settings) -> None:
    values = np.random.default_rng(3).normal(size=2_000_000)
    values[:5] = np.nan
    with _start(settings) as run:
        item = run.log_histogram(values, "weights", bins=32)
        run.flush()
        stored = _bytes(settings, run, item)
        entry = run.store.get_artifact(run.id, item.path)
    counts, edges = np.histogram(values[5:], bins=32)
    assert item.kind == "histogram" and item.meta["counts"] == counts.tolist()
    assert np.allclose(item.meta["edges"], edges, rtol=0, atol=0)
    assert (item.meta["total"], item.meta["nonfinite"]) == (len(values) - 5, 5)
    assert json.loads(stored) == item.meta and entry.size < 2_000  # 16 MB of values -> ~1 KB


def test_tables_are_stored_as_parquet(settings: Settings) -> None:
    import pandas as pd
    import polars as pl

    frame = pd.DataFrame({"id": [3, 1, 2], "label": ["c", "a", "b"], "p": [0.3, 0.1, 0.2]})
    with _start(settings) as run:
        a = run.log_table(frame, "preds")
        b = run.log_table(pl.from_pandas(frame), "preds")
        c = run.log_table(pa.table({"x": [1.5]}), "other", step=4)
        run.flush()
        back = pq.read_table(io.BytesIO(_bytes(settings, run, a)))
        assert back.to_pandas().equals(frame)
        assert pq.read_table(io.BytesIO(_bytes(settings, run, b))).column("label").to_pylist() == [
            "c",
            "a",
            "b",
        ]
    assert a.meta == {"rows": 3, "n_columns": 3, "columns": ["id", "label", "p"]}
    assert (a.step, b.step, c.step, c.path.endswith(".parquet")) == (0, 1, 4, True)


def test_matplotlib_figures_become_pngs(settings: Settings) -> None:
    matplotlib = pytest.importorskip("matplotlib", reason="needs matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3), dpi=50)
    ax.plot([0, 1, 2], [2, 0, 1])
    with _start(settings) as run:
        item = run.log_figure(fig, "curves", step=3)
        run.flush()
        data = _bytes(settings, run, item)
    plt.close(fig)
    img = PIL.open(io.BytesIO(data))
    assert item.kind == "figure" and item.meta["source"] == "matplotlib"
    assert img.size == (item.meta["width"], item.meta["height"]) and 100 < img.size[0] <= 200


class _PlotlyLike:
    """Shaped like plotly's Figure (its class lives in a ``plotly.`` module)."""

    data = ({"type": "scatter"},)

    def to_json(self) -> str:
        return '{"data": [{"type": "scatter", "y": [1, 2]}], "layout": {"title": {"text": "t"}}}'


_PlotlyLike.__module__ = "plotly.graph_objs._figure"
_PlotlyLike.__name__ = "Figure"


def test_plotly_figures_are_kept_as_their_json(settings: Settings) -> None:
    with _start(settings) as run:
        item = run.log({"p": _PlotlyLike()}, step=2)
        run.flush()
        (got,) = run.store.list_media(run.id)
        data = _bytes(settings, run, got)
    assert item is None and (got.kind, got.step, got.meta) == (
        "figure",
        2,
        {"source": "plotly", "traces": 1},
    )
    assert got.path.endswith(".plotly.json")
    assert json.loads(data) == json.loads(_PlotlyLike().to_json())


def test_a_real_plotly_figure_round_trips_without_kaleido(settings: Settings) -> None:
    go = pytest.importorskip("plotly.graph_objects", reason="plotly is in the dev extra")
    import plotly.io as pio

    fig = go.Figure([go.Scatter(x=[1, 2, 3], y=[3, 1, 2]), go.Bar(x=[1, 2], y=[4, 5])])
    with _start(settings) as run:
        item = run.log_figure(fig, "plotly")
        run.flush()
        data = _bytes(settings, run, item)
    back = pio.from_json(data.decode())
    assert [t.type for t in back.data] == ["scatter", "bar"]
    assert list(back.data[0].y) == [3, 1, 2] and item.meta == {"source": "plotly", "traces": 2}


def test_wandb_style_log_takes_media_beside_scalars(settings: Settings) -> None:
    import pandas as pd

    img = np.zeros((4, 4, 3), np.uint8)
    with _start(settings) as run:
        mloop.log({"loss": 0.5, "sample": mloop.Image(img), "w": Histogram([1.0, 2.0])})
        mloop.log({"loss": 0.25, "sample": Image(img)}, step=7)
        mloop.log({"preds": Table(pd.DataFrame({"a": [1]}))}, step=7)  # media only: no metric
        with pytest.raises(InvalidInputError, match="`image` must hold floats"):
            mloop.log({"loss": 9.0, "sample": Image(np.full((2, 2), 2.0))}, step=8)
        with pytest.raises(InvalidInputError):
            mloop.log({"loss": 9.0, "bad": "text"}, step=9)
        mloop.log_image(img, "direct")
        mloop.log_histogram([0.0, 1.0, 1.0], "direct-h", bins=2)
        mloop.log_table({"a": [1, 2]}, "direct-t")
        run.flush()
        history = run.store.get_metric_history(run.id, "loss")
        media = run.store.list_media(run.id)
    # Refused calls buffered nothing: the loss has exactly the two accepted points.
    assert history.step.tolist() == [0, 7] and history.value.tolist() == [0.5, 0.25]
    assert [(m.key, m.step, m.kind) for m in media] == [
        ("direct", 0, "image"),
        ("direct-h", 0, "histogram"),
        ("direct-t", 0, "table"),
        ("preds", 7, "table"),
        ("sample", 0, "image"),
        ("sample", 7, "image"),
        ("w", 0, "histogram"),
    ]
    assert media[1].meta["counts"] == [1, 2]


def test_offline_media_are_spooled_and_replayed_once(tmp_path: Path) -> None:
    offline = Settings.from_env({"MLOOP_MODE": "offline"}, home=tmp_path / "h")
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with mloop.start_run(project="off", settings=offline, system_metrics=False) as run:
        run.log({"loss": 1.0, "img": Image(img)})
        run.log_histogram([1.0, 2.0, 3.0], "h", step=5)
    assert not (tmp_path / "h" / "mloop.db").exists()
    copy = tmp_path / "copy"
    shutil.copytree(offline.spool_dir, copy)
    online = Settings.from_env({}, home=tmp_path / "h")
    store = open_store(online, cached=False)
    try:
        assert replay_spool(store, online.spool_dir).failed == 0
        media = store.list_media(run.id)
        assert [(m.key, m.step, m.kind) for m in media] == [
            ("h", 5, "histogram"),
            ("img", 0, "image"),
        ]
        entry = store.get_artifact(run.id, media[1].path)
        with BlobStore(online.artifact_uri).open(entry.sha256) as f:
            assert np.array_equal(_pixels(f.read()), img)
        again = replay_spool(store, copy)
        assert again.failed == 0 and store.list_media(run.id) == media
    finally:
        store.close()


def test_logging_floats_loads_no_imaging_or_frame_library(tmp_path: Path) -> None:
    code = (
        f"import os; os.environ['MLOOP_HOME'] = {str(tmp_path / 'home')!r}\n"
        "import sys, mloop\n"
        "with mloop.start_run(project='p', system_metrics=False):\n"
        "    for i in range(10):\n"
        "        mloop.log({'loss': 1.0 / (i + 1), 'epoch': i})\n"
        "heavy = ('PIL', 'matplotlib', 'pandas', 'polars', 'plotly')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    proc = run_fresh(code, tmp_path)
    assert proc.stderr.strip().splitlines()[-1] == "[]"
