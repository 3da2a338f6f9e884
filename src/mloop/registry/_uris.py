"""Model URIs: ``models:/<name>/<version>``, ``models:/<name>@<alias>``, ``models:/<name>/latest``,
``runs:/<run_id>/<path>``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mloop.errors import InvalidInputError

__all__ = ["ModelRef", "RunArtifactRef", "parse_model_uri"]

_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/@]+)|@(?P<alias>[^/@]+))/?$")
_RUNS = re.compile(r"^runs:/(?P<run_id>[0-9a-f]{32})(?:/(?P<path>.*))?$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model version, by number, alias or ``latest``."""

    name: str
    kind: Literal["version", "alias", "latest"]
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.kind == "alias":
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/{self.version if self.kind == 'version' else 'latest'}"


@dataclass(frozen=True)
class RunArtifactRef:
    run_id: str
    path: str

    def __str__(self) -> str:
        return f"runs:/{self.run_id}/{self.path}"


def parse_version_spec(name: str, spec: int | str) -> ModelRef:
    """``3``, ``"3"``, ``"v3"``, ``"latest"`` or ``"@champion"`` -> :class:`ModelRef`."""
    if isinstance(spec, bool):
        raise InvalidInputError(f"version must be an int, 'latest' or '@alias'; got {spec!r}.")
    if isinstance(spec, int):
        return ModelRef(name, "version", version=spec)
    if isinstance(spec, str):
        s = spec.strip()
        if s.startswith("@") and len(s) > 1:
            return ModelRef(name, "alias", alias=s[1:])
        if s.lower() == "latest":
            return ModelRef(name, "latest")
        digits = s[1:] if s[:1] in ("v", "V") else s
        if digits.isdigit() and int(digits) >= 1:
            return ModelRef(name, "version", version=int(digits))
    raise InvalidInputError(f"version must be an int >= 1, 'latest' or '@alias'; got {spec!r}.")


def parse_model_uri(uri: str) -> ModelRef | RunArtifactRef:
    """Parse a model URI; a malformed one raises :class:`InvalidInputError` saying which forms exist."""
    if not isinstance(uri, str):
        raise InvalidInputError(f"model URI must be a str; got {type(uri).__name__}.")
    m = _MODELS.match(uri)
    if m:
        if m.group("alias"):
            return ModelRef(m.group("name"), "alias", alias=m.group("alias"))
        return parse_version_spec(m.group("name"), m.group("version"))
    r = _RUNS.match(uri)
    if r:
        path = (r.group("path") or "").strip("/") or "model"
        return RunArtifactRef(r.group("run_id"), path)
    raise InvalidInputError(
        "model URI must be models:/<name>/<version>, models:/<name>@<alias>, models:/<name>/latest "
        f"or runs:/<run_id>/<path>; got {uri!r}."
    )
