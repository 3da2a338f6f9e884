"""A user's project in a temporary folder: a flow module written from source and imported, a SQLite
store and an artifact folder, and ``run`` with them (the Ray and resources/sweep tests)."""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from mloop.artifacts import BlobStore
from mloop.config import Settings
from mloop.pipelines import run
from mloop.store import SqlStore

__all__ = ["FlowProject"]


class FlowProject:
    def __init__(self, root: Path, source: str, *, prefix: str) -> None:
        self.root = root
        self.name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        (root / f"{self.name}.py").write_text(source)
        self.module: ModuleType = importlib.import_module(self.name)
        self.settings = Settings(home=root / ".mloop", store_uri=f"sqlite:///{root / 'm.db'}",
                                 artifact_uri=str(root / "artifacts"))  # fmt: skip
        self.store = SqlStore(self.settings.store_uri)
        self.blobs = BlobStore(root / "artifacts")

    def run(self, name: str, **kwargs: Any) -> Any:
        kwargs.setdefault("track", False)
        return run(getattr(self.module, name), store=self.store, blobs=self.blobs,
                   settings=self.settings, project_root=str(self.root), **kwargs)  # fmt: skip
