"""Artifact path validation and local file collection."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mloop.artifacts import collect_files, validate_artifact_path
from mloop.errors import InvalidInputError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("model.pkl", "model.pkl"),
        ("a/b/c.txt", "a/b/c.txt"),
        ("./a//b/./c/", "a/b/c"),
        ("dir.with..dots/x..y", "dir.with..dots/x..y"),
        ("..hidden", "..hidden"),
        ("ünïcode/データ.csv", "ünïcode/データ.csv"),
        ("a b/c:d", "a b/c:d"),
    ],
)
def test_valid_paths_are_normalized(raw: str, expected: str) -> None:
    assert validate_artifact_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("", "non-empty"),
        (".", "name a file"),
        ("./", "name a file"),
        ("/", "relative, not absolute"),
        ("/etc/passwd", "relative, not absolute"),
        ("//server/share/x", "relative, not absolute"),
        ("..", "'..' segments"),
        ("../x", "'..' segments"),
        ("a/../b", "'..' segments"),
        ("a/..", "'..' segments"),
        ("a/b/../../..", "'..' segments"),
        ("C:/Windows/x", "Windows drive"),
        ("c:x", "Windows drive"),
        ("C:\\Windows\\x", "backslashes"),
        ("\\\\server\\share\\x", "backslashes"),
        ("a\\b", "backslashes"),
        ("..\\x", "backslashes"),
        ("a\x00b", "NUL"),
        ("a\nb", "control characters"),
        ("a\tb", "control characters"),
        ("x" * 256, "at most 255 bytes"),
    ],
)
def test_bad_paths_rejected_with_sklearn_style_message(raw: str, rule: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_artifact_path(raw)
    msg = info.value.message
    assert msg.startswith("`artifact_path` must ")
    assert rule in msg
    assert msg.endswith(f"; got {raw!r}.")
    assert info.value.http_status == 400


@pytest.mark.parametrize("raw", [None, 1, b"a/b", Path("a")])
def test_non_str_rejected(raw: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"must be a str; got "):
        validate_artifact_path(raw)


def _tree(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("a")
    (root / "sub" / "b.txt").write_text("b")
    (root / "sub" / "deeper" / "c.bin").write_bytes(b"c")


def test_collect_directory_contents_under_artifact_path(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    got = collect_files(tmp_path / "d", artifact_path="out/")
    assert [rel for rel, _ in got] == ["out/a.txt", "out/sub/b.txt", "out/sub/deeper/c.bin"]
    assert got[2][1] == tmp_path / "d" / "sub" / "deeper" / "c.bin"
    assert collect_files(tmp_path / "d")[0][0] == "a.txt"


def test_collect_single_file_keeps_its_name(tmp_path: Path) -> None:
    f = tmp_path / "model.pkl"
    f.write_bytes(b"m")
    assert collect_files(f) == [("model.pkl", f)]
    assert collect_files(str(f), "models/v1") == [("models/v1/model.pkl", f)]


def test_collect_rejects_bad_artifact_path_and_missing(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidInputError, match=r"'\.\.' segments"):
        collect_files(tmp_path / "f", "../up")
    with pytest.raises(InvalidInputError, match="existing file or directory"):
        collect_files(tmp_path / "missing")


def test_symlinks_followed_to_files_and_dirs(tmp_path: Path) -> None:
    _tree(tmp_path / "real")
    d = tmp_path / "d"
    d.mkdir()
    (d / "link.txt").symlink_to(tmp_path / "real" / "a.txt")
    (d / "linkdir").symlink_to(tmp_path / "real" / "sub", target_is_directory=True)
    got = dict(collect_files(d))
    assert sorted(got) == ["link.txt", "linkdir/b.txt", "linkdir/deeper/c.bin"]
    assert got["link.txt"].read_text() == "a"


def test_symlink_loop_refused(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    (tmp_path / "d" / "sub" / "back").symlink_to(tmp_path / "d", target_is_directory=True)
    with pytest.raises(InvalidInputError, match="loop") as info:
        collect_files(tmp_path / "d")
    assert "back" in info.value.message


def test_broken_symlink_refused_not_skipped(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    (tmp_path / "d" / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidInputError, match="broken symbolic link"):
        collect_files(tmp_path / "d")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
def test_special_file_refused(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    os.mkfifo(tmp_path / "d" / "pipe")
    with pytest.raises(InvalidInputError, match="special file"):
        collect_files(tmp_path / "d")


def test_file_name_that_is_not_a_valid_artifact_path_refused(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    (tmp_path / "d" / "back\\slash.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="backslash") as info:
        collect_files(tmp_path / "d")
    assert "Rename it" in info.value.message
