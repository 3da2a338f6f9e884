"""Profiling at scale: CSV read in batches, partitioned Parquet profiled in parallel (processes,
Ray, S3) and merged, and `mloop profile --executor` with its progress bar."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from _arrow_peaks import profile_peaks, wide_table
from _s3 import BUCKET, s3_server  # noqa: F401  (a fixture)
from _services import service_missing
from mloop import monitoring as mon
from mloop import tables
from mloop.cli import get_app
from mloop.errors import InvalidInputError
from mloop.monitoring import _profile
from mloop.monitoring._profile import CategoricalProfile, NumericProfile


def _table(n: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = np.array([f"v{i}" for i in range(30)])
    return pa.table(
        {
            "x": rng.normal(shift, 1, n),
            "y": rng.lognormal(0, 1, n),
            "k": rng.integers(0, 10, n),
            "c": labels[np.minimum(rng.geometric(0.2, n) - 1, 29)],
        }
    )


def _write_parts(folder: Path, parts: int, rows: int, seed: int = 0) -> pa.Table:
    folder.mkdir(parents=True, exist_ok=True)
    pieces = [_table(rows, seed + i) for i in range(parts)]
    for i, piece in enumerate(pieces):
        pq.write_table(piece, folder / f"part-{i:02d}.parquet", row_group_size=rows // 2)
    return pa.concat_tables(pieces)


def _assert_same_profile(got: mon.Profile, want: mon.Profile, data: pa.Table) -> None:
    """Exact columns identical; sketched quantiles within the KLL rank error of the data."""
    from datasketches import kll_doubles_sketch

    assert got.n_rows == want.n_rows == data.num_rows
    assert set(got.columns) == set(want.columns)
    for name, a in got.columns.items():
        b = want.columns[name]
        assert (a.kind, a.n, a.n_missing, a.is_exact) == (b.kind, b.n, b.n_missing, b.is_exact)
        if isinstance(a, CategoricalProfile):
            assert isinstance(b, CategoricalProfile)
            assert a.categories == b.categories
            assert np.array_equal(a.counts, b.counts)
            continue
        assert isinstance(a, NumericProfile) and isinstance(b, NumericProfile)
        assert (a.min, a.max) == (b.min, b.max)
        assert a.mean == pytest.approx(b.mean, rel=1e-12)
        if a.is_exact:
            assert np.array_equal(a.values, b.values)
            assert np.array_equal(a.weights, b.weights)  # type: ignore[arg-type]
            continue
        eps = kll_doubles_sketch.get_normalized_rank_error(got.sketch_k, False)
        values = np.sort(data.column(name).to_numpy())
        for profile in (a, b):
            for q in np.linspace(0.01, 0.99, 25):
                rank = np.searchsorted(values, profile.sketch.get_quantile(q)) / values.size
                assert abs(rank - q) <= eps + 1.0 / values.size, (name, q, rank)


def test_a_folder_profiled_on_processes_equals_the_single_process_profile(
    tmp_path: Path,
) -> None:
    data = _write_parts(tmp_path / "parts", parts=4, rows=15_000)
    single = mon.Profile.from_data(tmp_path / "parts")
    assert not single.columns["x"].is_exact and single.columns["k"].is_exact  # both kinds seen
    seen: list[int] = []
    merged = mon.profile_partitions(
        tmp_path / "parts", executor="process", workers=2, progress=seen.append
    )
    _assert_same_profile(merged, single, data)
    assert sorted(seen) == [15_000] * 4
    local = mon.profile_partitions(tmp_path / "parts", executor="local")
    _assert_same_profile(local, merged, data)


def test_hive_partition_columns_are_profiled_like_the_whole_folder(tmp_path: Path) -> None:
    for year in (2024, 2025):
        (tmp_path / f"year={year}").mkdir()
        pq.write_table(_table(500, year), tmp_path / f"year={year}" / "part.parquet")
    parts = tables.partitions(tmp_path)
    assert [p.name.rsplit("/", 2)[-2] for p in parts] == ["year=2024", "year=2025"]
    merged = mon.profile_partitions(tmp_path, executor="local")
    single = mon.Profile.from_data(tmp_path)
    year = merged.columns["year"]
    assert isinstance(year, NumericProfile) and year.is_exact
    assert np.array_equal(year.values, single.columns["year"].values)  # type: ignore[union-attr]
    assert merged.columns["year"].n == 1000


def test_partition_errors_are_clear(tmp_path: Path) -> None:
    pcsv.write_csv(_table(10, 0), tmp_path / "t.csv")
    with pytest.raises(InvalidInputError, match="Parquet file or a folder or prefix"):
        mon.profile_partitions(tmp_path / "t.csv")
    _write_parts(tmp_path / "p", parts=2, rows=10)
    with pytest.raises(InvalidInputError, match="`executor` must be one of"):
        mon.profile_partitions(tmp_path / "p", executor="threads")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="`workers` must be an int >= 1"):
        mon.profile_partitions(tmp_path / "p", workers=0)
    with pytest.raises(InvalidInputError, match="`columns`"):
        mon.profile_partitions(tmp_path / "p", columns=["nope"], executor="local")


def test_auto_uses_processes_only_for_several_large_partitions() -> None:
    from mloop.monitoring._profile_parallel import AUTO_MIN_VALUES, choose_executor

    assert choose_executor(8, AUTO_MIN_VALUES, 2) == "process"
    assert choose_executor(8, AUTO_MIN_VALUES - 1, 2) == "local"
    assert choose_executor(1, AUTO_MIN_VALUES * 10, 8) == "local"
    assert choose_executor(8, AUTO_MIN_VALUES * 10, 1) == "local"
    assert choose_executor(8, None, 8) == "local"


def test_a_prefix_on_s3_is_profiled_in_worker_processes(
    tmp_path: Path,
    s3_server: dict[str, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fsspec

    options = s3_server["storage_options"]
    monkeypatch.setitem(fsspec.config.conf, "s3", {"client_kwargs": {}, **options})
    fs = fsspec.filesystem("s3", **options)
    data = _write_parts(tmp_path / "parts", parts=3, rows=4000)
    for path in sorted((tmp_path / "parts").iterdir()):
        fs.put(str(path), f"{BUCKET}/profiles/{path.name}")
    url = f"s3://{BUCKET}/profiles"
    assert tables.count_rows(url) == 12_000
    merged = mon.profile_partitions(url, executor="process", workers=2)
    _assert_same_profile(merged, mon.Profile.from_data(tmp_path / "parts"), data)


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    try:
        import ray
    except ImportError as exc:
        service_missing(f"ray is not importable ({exc}); pip install 'mloop[ray]'")
        raise AssertionError("unreachable") from exc
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_eight_partitions_on_ray_give_the_verdicts_of_one_process(
    tmp_path: Path, ray_cluster: Any
) -> None:
    data = _write_parts(tmp_path / "parts", parts=8, rows=10_000)
    single = mon.Profile.from_data(tmp_path / "parts")
    on_ray = mon.profile_partitions(tmp_path / "parts", executor="ray")
    _assert_same_profile(on_ray, single, data)
    assert ray_cluster.is_initialized()  # a cluster it did not start is left running
    for shift in (0.0, 0.05, 0.3):
        window = _table(20_000, 99, shift=shift)
        want = mon.drift_report(single, window)
        got = mon.drift_report(on_ray, window)
        assert {n: c.drifted for n, c in got.columns.items()} == {
            n: c.drifted for n, c in want.columns.items()
        }
    assert mon.drift_report(on_ray, _table(20_000, 99, shift=0.3)).columns["x"].drifted


def test_csv_is_profiled_in_batches_like_the_whole_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = _table(60_000, 3)
    path = tmp_path / "t.csv"
    pcsv.write_csv(table, path)
    seen: list[int] = []
    monkeypatch.setattr(_profile, "STREAM_ROWS", 20_000)
    streamed = mon.Profile.from_data(path, progress=seen.append)
    assert len(seen) >= 2 and max(seen) <= 20_000 and sum(seen) == 60_000
    _assert_same_profile(streamed, mon.Profile.from_data(tables.read_table(path)), table)
    assert streamed.columns["k"].source == "integer"  # type: ignore[union-attr]


def test_csv_columns_whose_type_changes_after_the_first_block(tmp_path: Path) -> None:
    n = 400_000  # > one 1 MiB block
    ints = [str(i % 97) for i in range(n)]
    for name, last in (("float", "1.5"), ("text", "oops")):
        path = tmp_path / f"{name}.csv"
        path.write_text("a,b\n" + "\n".join(f"{v},{v}" for v in ints) + f"\n{last},1\n")
        streamed = mon.Profile.from_data(path)
        whole = mon.Profile.from_data(tables.read_table(path))
        assert streamed.columns["a"].kind == whole.columns["a"].kind
        assert streamed.columns["a"].n == n + 1
        if name == "float":
            assert streamed.columns["a"].source == "float"  # type: ignore[union-attr]
            assert streamed.columns["a"].max == 96.0  # type: ignore[union-attr]
        else:
            with pytest.raises(tables.TypesChangedError, match="does not fit"):
                list(tables.iter_batches(path, stream_csv=True, batch_rows=1000))


@pytest.mark.no_mutation
def test_profiling_a_csv_file_keeps_arrow_memory_near_one_block(tmp_path: Path) -> None:
    n = 200_000
    table = wide_table(n, 4)
    path = tmp_path / "wide.csv"
    pcsv.write_csv(table, path)  # ~30 MB of text, then its rows three times more: 125 MB
    body = path.read_bytes().split(b"\n", 1)[1]
    with open(path, "ab") as fh:
        for _ in range(3):
            fh.write(body)
    peaks = profile_peaks(path, 4 * n)
    # Arrow's CSV reader reads a few blocks ahead (~35 MB here, whatever the file's size)
    assert peaks["streamed"] < peaks["whole"] / 3, peaks


def test_cli_profile_executor_and_progress_bar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_parts(tmp_path / "parts", parts=3, rows=2000)
    runner = CliRunner()
    app = get_app()
    out = tmp_path / "p.npz"
    plain = runner.invoke(app, ["profile", str(tmp_path / "parts"), "-o", str(out)])
    assert plain.exit_code == 0, plain.output
    assert "profiling" not in plain.output and "wrote" in plain.output  # not a terminal: no bar
    assert mon.Profile.load(out).n_rows == 6000
    as_json = runner.invoke(
        app, ["profile", str(tmp_path / "parts"), "-o", str(out), "--executor", "local", "--json"]
    )
    assert json.loads(as_json.output)["n_rows"] == 6000
    bad = runner.invoke(app, ["profile", str(tmp_path / "parts"), "-o", str(out), "-x"])
    assert bad.exit_code == 2
    bad = runner.invoke(
        app, ["profile", str(tmp_path / "parts"), "-o", str(out), "--executor", "threads"]
    )
    assert bad.exit_code == 2 and "`--executor` must be one of" in bad.output

    from mloop.cli import _monitoring

    screen = io.StringIO()
    tty = Console(file=screen, force_terminal=True, width=100)
    monkeypatch.setattr(_monitoring, "console", tty)
    shown = runner.invoke(
        app, ["profile", str(tmp_path / "parts"), "-o", str(out), "--executor", "local"]
    )
    assert shown.exit_code == 0, shown.output
    assert "profiling" in screen.getvalue() and "6000/6000" in screen.getvalue()
    screen.truncate(0)
    runner.invoke(app, ["profile", str(tmp_path / "parts"), "-o", str(out), "--json"])
    assert "profiling" not in screen.getvalue()  # never in --json output
