"""The manifest of a packaged model (``MLOOP_MODEL.json``) and the file hashing it relies on."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mloop._digest import digest_file
from mloop.codec import loads, to_wire
from mloop.errors import InvalidInputError, MloopError, NotFoundError

from ._signature import ModelSignature

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "FrameworkVersionWarning",
    "ModelIntegrityError",
    "ModelManifest",
    "file_digest",
    "parse_manifest",
    "read_manifest",
]

MANIFEST_NAME = "MLOOP_MODEL.json"
FORMAT_VERSION = 1


class ModelIntegrityError(MloopError):
    """A packaged model's files do not match the hashes in its manifest; nothing was loaded."""

    error_code = "MODEL_INTEGRITY_ERROR"
    http_status = 422


class FrameworkVersionWarning(UserWarning):
    """The installed framework (or Python, for pickled models) differs from the one that saved it."""


@dataclass(frozen=True)
class ModelManifest:
    """The contents of ``MLOOP_MODEL.json``.

    Attributes
    ----------
    flavor : str
        Flavor name (``sklearn``, ``xgboost``, ``lightgbm``, ``pytorch``, ``python_function``).
    flavor_options : dict
        What the flavor needs to load the files (serialization, classes, trusted types...).
    framework, framework_version : str or None
        Distribution name and version of the framework at save time.
    python_version, mloop_version : str
        Versions at save time.
    signature : ModelSignature or None
        Inputs (and outputs) the model takes; ``predict`` validates against it.
    input_example : dict or None
        ``{"format": ..., "path": ...}`` for an example stored as a file, or
        ``{"format": "json", "data": ...}`` for a small JSON-safe one.
    requirements : tuple of str
        Pinned requirements (``name==version``).
    files : dict
        Relative POSIX path -> digest (see :mod:`mloop._digest`) of every file but the manifest.
    created_ms : int
        Creation time, ms since the epoch.
    trusted_only : bool
        Loading unpickles data: load only packages from trusted sources.
    code_paths : tuple of str
        Package-relative directories put on ``sys.path`` before loading.
    metadata : dict
        Free-form JSON-safe metadata from the caller.
    format_version : int
        Manifest format version.
    """

    flavor: str
    framework: str | None
    framework_version: str | None
    python_version: str
    mloop_version: str
    files: dict[str, str]
    created_ms: int
    flavor_options: dict[str, Any] = field(default_factory=dict)
    signature: ModelSignature | None = None
    input_example: dict[str, Any] | None = None
    requirements: tuple[str, ...] = ()
    trusted_only: bool = False
    code_paths: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def _wire_(self) -> dict[str, Any]:
        # Plain values (arrays, non-finite floats): the codec encodes them in one walk.
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "flavor_options": self.flavor_options,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "python_version": self.python_version,
            "mloop_version": self.mloop_version,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "input_example": self.input_example,
            "requirements": list(self.requirements),
            "files": self.files,
            "created_ms": self.created_ms,
            "trusted_only": self.trusted_only,
            "code_paths": list(self.code_paths),
            "metadata": self.metadata,
        }

    def to_dict(self) -> dict[str, Any]:
        """The wire form (:mod:`mloop.codec`) written to ``MLOOP_MODEL.json``."""
        return to_wire(self, what="ModelManifest")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelManifest:
        """Read a manifest dict; refuses one written by a newer, incompatible mloop."""
        version = int(data.get("format_version", 0))
        if version > FORMAT_VERSION or version < 1:
            raise InvalidInputError(
                f"Model manifest format_version {version} is not supported by this mloop "
                f"(it reads 1..{FORMAT_VERSION}); upgrade mloop."
            )
        signature = data.get("signature")
        return cls(
            flavor=data["flavor"],
            framework=data.get("framework"),
            framework_version=data.get("framework_version"),
            python_version=data.get("python_version", ""),
            mloop_version=data.get("mloop_version", ""),
            files=dict(data.get("files", {})),
            created_ms=int(data.get("created_ms", 0)),
            flavor_options=dict(data.get("flavor_options") or {}),
            signature=None if signature is None else ModelSignature.from_dict(signature),
            input_example=data.get("input_example"),
            requirements=tuple(data.get("requirements", ())),
            trusted_only=bool(data.get("trusted_only", False)),
            code_paths=tuple(data.get("code_paths", ())),
            metadata=dict(data.get("metadata") or {}),
            format_version=version,
        )


def read_manifest(path: str | os.PathLike[str]) -> ModelManifest:
    """Read ``MLOOP_MODEL.json`` from a package directory.

    Raises
    ------
    NotFoundError
        The directory holds no manifest.
    InvalidInputError
        The manifest is not valid JSON or not a manifest.
    """
    file = Path(path) / MANIFEST_NAME
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(
            f"No model package at {str(path)!r}: {MANIFEST_NAME} is missing."
        ) from None
    return parse_manifest(raw, where=file)


def parse_manifest(raw: bytes, *, where: str | os.PathLike[str]) -> ModelManifest:
    """Parse the bytes of a ``MLOOP_MODEL.json`` read from ``where`` (named in errors).

    Raises
    ------
    InvalidInputError
        The bytes are not valid JSON or not a manifest.
    """
    try:
        return ModelManifest.from_dict(loads(raw, what=str(where)))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"{where} is not a valid model manifest: {exc}.") from exc


def file_digest(file: Path, like: str | None = None) -> str:
    """The digest of a file (BLAKE3 for a new package; ``like``'s algorithm to check a file against
    a recorded digest, so packages saved by mloop 0.1 with SHA-256 still verify)."""
    return digest_file(file, like)[0]
