"""A run attached from another process (what a pipeline step on a worker logs into): it is the
active run for the block, its steps continue after the stored ones, leaving the block flushes what
was logged, and its status stays what its owner makes it."""

from __future__ import annotations

import pytest

import mloop
from mloop.config import Settings
from mloop.errors import InvalidInputError, NotFoundError
from mloop.store import open_store
from mloop.tracking import active_run, attached_run


def test_an_attached_run_logs_without_owning_the_status(settings: Settings) -> None:
    owner = mloop.start_run(project="p", settings=settings, system_metrics=False)
    owner.log({"loss": 1.0})
    owner.flush()
    other = open_store(settings)  # as a worker process would open it
    with attached_run(owner.id, settings=settings) as worker:
        assert active_run() is worker and worker.id == owner.id
        mloop.log({"loss": 0.5})  # the fluent API logs there
        worker.log({"rows": 3})
    assert active_run() is owner  # detached: the owner is the active run again
    stored = other.get_run(owner.id)
    assert stored.status == "running" and stored.end_ms is None  # the owner's to finish
    assert stored.metrics["loss"].last == 0.5 and stored.metrics["loss"].step == 1
    assert stored.metrics["rows"].step == 2
    owner.finish("finished")
    assert other.get_run(owner.id).status == "finished"


def test_attaching_a_run_that_is_not_there_says_so(settings: Settings) -> None:
    with (
        pytest.raises(NotFoundError, match="does not exist"),
        attached_run("0" * 32, settings=settings),
    ):
        pass  # pragma: no cover
    with pytest.raises(InvalidInputError), attached_run("nope", settings=settings):
        pass  # pragma: no cover
