"""``PendingModelVersion``: what ``log_model`` returns when the registration had to be spooled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["PendingModelVersion"]


@dataclass(frozen=True)
class PendingModelVersion:
    """A model version logged while the store was out of reach (``MLOOP_MODE=offline``, an outage).

    The package and the registration are in the spool, in order after the run's other writes;
    ``mloop sync`` (or the run's next successful write, online) registers the version, exactly once,
    with the tag ``mloop.registration_id`` set to :attr:`registration_id`. Until then there is no
    version number; afterwards, find it with
    ``Registry().search_versions(f"run_id = '{source_run_id}'")``, or load the package by
    :attr:`artifact_uri`.
    """

    name: str
    artifact_uri: str
    flavor: str
    source_run_id: str
    registration_id: str
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    manifest: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def pending(self) -> Literal[True]:
        """Always True (a registered :class:`~mloop.registry.ModelVersion` says False)."""
        return True

    def __repr__(self) -> str:
        return (
            f"PendingModelVersion(name={self.name!r}, artifact_uri={self.artifact_uri!r}, "
            f"flavor={self.flavor!r}: registered by `mloop sync`)"
        )
