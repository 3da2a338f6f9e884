"""Experiment tracking: runs, the non-blocking logger, the spool, the read client."""

from __future__ import annotations

from mloop.tracking._client import Client
from mloop.tracking._fluent import (
    active_run,
    attached_run,
    finish,
    init,
    log,
    log_figure,
    log_histogram,
    log_image,
    log_table,
    start_run,
)
from mloop.tracking._media import Histogram, Image, Table, encode_png
from mloop.tracking._register import (
    REGISTRATION_TAG,
    create_version_from_run,
    registration_context,
    registration_tags,
)
from mloop.tracking._run import Run
from mloop.tracking._spool import (
    ReplayResult,
    count_quarantined,
    quarantine_dir,
    replay_spool,
    retry_quarantined,
)

__all__ = [
    "REGISTRATION_TAG",
    "Client",
    "Histogram",
    "Image",
    "ReplayResult",
    "Run",
    "Table",
    "active_run",
    "attached_run",
    "count_quarantined",
    "create_version_from_run",
    "encode_png",
    "finish",
    "init",
    "log",
    "log_figure",
    "log_histogram",
    "log_image",
    "log_table",
    "quarantine_dir",
    "registration_context",
    "registration_tags",
    "replay_spool",
    "retry_quarantined",
    "start_run",
]
