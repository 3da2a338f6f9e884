"""The inference log: predictions recorded off the request path as Parquet chunks in the artifact
store, indexed in the metadata store, joined with labels that arrive later."""

from __future__ import annotations

__all__: list[str] = []
