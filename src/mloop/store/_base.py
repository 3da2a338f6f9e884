"""The ``Store`` contract: one part per concept, composed into the store ``open_store`` returns.

- :class:`~mloop.store._runs_base.RunStoreMixin`: projects, runs, metrics, artifacts, datasets;
- :class:`~mloop.store._registry_base.RegistryStoreMixin`: models, versions, aliases, their events;
- :class:`~mloop.store._webhooks_base.WebhookStoreMixin`: webhooks and their delivery log;
- :class:`~mloop.store._monitor_base.MonitorStoreMixin`: monitor windows and alerts;
- :class:`~mloop.store._events_base.EventStoreMixin`: the event log and its followers' cursors;
- :class:`~mloop.store._inference_base.InferenceStoreMixin`: the inference log's index and labels;
- :class:`~mloop.store._deploy_base.DeploymentStoreMixin`: deployments and their revisions;
- :class:`~mloop.store._checks_base.CheckStoreMixin`: check reports (CI gates) on model versions;
- :class:`~mloop.store._pipelines_base.PipelineStoreMixin`: pipelines, their runs and step runs;
- :class:`~mloop.store._triggers_base.TriggerStoreMixin`: trigger firings (one per cause, leased);
- :class:`~mloop.store._media_base.MediaStoreMixin`: the media index of runs (images, tables...);
- :class:`~mloop.store._serving_base.ServingStoreMixin`: serving's per-minute requests, errors, latency;
- :class:`~mloop.store._tokens_base.TokenStoreMixin`: a team server's API tokens (never over HTTP).

In each, public methods validate and a backend implements the typed ``_do_*`` hooks, so SQLite,
PostgreSQL and HTTP reject bad input identically. A backend is one class that implements every
hook (see ``SqlStore``) registered for its URI schemes (``register_backend``).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Sequence
from typing import Literal

from mloop.store._checks_base import CheckStoreMixin
from mloop.store._common import MAX_RESULTS_LIMIT
from mloop.store._deploy_base import DeploymentStoreMixin
from mloop.store._downsample import downsample_minmax
from mloop.store._events_base import EventStoreMixin
from mloop.store._follow import Follower
from mloop.store._inference_base import InferenceStoreMixin
from mloop.store._media_base import MediaStoreMixin
from mloop.store._monitor_base import MonitorStoreMixin
from mloop.store._pipelines_base import PipelineStoreMixin
from mloop.store._registry_base import RegistryStoreMixin
from mloop.store._runs_base import NewRun, RunStoreMixin
from mloop.store._serving_base import ServingStoreMixin
from mloop.store._tokens_base import TokenStoreMixin
from mloop.store._triggers_base import TriggerStoreMixin
from mloop.store._webhooks_base import WebhookStoreMixin

__all__ = ["MAX_RESULTS_LIMIT", "NewRun", "Store", "downsample_minmax"]


class Store(
    RunStoreMixin,
    RegistryStoreMixin,
    WebhookStoreMixin,
    MonitorStoreMixin,
    EventStoreMixin,
    InferenceStoreMixin,
    DeploymentStoreMixin,
    CheckStoreMixin,
    PipelineStoreMixin,
    TriggerStoreMixin,
    MediaStoreMixin,
    ServingStoreMixin,
    TokenStoreMixin,
    abc.ABC,
):
    """Metadata persistence: every part of the contract, one object."""

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release connections. Idempotent."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_deadline(self, deadline: float | None) -> contextlib.AbstractContextManager[None]:
        """Within the block, writes on this thread wait for locks no later than ``deadline``.

        ``deadline`` is a :func:`time.monotonic` time; past it a write raises
        :class:`~mloop.errors.StoreUnavailableError` at once. This is how ``finish()`` honours its
        flush timeout. Backends without lock waits need not override it.
        """
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ following the log
    def follow(
        self,
        name: str,
        *,
        types: Sequence[str] | None = None,
        subject: str | None = None,
        start: Literal["end", "beginning"] = "end",
        batch_size: int = 100,
        min_wait_s: float = 0.01,
        max_wait_s: float = 1.0,
    ) -> Follower:
        """A consumer of the log with the durable cursor ``name`` (created at ``start`` if new).

        See :class:`~mloop.store.Follower`: at-least-once delivery, the cursor advanced only after
        the handler returns, resumed from the cursor after a crash.
        """
        return Follower(
            self,
            name,
            types=types,
            subject=subject,
            start=start,
            batch_size=batch_size,
            min_wait_s=min_wait_s,
            max_wait_s=max_wait_s,
        )
