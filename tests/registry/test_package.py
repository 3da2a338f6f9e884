"""Package layout, manifest, hash verification, version warnings, input examples, predict checks."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
import sklearn
from sklearn.linear_model import LinearRegression, LogisticRegression

from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from mloop.registry._package import (
    MANIFEST_NAME,
    FrameworkVersionWarning,
    ModelIntegrityError,
    ModelManifest,
    PackagedModel,
    load_model_dir,
    read_manifest,
    save_model,
    sha256_file,
)
from mloop.registry._signature import ExtraColumnsWarning
from mloop.registry.flavors.sklearn import SklearnFlavor


@pytest.fixture
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame({"a": rng.normal(size=100), "b": rng.integers(0, 5, 100)})
    return X, (X["a"] + X["b"] > 2).astype(int)


@pytest.fixture
def packaged(tmp_path: Path, data: Any) -> Path:
    X, y = data
    save_model(
        LogisticRegression().fit(X, y),
        tmp_path / "m",
        input_example=X[:5],
        metadata={"owner": "ds-team"},
    )
    return tmp_path / "m"


def _edit_manifest(path: Path, **changes: Any) -> None:
    data = json.loads((path / MANIFEST_NAME).read_text())
    data.update(changes)
    (path / MANIFEST_NAME).write_text(json.dumps(data))


# ----------------------------------------------------------------------------------------- manifest


def test_manifest_records_everything(packaged: Path) -> None:
    raw = json.loads((packaged / MANIFEST_NAME).read_text())
    assert set(raw) >= {
        "format_version",
        "flavor",
        "flavor_options",
        "framework",
        "framework_version",
        "python_version",
        "mloop_version",
        "signature",
        "input_example",
        "requirements",
        "files",
        "created_ms",
        "trusted_only",
        "metadata",
    }
    m = read_manifest(packaged)
    assert m.flavor == "sklearn" and m.framework == "scikit-learn"
    assert m.framework_version == sklearn.__version__
    assert f"scikit-learn=={sklearn.__version__}" in m.requirements
    assert f"numpy=={np.__version__}" in m.requirements
    assert (packaged / "requirements.txt").read_text().splitlines() == list(m.requirements)
    assert m.metadata == {"owner": "ds-team"} and m.trusted_only is False
    assert m.input_example == {"format": "pandas", "path": "input_example.parquet", "num_rows": 5}
    assert MANIFEST_NAME not in m.files
    on_disk = {
        p.relative_to(packaged).as_posix()
        for p in packaged.rglob("*")
        if p.is_file() and p.name != MANIFEST_NAME
    }
    assert set(m.files) == on_disk
    for rel, digest in m.files.items():
        assert hashlib.sha256((packaged / rel).read_bytes()).hexdigest() == digest
    assert ModelManifest.from_dict(m.to_dict()) == m


def test_newer_format_version_is_refused(packaged: Path) -> None:
    _edit_manifest(packaged, format_version=99)
    with pytest.raises(InvalidInputError, match="format_version 99"):
        load_model_dir(packaged)


def test_no_manifest_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=MANIFEST_NAME):
        load_model_dir(tmp_path)


def test_save_refuses_a_non_empty_directory_and_accepts_an_empty_one(
    tmp_path: Path, data: Any
) -> None:
    X, y = data
    model = LinearRegression().fit(X, y)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(AlreadyExistsError, match="not empty"):
        save_model(model, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    save_model(model, tmp_path / "empty")
    assert load_model_dir(tmp_path / "empty").flavor == "sklearn"


def test_failed_save_leaves_nothing(tmp_path: Path, data: Any) -> None:
    X, y = data
    with pytest.raises(InvalidInputError, match="failed to predict on input_example"):
        save_model(LinearRegression().fit(X, y), tmp_path / "m", input_example=X[["a"]])
    with pytest.raises(InvalidInputError, match="JSON-serializable"):
        save_model(LinearRegression().fit(X, y), tmp_path / "m", metadata={"when": object()})
    with pytest.raises(InvalidInputError, match="does not exist"):
        save_model(LinearRegression().fit(X, y), tmp_path / "m", code_paths=[tmp_path / "nope"])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------- integrity


def test_tampered_byte_is_refused_before_loading(
    packaged: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[Path] = []
    original = SklearnFlavor.load
    monkeypatch.setattr(
        SklearnFlavor, "load", lambda self, p, o: loads.append(p) or original(self, p, o)
    )
    file = packaged / "model.skops"
    expected = read_manifest(packaged).files["model.skops"]
    good = file.read_bytes()
    blob = bytearray(good)
    blob[len(blob) // 2] ^= 0x01
    file.write_bytes(bytes(blob))
    actual = hashlib.sha256(bytes(blob)).hexdigest()
    with pytest.raises(ModelIntegrityError) as info:
        load_model_dir(packaged)
    message = str(info.value)
    assert "'model.skops'" in message and expected in message and actual in message
    assert info.value.details == {"file": "model.skops", "expected": expected, "actual": actual}
    assert loads == []  # refused before the flavor read a byte
    file.write_bytes(good)
    load_model_dir(packaged, verify=False)  # the caller may skip it (e.g. verified on download)
    assert loads == [packaged]


def test_missing_and_added_files_are_refused(packaged: Path) -> None:
    (packaged / "extra.py").write_text("import os\n")
    with pytest.raises(ModelIntegrityError, match=r"'extra\.py' .* not listed"):
        load_model_dir(packaged)
    (packaged / "extra.py").unlink()
    (packaged / "input_example.parquet").unlink()
    with pytest.raises(ModelIntegrityError, match=r"'input_example\.parquet' is missing"):
        load_model_dir(packaged)


def test_manifest_listing_a_path_outside_the_package_is_refused(packaged: Path) -> None:
    manifest = json.loads((packaged / MANIFEST_NAME).read_text())
    manifest["files"]["../outside"] = "0" * 64
    (packaged / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="outside the package"):
        load_model_dir(packaged)


def test_manifest_pointing_outside_the_verified_files_is_refused(tmp_path: Path, data: Any) -> None:
    X, y = data
    save_model(LogisticRegression().fit(X, y), tmp_path / "m", input_example=X[:2])
    _edit_manifest(tmp_path / "m", code_paths=["../elsewhere"])
    with pytest.raises(ModelIntegrityError, match=r"code path '\.\./elsewhere'"):
        load_model_dir(tmp_path / "m")


def test_manifest_hash_recorded_elsewhere_detects_an_edited_manifest(packaged: Path) -> None:
    digest = sha256_file(packaged / MANIFEST_NAME)
    assert load_model_dir(packaged, manifest_sha256=digest).flavor == "sklearn"
    _edit_manifest(packaged, trusted_only=True)
    with pytest.raises(ModelIntegrityError, match=f"expected sha256 {digest}"):
        load_model_dir(packaged, manifest_sha256=digest)


# ------------------------------------------------------------------------------------------ versions


def test_framework_version_mismatch_warns(packaged: Path) -> None:
    _edit_manifest(packaged, framework_version="0.0.1")
    with pytest.warns(FrameworkVersionWarning, match=r"scikit-learn==0\.0\.1 but .* installed"):
        model = load_model_dir(packaged)
    assert model.raw is not None  # a warning, not a refusal


def test_local_build_tag_is_not_a_version_change(packaged: Path) -> None:
    _edit_manifest(packaged, framework_version=f"{sklearn.__version__}+cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model_dir(packaged)


def test_pickled_model_warns_on_another_python(tmp_path: Path, data: Any) -> None:
    X, _ = data
    save_model(lambda d: np.zeros(len(d)), tmp_path / "m", input_example=X[:2])
    _edit_manifest(tmp_path / "m", python_version="3.99.0")
    with pytest.warns(FrameworkVersionWarning, match="Python 3.99.0"):
        load_model_dir(tmp_path / "m")


# ----------------------------------------------------------------------------------- input examples


@pytest.mark.parametrize(
    "example",
    [
        pd.DataFrame({"a": [1.0, np.nan], "s": ["x", None], "c": pd.Categorical(["u", "v"])}),
        pl.DataFrame({"a": [1.0, None], "s": ["x", "y"]}),
        np.arange(6.0).reshape(3, 2),
        {"a": np.array([1.0, 2.0]), "k": np.array([1, 2])},
        {"img": np.zeros((2, 2, 2)), "meta": np.ones((2, 3))},
    ],
    ids=["pandas", "polars", "numpy", "dict", "tensors"],
)
def test_input_example_round_trips_in_its_own_form(tmp_path: Path, example: Any) -> None:
    save_model(
        lambda d: np.zeros(2), tmp_path / "m", input_example=example, flavor="python_function"
    )
    back = load_model_dir(tmp_path / "m").input_example
    assert type(back) is type(example)
    if isinstance(example, pd.DataFrame):
        pd.testing.assert_frame_equal(back, example)
    elif isinstance(example, pl.DataFrame):
        assert back.equals(example)
    elif isinstance(example, dict):
        assert set(back) == set(example)
        for key in example:
            assert np.array_equal(back[key], example[key])
    else:
        assert np.array_equal(back, example)


# ------------------------------------------------------------------------------------------ predict


def test_predict_validates_against_the_signature(packaged: Path, data: Any) -> None:
    X, _ = data
    model = load_model_dir(packaged)
    assert isinstance(model, PackagedModel) and model.signature is not None
    with pytest.raises(InvalidInputError, match=r"column 'b' is missing \(expected int64\)"):
        model.predict(X[["a"]])
    with pytest.raises(InvalidInputError, match="'a' is not nullable but 1 of 3 rows"):
        model.predict(X[:3].assign(a=[np.nan, 1.0, 2.0]))
    expected = model.raw.predict(X)
    # polars in, reordered, int32 for int64: validated, cast and fed as pandas (as trained)
    polars_in = pl.from_pandas(X[["b", "a"]]).with_columns(pl.col("b").cast(pl.Int32))
    assert np.array_equal(model.predict(polars_in), expected)
    with pytest.warns(ExtraColumnsWarning, match="'zz'"):
        assert np.array_equal(model.predict(X.assign(zz=1)), expected)
    with pytest.raises(InvalidInputError, match="strict mode"):
        model.predict(X.assign(zz=1), strict=True)
    strict = load_model_dir(packaged, strict=True)
    with pytest.raises(InvalidInputError, match="strict mode"):
        strict.predict(X.assign(zz=1))


def test_predict_proba_through_the_package(packaged: Path, data: Any) -> None:
    X, _ = data
    model = load_model_dir(packaged)
    assert np.array_equal(model.predict(X, method="predict_proba"), model.raw.predict_proba(X))


def test_no_example_means_no_signature_and_no_validation(tmp_path: Path, data: Any) -> None:
    X, y = data
    save_model(LinearRegression().fit(X.to_numpy(), y), tmp_path / "m")
    model = load_model_dir(tmp_path / "m")
    assert model.signature is None and model.input_example is None
    assert model.predict(X.to_numpy()).shape == (100,)
