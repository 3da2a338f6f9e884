"""A truncated or corrupt input file is reported as such: which file, what is wrong, what to do.

A damaged saved profile must say "the profile is corrupt", never "expected a .parquet file"; a damaged
Parquet/Feather/CSV file must say the file is unreadable, never that its format is unsupported. Every
entry point that takes a reference or current path is covered: ``mloop drift`` (both arguments),
``Profile.load``, ``drift_report``, ``quality_report`` and ``Monitor``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mloop.cli import get_app
from mloop.errors import InvalidInputError
from mloop.monitoring import Monitor, Profile, drift_report, quality_report

N = 400


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, N),
            "plan": rng.choice(["a", "b", "c"], N),
            "score": rng.random(N),
            "id": np.arange(N),
        }
    )


@pytest.fixture
def good(tmp_path: Path) -> dict[str, Path]:
    out = {
        "profile": tmp_path / "ref.profile",
        "parquet": tmp_path / "cur.parquet",
        "feather": tmp_path / "cur.feather",
        "csv": tmp_path / "cur.csv",
    }
    Profile.from_data(_frame(0)).save(out["profile"])
    _frame(1).to_parquet(out["parquet"])
    _frame(1).to_feather(out["feather"])
    _frame(1).to_csv(out["csv"], index=False)
    return out


# 0 bytes, a few bytes, half the file, and all but the last byte.
CUTS: dict[str, Callable[[int], int]] = {
    "empty": lambda n: 0,
    "header": lambda n: 8,
    "half": lambda n: n // 2,
    "last-byte": lambda n: n - 1,
}


def _truncate(src: Path, dest: Path, cut: str) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: CUTS[cut](len(data))])
    return dest


def _flip_middle(src: Path, dest: Path) -> Path:
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])
    dest.write_bytes(bytes(data))
    return dest


def _cli(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(get_app(), [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _assert_corrupt_profile(message: str, path: Path) -> None:
    assert "profile" in message and ("corrupt" in message or "truncated" in message), message
    assert str(path) in message, message
    assert "mloop profile" in message, message  # says how to re-create it
    assert "expected a .parquet" not in message, message


def _assert_unreadable_table(message: str, path: Path) -> None:
    assert str(path) in message, message
    assert "truncated or corrupt" in message or "malformed or truncated" in message, message
    assert "expected a .parquet" not in message, message


# ------------------------------------------------------------------ saved profiles


@pytest.mark.parametrize("cut", list(CUTS))
def test_cli_truncated_profile_as_reference(
    good: dict[str, Path], tmp_path: Path, cut: str
) -> None:
    bad = _truncate(good["profile"], tmp_path / "trunc.profile", cut)
    code, _out, err = _cli("drift", bad, good["parquet"])
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    _assert_corrupt_profile(err, bad)


@pytest.mark.parametrize("cut", ["header", "half", "last-byte"])
def test_truncated_profile_is_recognised_by_content_whatever_its_name(
    good: dict[str, Path], tmp_path: Path, cut: str
) -> None:
    bad = _truncate(good["profile"], tmp_path / "reference.bin", cut)
    code, _out, err = _cli("drift", bad, good["parquet"])
    assert code == 2
    _assert_corrupt_profile(err, bad)


def test_cli_corrupt_profile_with_flipped_bytes(good: dict[str, Path], tmp_path: Path) -> None:
    bad = _flip_middle(good["profile"], tmp_path / "flipped.profile")
    code, _out, err = _cli("drift", bad, good["parquet"])
    assert code == 2
    _assert_corrupt_profile(err, bad)


@pytest.mark.parametrize("cut", list(CUTS))
def test_cli_truncated_profile_as_current(good: dict[str, Path], tmp_path: Path, cut: str) -> None:
    bad = _truncate(good["profile"], tmp_path / "trunc.profile", cut)
    code, _out, err = _cli("drift", good["parquet"], bad)
    assert code == 2
    _assert_corrupt_profile(err, bad)
    code, _out, err = _cli("profile", bad, "-o", tmp_path / "new.profile")
    assert code == 2
    _assert_corrupt_profile(err, bad)


def test_cli_valid_profile_as_current_says_it_can_only_be_the_reference(
    good: dict[str, Path],
) -> None:
    code, _out, err = _cli("drift", good["parquet"], good["profile"])
    assert code == 2
    assert str(good["profile"]) in err and "profile" in err and "reference" in err
    assert "expected a .parquet" not in err


@pytest.mark.parametrize("cut", list(CUTS))
def test_python_entry_points_report_a_truncated_profile(
    good: dict[str, Path], tmp_path: Path, cut: str
) -> None:
    bad = _truncate(good["profile"], tmp_path / "trunc.profile", cut)
    current = _frame(1)
    calls: list[Callable[[], Any]] = [
        lambda: Profile.load(bad),
        lambda: drift_report(str(bad), current),
        lambda: drift_report(bad, current),
        lambda: drift_report(current, bad),
        lambda: quality_report(bad, current),
        lambda: Monitor(str(bad), window_rows=100),
        lambda: Profile.from_data(bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError) as info:
            call()
        _assert_corrupt_profile(info.value.message, bad)


def test_profile_with_missing_entries_or_bad_metadata_is_corrupt(
    good: dict[str, Path], tmp_path: Path
) -> None:
    import zipfile

    src = zipfile.ZipFile(good["profile"])
    names = src.namelist()
    # a column array is gone
    dropped = tmp_path / "dropped.profile"
    with zipfile.ZipFile(dropped, "w") as zf:
        for name in names:
            if name != "c1.counts.npy":
                zf.writestr(name, src.read(name))
    # the metadata is not JSON
    garbled = tmp_path / "garbled.profile"
    with zipfile.ZipFile(garbled, "w") as zf:
        for name in names:
            data = src.read(name)
            if name == "meta.npy":
                data = data[:-40] + b"}" * 40
            zf.writestr(name, data)
    for bad in (dropped, garbled):
        with pytest.raises(InvalidInputError) as info:
            Profile.load(bad)
        _assert_corrupt_profile(info.value.message, bad)


def test_a_zip_that_is_no_profile_is_not_called_corrupt(tmp_path: Path) -> None:
    import zipfile

    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(InvalidInputError, match="not an mloop profile"):
        Profile.load(other)


def test_valid_profile_paths_work_wherever_a_reference_is_taken(good: dict[str, Path]) -> None:
    current = _frame(1)
    from_path = drift_report(str(good["profile"]), current)
    from_object = drift_report(Profile.load(good["profile"]), current)
    assert from_path.to_dict()["columns"] == from_object.to_dict()["columns"]
    assert quality_report(good["profile"], current).n_reference == N
    assert Monitor(good["profile"], window_rows=100).columns == ["age", "plan", "score", "id"]


# ------------------------------------------------------------------ table files


@pytest.mark.parametrize("fmt", ["parquet", "feather"])
@pytest.mark.parametrize("cut", list(CUTS))
def test_truncated_table_file_is_unreadable_not_the_wrong_format(
    good: dict[str, Path], tmp_path: Path, fmt: str, cut: str
) -> None:
    bad = _truncate(good[fmt], tmp_path / f"trunc.{fmt}", cut)
    code, _out, err = _cli("drift", good["profile"], bad)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1
    _assert_unreadable_table(err, bad)
    code, _out, err = _cli("drift", bad, good["parquet"])
    assert code == 2
    _assert_unreadable_table(err, bad)
    with pytest.raises(InvalidInputError) as info:
        drift_report(bad, _frame(1))
    _assert_unreadable_table(info.value.message, bad)
    with pytest.raises(InvalidInputError) as info:
        Monitor(str(bad), window_rows=100)
    _assert_unreadable_table(info.value.message, bad)


def test_csv_cut_in_the_middle_of_a_row_is_unreadable(
    good: dict[str, Path], tmp_path: Path
) -> None:
    text = good["csv"].read_text()
    cut = text.index("\n", len(text) // 2) + 3  # a few characters into a row
    bad = tmp_path / "trunc.csv"
    bad.write_text(text[:cut])
    code, _out, err = _cli("drift", good["profile"], bad)
    assert code == 2
    _assert_unreadable_table(err, bad)
    with pytest.raises(InvalidInputError) as info:
        drift_report(_frame(0), bad)
    _assert_unreadable_table(info.value.message, bad)


def test_a_folder_of_parquet_files_is_one_table_wherever_a_table_is_taken(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for i in range(3):
        rng = np.random.default_rng(i)
        pd.DataFrame({"x": rng.normal(size=400), "y": np.arange(400) % 3}).to_parquet(
            folder / f"part-{i}.parquet"
        )
    cur = pd.DataFrame({"x": np.random.default_rng(9).normal(3, 1, 400), "y": np.arange(400) % 3})
    report = drift_report(folder, cur)
    assert report.n_reference_rows == 1200 and report.columns["x"].drifted
    assert Monitor(folder, window_rows=100) is not None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="no Parquet files"):
        drift_report(empty, cur)
