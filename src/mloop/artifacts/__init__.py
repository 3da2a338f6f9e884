"""Content-addressed artifact storage: blobs by sha256 over a local folder, fsspec (``s3://``) or a
team server (``http(s)://``).

A run's artifacts are a mapping path -> blob kept in the metadata store as
:class:`~mloop.store._entities.ArtifactEntry` rows; this package stores and fetches the blobs,
validates artifact paths, and stores dataset versions as Parquet keyed by a content digest.
"""

from mloop.artifacts import _remote  # noqa: F401  (registers what BlobStore('http://...') makes)
from mloop.artifacts._blobstore import BlobStore
from mloop.artifacts._datasets import (
    dataset_digest,
    dataset_file_size,
    load_dataset,
    open_dataset_file,
    store_dataset,
    to_arrow_table,
)
from mloop.artifacts._gc import delete_blobs, find_unreferenced
from mloop.artifacts._integrity import IntegrityError
from mloop.artifacts._paths import collect_files, validate_artifact_path
from mloop.artifacts._tree import BlobRef, download_tree, upload_tree

__all__ = [
    "BlobRef",
    "BlobStore",
    "IntegrityError",
    "collect_files",
    "dataset_digest",
    "dataset_file_size",
    "delete_blobs",
    "download_tree",
    "find_unreferenced",
    "load_dataset",
    "open_dataset_file",
    "store_dataset",
    "to_arrow_table",
    "upload_tree",
    "validate_artifact_path",
]
