"""A packaged model: a directory of flavor files plus ``MLOOP_MODEL.json``, verified before loading.

Layout of a package directory::

    MLOOP_MODEL.json        manifest (not in its own hash list)
    model.skops | model.ubj | model.txt | state_dict.pt | ...   the flavor's files
    input_example.parquet | input_example.npy | input_example.npz   (optional)
    requirements.txt        the pinned requirements, for ``pip install -r``
    code/...                code_paths, put on sys.path at load time (optional)

``save_model`` writes into a temporary sibling and renames it into place, so a failed save (say, an
unserializable model) leaves nothing behind. ``load_model_dir`` checks every file's digest before it
reads a byte of model data, so a tampered or truncated file is refused, never half-loaded. Loading
the same package again in the same process checks the ``stat`` of its files and folders instead
while they are unchanged since they were hashed (``_verified.py``: any change, even with the mtime
set back, sends the package through the full check again).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from mloop._digest import digest_bytes
from mloop.codec import dumps
from mloop.errors import AlreadyExistsError, InvalidInputError, MloopError, NotFoundError

from . import _examples, _verified
from ._manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    FrameworkVersionWarning,
    ModelIntegrityError,
    ModelManifest,
    file_digest,
    parse_manifest,
    read_manifest,
)
from ._signature import ModelSignature, infer_signature, validate_input
from .flavors import Flavor, detect_flavor, get_flavor

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "FrameworkVersionWarning",
    "ModelIntegrityError",
    "ModelManifest",
    "PackagedModel",
    "file_digest",
    "load_model_dir",
    "read_manifest",
    "save_model",
    "verify_files",
]

CODE_DIR = "code"
_IGNORED_DIRS = frozenset({"__pycache__"})


class PackagedModel:
    """A loaded model: the framework object plus its manifest, predicting through the signature.

    Attributes
    ----------
    raw : Any
        The underlying framework object (estimator, Booster, nn.Module, ...).
    manifest : ModelManifest
    flavor : str
    signature : ModelSignature or None
    path : pathlib.Path
    """

    def __init__(
        self,
        path: Path | Callable[[], Path],
        manifest: ModelManifest,
        raw: Any,
        flavor: Flavor,
        *,
        strict: bool,
    ) -> None:
        # A model read from elsewhere (a local store's blobs) makes its folder when asked for it.
        self._path = path
        self.manifest = manifest
        self.raw = raw
        self.flavor = manifest.flavor
        self.signature = manifest.signature
        self.strict = strict
        self._flavor = flavor
        example = manifest.input_example or {}
        self._input_format = _examples.FEED_FORMATS.get(str(example.get("format")))

    def predict(
        self,
        data: Any,
        *,
        method: str | None = None,
        params: Mapping[str, Any] | None = None,
        strict: bool | None = None,
        validate: bool = True,
    ) -> Any:
        """Validate ``data`` against the signature, then predict.

        Parameters
        ----------
        data : frame, dict, array or list
            The input; see :func:`mloop.registry._signature.validate_input`.
        method : str, optional
            The model method to call, e.g. ``"predict_proba"`` (default ``predict``).
        params : mapping, optional
            Inference parameters (checked against the signature's params when it declares any).
        strict : bool, optional
            Reject extra columns instead of dropping them (default: the value given at load).
        validate : bool, default True
            Skip the signature check when False (the caller has already validated).

        Raises
        ------
        InvalidInputError
            The input does not match the signature, or the model has no such ``method``.
        """
        signature = self.signature
        if validate and signature is not None:
            data = validate_input(
                data,
                signature,
                strict=self.strict if strict is None else strict,
                to=self._input_format,
            )
            if signature.params:
                params = signature.resolve_params(params)
        return self._flavor.predict(
            self.raw, data, method=method, params=params, options=self.manifest.flavor_options
        )

    @property
    def path(self) -> Path:
        """The package folder."""
        if not isinstance(self._path, Path):
            self._path = self._path()
        return self._path

    @property
    def input_example(self) -> Any:
        """The stored input example in its original form (None when none was saved)."""
        return _examples.read(self.path, self.manifest.input_example)

    def __repr__(self) -> str:
        where = str(self._path) if isinstance(self._path, Path) else "(read from its blobs)"
        return f"PackagedModel(flavor={self.flavor!r}, path={where!r})"


# --------------------------------------------------------------------------------------------- save


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: ModelSignature | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    requirements: Sequence[str] | None = None,
    extra_requirements: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    flavor_options: Mapping[str, Any] | None = None,
) -> ModelManifest:
    """Package ``model`` into the directory ``path`` and return its manifest.

    Parameters
    ----------
    model : Any
        A scikit-learn estimator, XGBoost or LightGBM model, torch module, or any object (or class)
        with ``predict``.
    path : path-like
        Target directory; must not exist or be empty.
    flavor : str, optional
        Force a flavor instead of detecting one from the model's classes.
    input_example : frame, dict, array or list, optional
        A few rows of input, stored with the model; the signature is inferred from it and from
        the model's prediction on it.
    signature : ModelSignature, optional
        Overrides the inferred signature.
    code_paths : sequence of path-like, optional
        Files or directories copied into the package and put on ``sys.path`` at load time.
    requirements : sequence of str, optional
        Requirements to record verbatim; by default the framework, numpy, pandas... are pinned to
        their installed versions.
    extra_requirements : sequence of str
        Appended to the (automatic or given) requirements.
    metadata : mapping, optional
        JSON-safe metadata stored in the manifest.
    flavor_options : mapping, optional
        Flavor-specific options, e.g. ``{"module_class": "pkg.mod:Net", "init_kwargs": {...}}``
        for pytorch or ``{"serialization": "cloudpickle"}`` for sklearn.

    Returns
    -------
    ModelManifest

    Raises
    ------
    AlreadyExistsError
        ``path`` exists and is not an empty directory.
    InvalidInputError
        The model cannot be serialized (the message names the attribute and type), cannot
        predict on ``input_example``, or an option is malformed.
    """
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AlreadyExistsError(f"Cannot save a model into {str(target)!r}: it is not empty.")
    flavor_name = flavor or detect_flavor(model)
    fl = get_flavor(flavor_name)
    meta = dict(metadata or {})
    _check_json(meta, "metadata")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        saved = fl.save(model, tmp, options=dict(flavor_options or {}), input_example=input_example)
        _check_json(saved.options, "flavor_options")
        code = _copy_code(code_paths or (), tmp)
        example_ref = None
        if input_example is not None:
            example_ref = _examples.write(input_example, tmp)
            if signature is None:
                signature = _infer(fl, model, input_example, saved.options)
        framework_version = fl.framework_version()
        if requirements is None:
            reqs = _pinned(fl.framework, saved.requirements)
        else:
            reqs = [str(r) for r in requirements]
        for extra in map(str, extra_requirements):
            if extra not in reqs:  # once, even when listed twice
                reqs.append(extra)
        (tmp / "requirements.txt").write_text("".join(f"{r}\n" for r in reqs))
        manifest = ModelManifest(
            flavor=flavor_name,
            framework=fl.framework,
            framework_version=framework_version,
            python_version=platform.python_version(),
            mloop_version=_mloop_version(),
            files=_hash_tree(tmp),
            created_ms=int(time.time() * 1000),
            flavor_options=saved.options,
            signature=signature,
            input_example=example_ref,
            requirements=tuple(reqs),
            trusted_only=saved.trusted_only,
            code_paths=(CODE_DIR,) if code else (),
            metadata=meta,
        )
        (tmp / MANIFEST_NAME).write_text(dumps(manifest, indent=1, sort_keys=True))
        if target.exists():
            target.rmdir()  # empty (checked above); rename cannot replace a directory everywhere
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _infer(
    fl: Flavor, model: Any, input_example: Any, options: Mapping[str, Any]
) -> ModelSignature:
    try:
        output = fl.predict(fl.prepare(model, options), input_example, options=options)
    except MloopError:
        raise
    except Exception as exc:  # the user's model failed on the user's example: say so
        raise InvalidInputError(
            f"The model failed to predict on input_example ({type(exc).__name__}: {exc}); "
            "pass an input example the model accepts, or an explicit signature."
        ) from exc
    return infer_signature(input_example, output)


def _check_json(value: Any, what: str) -> None:
    try:
        json.dumps(
            value,
            allow_nan=False,  # pragma: no mutate - allow_nan=None is falsy too: the same check
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"`{what}` must be JSON-serializable; {exc}.") from exc


def _copy_code(code_paths: Sequence[str | os.PathLike[str]], root: Path) -> bool:
    if not code_paths:
        return False
    dest = root / CODE_DIR
    dest.mkdir()
    for item in code_paths:
        src = Path(item)
        if not src.exists():
            raise InvalidInputError(f"code path {str(src)!r} does not exist.")
        if (dest / src.name).exists():
            raise InvalidInputError(f"Two code paths are named {src.name!r}; rename one.")
        if src.is_dir():
            shutil.copytree(src, dest / src.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / src.name)
    return True


def _dist_version(dist: str | None) -> str | None:
    if not dist:
        return None
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _mloop_version() -> str:
    import mloop

    return str(getattr(mloop, "__version__", "unknown"))


def _pinned(framework: str | None, extra: Sequence[str]) -> list[str]:
    names: list[str] = [n for n in (framework, *extra) if n]
    names += ["numpy", "pyarrow"]
    # the frame libraries in use; a polars input example implies polars is imported
    for module, dist in (("pandas", "pandas"), ("polars", "polars"), ("scipy", "scipy")):
        if module in sys.modules:
            names.append(dist)
    out: list[str] = []
    for name in dict.fromkeys(names):
        version = _dist_version(name)
        if version is not None:
            out.append(f"{name}=={version}")
    return out


def _hash_tree(root: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_DIRS)
        for name in sorted(filenames):
            file = Path(dirpath) / name
            rel = file.relative_to(root).as_posix()
            if rel != MANIFEST_NAME:
                files[rel] = file_digest(file)
    return files


# --------------------------------------------------------------------------------------------- load


def verify_files(path: str | os.PathLike[str], manifest: ModelManifest) -> None:
    """Check every file listed in ``manifest`` against its digest, and that no file was added.

    Raises
    ------
    ModelIntegrityError
        A file is missing, differs from its recorded hash (the message names the file, the expected
        and the actual hash), or is not listed in the manifest.
    """
    root = Path(path)
    _check_hashes(root, manifest)
    _refuse_unlisted(root, manifest, _walk_files(root))


def _check_hashes(root: Path, manifest: ModelManifest) -> None:
    for rel, expected in manifest.files.items():
        file = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ModelIntegrityError(f"Manifest lists a file outside the package: {rel!r}.")
        try:
            check_file(rel, file, expected)
        except FileNotFoundError:
            raise ModelIntegrityError(
                f"Model file {rel!r} is missing from {str(root)!r}; refusing to load.",
                details={"file": rel, "expected": expected, "actual": None},
            ) from None


def check_file(rel: str, file: Path, expected: str) -> None:
    """Refuse the package file ``rel`` (read from ``file``) unless its digest is ``expected``."""
    actual = file_digest(file, expected)
    if actual != expected:
        raise ModelIntegrityError(
            f"Model file {rel!r} failed its integrity check: expected digest {expected}, "
            f"got {actual}. The package was modified or corrupted; refusing to load it.",
            details={"file": rel, "expected": expected, "actual": actual},
        )


def _walk_files(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _IGNORED_DIRS]
        found += [(Path(dirpath) / name).relative_to(root).as_posix() for name in filenames]
    return found


def _refuse_unlisted(root: Path, manifest: ModelManifest, found: Sequence[str]) -> None:
    listed = set(manifest.files) | {MANIFEST_NAME}
    for rel in found:
        if rel not in listed:
            raise ModelIntegrityError(
                f"File {rel!r} in {str(root)!r} is not listed in the model manifest; "
                "refusing to load a package that was added to.",
                details={"file": rel, "expected": None, "actual": file_digest(root / rel)},
            )


def load_model_dir(
    path: str | os.PathLike[str],
    *,
    verify: bool = True,
    strict: bool = False,
    manifest_sha256: str | None = None,
) -> PackagedModel:
    """Load a model package written by :func:`save_model`.

    Parameters
    ----------
    path : path-like
        The package directory.
    verify : bool, default True
        Check every file's sha256 before loading (a mismatch refuses the load). A package this
        process has verified is not hashed again while the ``stat`` of each of its files and
        folders (inode, size, mtime and ctime in ns) is unchanged and was not changed within
        2 s before it was hashed; a verified scikit-learn (skops) model is then handed out as a
        deep copy of the one built before.
    strict : bool, default False
        Default for ``predict(strict=...)``: reject extra input columns instead of dropping them.
    manifest_sha256 : str, optional
        Expected sha256 of ``MLOOP_MODEL.json`` itself (e.g. recorded by the registry when the
        version was created); with it, an edited manifest is refused too.

    Returns
    -------
    PackagedModel

    Raises
    ------
    NotFoundError
        No manifest at ``path``.
    ModelIntegrityError
        A file fails its hash check, is missing, or was added.
    MissingDependencyError
        The framework (or skops / cloudpickle) is not installed.

    Warns
    -----
    FrameworkVersionWarning
        The installed framework version differs from the recorded one (or, for pickled models,
        the Python minor version does).
    """
    root = Path(path)
    digest: str | None = None
    snapshot: _verified.Snapshot | None = None
    if verify:
        manifest, digest, snapshot = _verified_manifest(root, manifest_sha256)
    else:
        manifest = _read_checked_manifest(root, manifest_sha256)[0]
    fl = get_flavor(manifest.flavor)
    _warn_versions(fl, manifest)
    for rel in manifest.code_paths:
        code_dir = str((root / rel).resolve())
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
    # Only verified files build (or reuse) a kept model: a digest is set only when verify is on.
    raw = (
        None
        if digest is None
        else _verified.loaded_models.copy(digest, fl, manifest.flavor_options)
    )
    if raw is None:
        raw = fl.load(root, manifest.flavor_options)
        if digest is not None and snapshot is not None:
            _verified.loaded_models.keep(digest, fl, manifest.flavor_options, raw, snapshot.nbytes)
    return PackagedModel(root, manifest, raw, fl, strict=strict)


def _read_checked_manifest(
    root: Path, manifest_sha256: str | None, *, file: Path | None = None
) -> tuple[ModelManifest, str]:
    """The manifest at ``root`` (or in ``file``) and its digest (with ``manifest_sha256``'s
    algorithm when given), refused when it is not ``manifest_sha256``."""
    file = file or root / MANIFEST_NAME
    try:
        data = file.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(
            f"No model package at {str(root)!r}: {MANIFEST_NAME} is missing."
        ) from None
    actual = digest_bytes(data, manifest_sha256)
    if manifest_sha256 is not None and actual != manifest_sha256:
        raise ModelIntegrityError(
            f"{MANIFEST_NAME} failed its integrity check: expected digest {manifest_sha256}, "
            f"got {actual}; refusing to load.",
            details={"file": MANIFEST_NAME, "expected": manifest_sha256, "actual": actual},
        )
    return parse_manifest(data, where=file), actual


def _verified_manifest(
    root: Path, manifest_sha256: str | None
) -> tuple[ModelManifest, str, _verified.Snapshot | None]:
    """The verified manifest of the package at ``root``, its sha256 and what was seen.

    A package unchanged (by ``stat``) since this process last verified it is not read again; any
    other is verified in full: the manifest against ``manifest_sha256``, every file against its
    hash, no file added, and the paths the manifest points the loader at.
    """
    key = os.path.abspath(root)
    seen = _verified.verified_packages.lookup(key, manifest_sha256)
    if seen is not None:
        return seen[0], seen[1], None
    try:
        # Stat before reading: a change made while the files are hashed then fails the next lookup.
        snapshot = _verified.take_snapshot(key, ignored_dirs=_IGNORED_DIRS)
    except FileNotFoundError:
        raise NotFoundError(
            f"No model package at {str(root)!r}: {MANIFEST_NAME} is missing."
        ) from None
    manifest, actual = _read_checked_manifest(root, manifest_sha256)
    _check_hashes(root, manifest)
    _refuse_unlisted(root, manifest, snapshot.files)
    _check_references(manifest)
    _verified.verified_packages.record(snapshot, actual, manifest)
    return manifest, actual, snapshot


def _check_references(manifest: ModelManifest) -> None:
    """Paths the manifest points the loader at must be files it hashed (or hold only such files).

    Runs after :func:`verify_files`, which refused every listed path that leaves the package, so a
    listed path (or the folder of listed files) is inside it.
    """
    refs = [("code path", rel, True) for rel in manifest.code_paths]
    file = manifest.flavor_options.get("file")
    if isinstance(file, str):
        refs.append(("flavor file", file, False))
    if manifest.input_example and isinstance(manifest.input_example.get("path"), str):
        refs.append(("input example", manifest.input_example["path"], False))
    for what, rel, is_dir in refs:
        if is_dir:
            prefix = Path(rel).as_posix() + "/"  # "code/" and "code" name the same folder
            listed = any(f.startswith(prefix) for f in manifest.files)
        else:
            listed = rel in manifest.files
        if not listed:
            raise ModelIntegrityError(
                f"The manifest's {what} {rel!r} is not a verified file of the package; "
                "refusing to load.",
                details={"file": rel, "expected": None, "actual": None},
            )


def _warn_versions(fl: Flavor, manifest: ModelManifest) -> None:
    installed = fl.framework_version()
    recorded = manifest.framework_version
    if recorded and installed and _base_version(installed) != _base_version(recorded):
        warnings.warn(
            f"This model was saved with {manifest.framework}=={recorded} but {installed} is "
            f"installed; predictions may differ. Install {manifest.framework}=={recorded} to "
            "reproduce them exactly.",
            FrameworkVersionWarning,
            # where the warning points: checked by test_version_warnings_point_at_the_caller,
            # which mutation runs leave out (mutmut's trampolines add stack frames)
            stacklevel=3,  # pragma: no mutate - the caller's line, tested outside mutation runs
        )
    if manifest.trusted_only and manifest.python_version:
        saved_py = tuple(manifest.python_version.split(".")[:2])
        if saved_py != tuple(platform.python_version_tuple()[:2]):
            warnings.warn(
                f"This pickled model was saved on Python {manifest.python_version} and is loaded "
                f"on {platform.python_version()}; unpickling may fail or behave differently.",
                FrameworkVersionWarning,
                stacklevel=3,  # pragma: no mutate - the caller's line, tested outside mutation runs
            )


def _base_version(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: a local build tag is not a different release."""
    return version.partition("+")[0]
