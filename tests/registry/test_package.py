"""Package layout, manifest, hash verification, version warnings, input examples, predict checks."""

from __future__ import annotations

import json
import platform
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import scipy
import sklearn
from sklearn.linear_model import LinearRegression, LogisticRegression

import mloop
from _blake3 import b3
from mloop.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from mloop.registry import flavors
from mloop.registry._package import (
    MANIFEST_NAME,
    FrameworkVersionWarning,
    ModelIntegrityError,
    ModelManifest,
    PackagedModel,
    _pinned,
    file_digest,
    load_model_dir,
    read_manifest,
    save_model,
)
from mloop.registry._signature import (
    ExtraColumnsWarning,
    ModelSignature,
    ParamSpec,
    Schema,
    TensorSpec,
    infer_signature,
)
from mloop.registry.flavors import Flavor, SavedFlavor
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
        assert b3((packaged / rel).read_bytes()) == digest
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
    actual = b3(bytes(blob))
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


@pytest.mark.parametrize("code_path", ["../elsewhere", "/tmp", "model.skops", ".."])
def test_manifest_pointing_outside_the_verified_files_is_refused(
    tmp_path: Path, data: Any, code_path: str
) -> None:
    X, y = data
    save_model(LogisticRegression().fit(X, y), tmp_path / "m", input_example=X[:2])
    _edit_manifest(tmp_path / "m", code_paths=[code_path])
    with pytest.raises(ModelIntegrityError, match=f"code path {re.escape(repr(code_path))}"):
        load_model_dir(tmp_path / "m")


def test_manifest_hash_recorded_elsewhere_detects_an_edited_manifest(packaged: Path) -> None:
    digest = file_digest(packaged / MANIFEST_NAME)
    assert load_model_dir(packaged, manifest_sha256=digest).flavor == "sklearn"
    _edit_manifest(packaged, trusted_only=True)
    with pytest.raises(ModelIntegrityError, match=f"expected digest {digest}"):
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


# ------------------------------------------------------------------ what save and load hand a flavor


class _Recording(Flavor):
    """A flavor that stores a weight vector and records every call the package makes to it."""

    name = "test_recording"
    framework = "numpy"
    module = "numpy"

    def __init__(self, version: str | None = "1.0") -> None:
        self.version = version
        self.calls: list[tuple[Any, ...]] = []

    def framework_version(self) -> str | None:
        return self.version

    def save(self, model: Any, path: Path, *, options: Any, input_example: Any) -> SavedFlavor:
        self.calls.append(("save", path, dict(options), input_example))
        np.save(path / "w.npy", np.asarray(model, dtype=np.float64))
        return SavedFlavor({"file": "w.npy", **options}, requirements=("pyarrow",))

    def prepare(self, model: Any, options: Any) -> Any:
        self.calls.append(("prepare", dict(options)))
        return np.asarray(model, dtype=np.float64)

    def load(self, path: Path, options: Any) -> Any:
        self.calls.append(("load", path, dict(options)))
        return np.load(path / options["file"])

    def predict(
        self,
        raw: Any,
        data: Any,
        *,
        method: str | None = None,
        params: Any = None,
        options: Any = None,
    ) -> Any:
        self.calls.append(("predict", method, params, options))
        return np.asarray(data, dtype=np.float64) @ raw


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> _Recording:
    flavor = _Recording()
    monkeypatch.setitem(flavors._registered, flavor.name, flavor)
    return flavor


def test_save_hands_the_flavor_a_hidden_sibling_and_the_caller_options(
    tmp_path: Path, recording: _Recording
) -> None:
    example = np.ones((2, 3))
    manifest = save_model(
        [1.0, 2.0, 3.0],
        tmp_path / "deep" / "er" / "m",  # missing parents are created
        flavor="test_recording",
        input_example=example,
        flavor_options={"k": 1},
    )
    (kind, where, options, given), *rest = recording.calls
    assert kind == "save" and options == {"k": 1} and given is example
    assert where.parent == tmp_path / "deep" / "er"
    assert re.fullmatch(r"\.m\.tmp-[0-9a-f]{12}", where.name)
    assert not where.exists()  # renamed into place
    # the signature is inferred by predicting on the example with the saved options
    opts = {"file": "w.npy", "k": 1}
    assert rest == [("prepare", opts), ("predict", None, None, opts)]
    assert manifest.flavor_options == opts and manifest.flavor == "test_recording"
    assert manifest.signature == infer_signature(example, example @ [1.0, 2.0, 3.0])
    assert manifest.signature.outputs is not None
    assert sorted(manifest.files) == ["input_example.npy", "requirements.txt", "w.npy"]
    recording.calls.clear()
    model = load_model_dir(tmp_path / "deep" / "er" / "m")
    assert recording.calls == [("load", tmp_path / "deep" / "er" / "m", opts)]
    recording.calls.clear()
    assert model.predict(np.ones((1, 3))).tolist() == [6.0]
    assert recording.calls == [("predict", None, None, opts)]


def test_predict_passes_method_params_and_options_through(
    tmp_path: Path, recording: _Recording
) -> None:
    signature = ModelSignature(
        Schema([TensorSpec("float64", (-1, 2))]), params=[ParamSpec("alpha", "float64", 0.5)]
    )
    save_model([1.0, 1.0], tmp_path / "m", flavor="test_recording", signature=signature)
    model = load_model_dir(tmp_path / "m")
    assert model.signature == signature
    recording.calls.clear()
    opts = {"file": "w.npy"}
    model.predict(np.ones((1, 2)), method="score", params={"alpha": 2})
    model.predict(np.ones((1, 2)))  # the signature's defaults fill in
    assert recording.calls == [
        ("predict", "score", {"alpha": 2}, opts),
        ("predict", None, {"alpha": 0.5}, opts),
    ]
    with pytest.raises(InvalidInputError, match="Unknown inference parameter 'beta'"):
        model.predict(np.ones((1, 2)), params={"beta": 1})
    with pytest.raises(InvalidInputError, match="shape"):
        model.predict(np.ones(2))
    recording.calls.clear()
    # validate=False: neither the input nor the params are checked or completed
    assert model.predict(np.ones(2), params={"beta": 1}, validate=False) == 2.0
    assert model.predict(np.ones(2), validate=False) == 2.0
    assert recording.calls == [("predict", None, {"beta": 1}, opts), ("predict", None, None, opts)]


def test_save_into_an_existing_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").write_text("a file")
    with pytest.raises(AlreadyExistsError, match="not empty"):
        save_model(lambda d: d, tmp_path / "m")
    assert (tmp_path / "m").read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_a_failed_save_reraises_the_flavor_error_even_if_the_temp_dir_is_gone(
    tmp_path: Path, recording: _Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    def vanish(model: Any, path: Path, **kwargs: Any) -> SavedFlavor:
        path.rmdir()
        raise OSError("disk went away")

    monkeypatch.setattr(recording, "save", vanish)
    with pytest.raises(OSError, match="disk went away"):
        save_model([1.0], tmp_path / "m", flavor="test_recording")
    assert list(tmp_path.iterdir()) == []


def test_options_and_metadata_must_be_strict_json(tmp_path: Path, recording: _Recording) -> None:
    with pytest.raises(InvalidInputError, match=r"`metadata` must be JSON-serializable"):
        save_model([1.0], tmp_path / "m", flavor="test_recording", metadata={"x": float("nan")})
    with pytest.raises(InvalidInputError, match=r"`flavor_options` must be JSON-serializable"):
        save_model([1.0], tmp_path / "m", flavor="test_recording", flavor_options={"x": {1, 2}})
    with pytest.raises(InvalidInputError, match=r"`flavor_options` must be JSON-serializable"):
        save_model([1.0], tmp_path / "m", flavor="test_recording", flavor_options={"x": np.inf})
    assert list(tmp_path.iterdir()) == []


def test_manifest_file_is_canonical_and_records_versions_and_time(
    tmp_path: Path, recording: _Recording
) -> None:
    before = int(time.time() * 1000)
    manifest = save_model([1.0], tmp_path / "m", flavor="test_recording", metadata={"b": 1, "a": 2})
    after = int(time.time() * 1000)
    text = (tmp_path / "m" / MANIFEST_NAME).read_text()
    assert text == json.dumps(manifest.to_dict(), indent=1, sort_keys=True)
    assert read_manifest(tmp_path / "m") == manifest
    assert before <= manifest.created_ms <= after
    assert manifest.python_version == platform.python_version()
    assert manifest.mloop_version == mloop.__version__
    assert manifest.framework == "numpy" and manifest.framework_version == "1.0"
    assert manifest.metadata == {"b": 1, "a": 2}
    assert manifest.code_paths == () and manifest.input_example is None
    assert manifest.signature is None and manifest.trusted_only is False


def test_mloop_version_without_a_version_attribute(
    tmp_path: Path, recording: _Recording, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(mloop, "__version__")
    assert save_model([1.0], tmp_path / "m", flavor="test_recording").mloop_version == "unknown"


def test_given_requirements_are_kept_verbatim_and_extras_appended_once(
    tmp_path: Path, recording: _Recording
) -> None:
    manifest = save_model(
        [1.0],
        tmp_path / "m",
        flavor="test_recording",
        requirements=["numpy<3", "torch==2.1"],
        extra_requirements=["torch==2.1", "tqdm", "tqdm"],
    )
    assert manifest.requirements == ("numpy<3", "torch==2.1", "tqdm")
    assert (tmp_path / "m" / "requirements.txt").read_text() == "numpy<3\ntorch==2.1\ntqdm\n"
    auto = save_model([1.0], tmp_path / "a", flavor="test_recording", extra_requirements=["x>1"])
    # the framework, what the flavor asked for, numpy and pyarrow, the loaded frame libraries
    assert auto.requirements[:2] == (f"numpy=={np.__version__}", f"pyarrow=={pa.__version__}")
    assert auto.requirements[-1] == "x>1"


def test_pinned_requirements(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("pandas", "polars", "scipy"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    numpy, arrow = f"numpy=={np.__version__}", f"pyarrow=={pa.__version__}"
    skl = f"scikit-learn=={sklearn.__version__}"
    # names that are not installed are left out; empty names are skipped; no duplicates
    assert _pinned("scikit-learn", ["", "no-such-dist-mloop", "numpy"]) == [
        skl,
        numpy,
        arrow,
    ]
    assert _pinned(None, []) == [numpy, arrow]
    monkeypatch.setitem(sys.modules, "pandas", pd)
    monkeypatch.setitem(sys.modules, "polars", pl)
    monkeypatch.setitem(sys.modules, "scipy", scipy)
    assert _pinned(None, []) == [
        numpy,
        arrow,
        f"pandas=={pd.__version__}",
        f"polars=={pl.__version__}",
        f"scipy=={scipy.__version__}",
    ]


def test_a_polars_example_pins_polars(tmp_path: Path) -> None:
    example = pl.DataFrame({"a": [1.0, 2.0]})
    manifest = save_model(lambda d: np.zeros(len(d)), tmp_path / "m", input_example=example)
    assert f"polars=={pl.__version__}" in manifest.requirements
    assert f"cloudpickle=={cloudpickle.__version__}" in manifest.requirements


def test_infer_lets_mloop_errors_through_and_prepares_classes(tmp_path: Path) -> None:
    def refuse(d: Any) -> Any:
        raise InvalidInputError("this model refuses", details={"why": "test"})

    with pytest.raises(InvalidInputError, match=r"^this model refuses$") as info:
        save_model(refuse, tmp_path / "m", input_example=np.ones((2, 2)))
    assert info.value.details == {"why": "test"}

    class Scaled:
        def __init__(self, factor: float) -> None:
            self.factor = factor

        def predict(self, d: Any) -> Any:
            return np.asarray(d).sum(axis=1) * self.factor

    example = np.ones((2, 3))
    manifest = save_model(
        Scaled,
        tmp_path / "c",
        input_example=example,
        flavor_options={"init_kwargs": {"factor": 2.0}},
    )
    assert manifest.signature == infer_signature(example, np.full(2, 6.0))
    assert load_model_dir(tmp_path / "c").predict(example).tolist() == [6.0, 6.0]


# -------------------------------------------------------------------------------------- code paths


@pytest.fixture
def with_code(tmp_path: Path, recording: _Recording, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(sys, "path", list(sys.path))
    src = tmp_path / "src"
    (src / "helpers" / "__pycache__").mkdir(parents=True)
    (src / "helpers" / "__init__.py").write_text("K = 3\n")
    (src / "helpers" / "__pycache__" / "__init__.cpython.pyc").write_bytes(b"stale")
    (src / "tool.py").write_text("T = 1\n")
    save_model(
        [1.0],
        tmp_path / "m",
        flavor="test_recording",
        code_paths=[src / "helpers", str(src / "tool.py")],
    )
    return tmp_path / "m"


def test_code_paths_are_copied_hashed_and_put_first_on_sys_path(with_code: Path) -> None:
    manifest = read_manifest(with_code)
    assert manifest.code_paths == ("code",)
    assert sorted(manifest.files) == [
        "code/helpers/__init__.py",
        "code/tool.py",
        "requirements.txt",
        "w.npy",
    ]
    assert (with_code / "code" / "tool.py").read_text() == "T = 1\n"
    code_dir = str((with_code / "code").resolve())
    assert code_dir not in sys.path
    load_model_dir(with_code)
    assert sys.path[0] == code_dir
    sys.path.insert(0, "elsewhere")
    load_model_dir(with_code)  # already on the path: not added twice
    assert sys.path[:2] == ["elsewhere", code_dir] and sys.path.count(code_dir) == 1


def test_bytecode_written_after_saving_does_not_fail_verification(with_code: Path) -> None:
    cache = with_code / "code" / "helpers" / "__pycache__"
    cache.mkdir()
    (cache / "__init__.cpython-312.pyc").write_bytes(b"compiled on import")
    (with_code / "__pycache__").mkdir()
    (with_code / "__pycache__" / "x.pyc").write_bytes(b"")
    load_model_dir(with_code)
    # any other file added in a sub-directory is refused, with its hash
    (cache.parent / "evil.py").write_text("import os\n")
    with pytest.raises(ModelIntegrityError, match=r"'code/helpers/evil\.py' .* not listed") as info:
        load_model_dir(with_code)
    assert info.value.details == {
        "file": "code/helpers/evil.py",
        "expected": None,
        "actual": b3(b"import os\n"),
    }


def test_a_code_path_given_with_a_trailing_slash_still_loads(with_code: Path) -> None:
    _edit_manifest(with_code, code_paths=["code/"])
    load_model_dir(with_code)
    assert sys.path[0] == str((with_code / "code").resolve())


def test_code_paths_with_the_same_name_are_refused(tmp_path: Path, recording: _Recording) -> None:
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "util.py").write_text(d)
    with pytest.raises(InvalidInputError, match=r"Two code paths are named 'util\.py'"):
        save_model(
            [1.0],
            tmp_path / "m",
            flavor="test_recording",
            code_paths=[tmp_path / "a" / "util.py", tmp_path / "b" / "util.py"],
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


# ------------------------------------------------------------------------------ integrity, exactly


def test_missing_file_details(packaged: Path) -> None:
    expected = read_manifest(packaged).files["input_example.parquet"]
    (packaged / "input_example.parquet").unlink()
    with pytest.raises(ModelIntegrityError) as info:
        load_model_dir(packaged)
    assert info.value.details == {
        "file": "input_example.parquet",
        "expected": expected,
        "actual": None,
    }


def test_added_file_details(packaged: Path) -> None:
    (packaged / "extra.py").write_bytes(b"x = 1\n")
    with pytest.raises(ModelIntegrityError) as info:
        load_model_dir(packaged)
    assert info.value.details == {
        "file": "extra.py",
        "expected": None,
        "actual": b3(b"x = 1\n"),
    }


def test_manifest_listing_an_absolute_path_is_refused(packaged: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    manifest = json.loads((packaged / MANIFEST_NAME).read_text())
    manifest["files"][str(outside)] = file_digest(outside)  # the right hash: still refused
    (packaged / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ModelIntegrityError, match="outside the package") as info:
        load_model_dir(packaged)
    assert info.value.details == {}


def test_edited_manifest_details_and_a_missing_manifest(packaged: Path, tmp_path: Path) -> None:
    digest = file_digest(packaged / MANIFEST_NAME)
    _edit_manifest(packaged, metadata={"owner": "someone else"})
    with pytest.raises(ModelIntegrityError) as info:
        load_model_dir(packaged, manifest_sha256=digest)
    assert info.value.details == {
        "file": MANIFEST_NAME,
        "expected": digest,
        "actual": file_digest(packaged / MANIFEST_NAME),
    }
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFoundError, match=MANIFEST_NAME):
        load_model_dir(tmp_path / "empty", manifest_sha256=digest)


@pytest.mark.parametrize(
    ("field", "key", "what"),
    [("flavor_options", "file", "flavor file"), ("input_example", "path", "input example")],
)
def test_manifest_pointing_the_loader_at_an_unverified_file_is_refused(
    tmp_path: Path, recording: _Recording, field: str, key: str, what: str
) -> None:
    save_model([1.0], tmp_path / "m", flavor="test_recording", input_example=np.ones((2, 1)))
    raw = json.loads((tmp_path / "m" / MANIFEST_NAME).read_text())
    assert raw["flavor_options"]["file"] == "w.npy"
    assert raw["input_example"]["path"] == "input_example.npy"
    _edit_manifest(tmp_path / "m", **{field: {**raw[field], key: "other.npy"}})
    with pytest.raises(ModelIntegrityError, match=f"{what} 'other.npy'") as info:
        load_model_dir(tmp_path / "m")
    assert info.value.details == {"file": "other.npy", "expected": None, "actual": None}


# ----------------------------------------------------------------------------- version warnings, exactly


@pytest.mark.no_mutation  # inspects the warning's frame
def test_version_warnings_point_at_the_caller(tmp_path: Path, recording: _Recording) -> None:
    save_model([1.0], tmp_path / "m", flavor="test_recording")
    _edit_manifest(tmp_path / "m", framework_version="0.9", trusted_only=True, python_version="2.7")
    with pytest.warns(FrameworkVersionWarning) as record:
        load_model_dir(tmp_path / "m")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert messages[0].startswith("This model was saved with numpy==0.9 but 1.0 is installed")
    assert messages[1].startswith("This pickled model was saved on Python 2.7 and is loaded")
    assert [w.filename for w in record] == [__file__, __file__]


@pytest.mark.parametrize(
    ("recorded", "installed"),
    [
        ("1.0", "1.0"),
        ("1.0+cu121", "1.0"),
        ("1.0", "1.0+cpu"),
        (None, "2.0"),
        ("", "2.0"),
        ("2.0", None),
    ],
)
def test_no_version_warning_without_a_real_difference(
    tmp_path: Path, recording: _Recording, recorded: str | None, installed: str | None
) -> None:
    save_model([1.0], tmp_path / "m", flavor="test_recording")
    _edit_manifest(tmp_path / "m", framework_version=recorded)
    recording.version = installed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model_dir(tmp_path / "m")


def test_python_version_warning_only_for_pickles_and_only_for_another_minor(
    tmp_path: Path, recording: _Recording
) -> None:
    save_model([1.0], tmp_path / "m", flavor="test_recording")
    major, minor, _ = platform.python_version_tuple()
    for trusted_only, saved_on in [
        (False, "2.7.18"),  # not a pickle: the Python version does not matter
        (True, f"{major}.{minor}.9999"),  # another patch release of the same minor
        (True, f"{major}.{minor}"),
        (True, ""),  # unknown
    ]:
        _edit_manifest(tmp_path / "m", trusted_only=trusted_only, python_version=saved_on)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_model_dir(tmp_path / "m")
    _edit_manifest(tmp_path / "m", trusted_only=True, python_version=f"{major}.{int(minor) + 1}.0")
    with pytest.warns(FrameworkVersionWarning, match=f"Python {major}.{int(minor) + 1}.0"):
        load_model_dir(tmp_path / "m")


# ------------------------------------------------------------------------------------ loaded model


def test_loaded_model_attributes_and_repr(tmp_path: Path, recording: _Recording) -> None:
    save_model([1.0], tmp_path / "m", flavor="test_recording")
    model = load_model_dir(tmp_path / "m")
    assert model.flavor == "test_recording" and model.path == tmp_path / "m"
    assert model.manifest == read_manifest(tmp_path / "m") and model.strict is False
    assert model.raw.tolist() == [1.0]
    assert repr(model) == f"PackagedModel(flavor='test_recording', path={str(tmp_path / 'm')!r})"


@pytest.mark.parametrize(
    ("example", "fed"),
    [
        (pd.DataFrame({"a": [1.0, 2.0]}), pd.DataFrame),
        (pl.DataFrame({"a": [1.0, 2.0]}), pl.DataFrame),
        ({"a": np.array([1.0, 2.0])}, dict),
        ([{"a": 1.0}, {"a": 2.0}], list),
    ],
    ids=["pandas", "polars", "dict", "records"],
)
def test_the_model_is_fed_the_container_of_its_input_example(
    tmp_path: Path, example: Any, fed: type
) -> None:
    def model(d: Any) -> Any:  # says what container it was given
        return np.array([type(d).__name__] * len(d))

    save_model(model, tmp_path / "m", input_example=example)
    loaded = load_model_dir(tmp_path / "m")
    assert loaded.predict(pl.DataFrame({"a": [3.0]})).tolist() == [fed.__name__]
    assert loaded.predict(pd.DataFrame({"a": [3.0]})).tolist() == [fed.__name__]
