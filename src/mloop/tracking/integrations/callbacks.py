"""Log training metrics from a plain loop, Keras, Lightning or XGBoost into a run.

:class:`MetricsCallback` is framework-free: call it from any loop. The ``*_callback`` factories wrap
it in the base class each framework expects; the framework is imported only when its factory is
called, and a missing one raises :class:`~mloop.tracking.integrations.MissingDependencyError`
naming the package to ``pip install``.
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Mapping
from typing import Any, Protocol

from mloop.errors import InvalidInputError

from ._optional import require

__all__ = ["MetricsCallback", "keras_callback", "lightning_callback", "xgboost_callback"]

_log = logging.getLogger(__name__)


class _Run(Protocol):
    def log(self, metrics: dict[str, float], step: int | None = None) -> Any: ...


class MetricsCallback:
    """Log a dict of numbers per step or epoch, every ``log_every``-th index.

    Values may be Python or numpy numbers, or one-element arrays / tensors (anything with
    ``.item()``, e.g. a 0-d ``torch.Tensor``); other values (strings, bools, lists) are skipped,
    with one debug message per key. Use one axis per key: logging ``loss`` from both
    :meth:`on_step_end` and :meth:`on_epoch_end` puts two series on one step axis.

    Parameters
    ----------
    run : Run
        Anything with ``log(metrics, step=None)``.
    prefix : str, default ""
        Prepended to every key, e.g. ``"train/"``.
    log_every : int, default 1
        Log only when the step / epoch index is a multiple of it (indices 0, n, 2n, ...).

    Examples
    --------
    >>> class PrintRun:
    ...     def log(self, metrics, step=None):
    ...         print(step, metrics)
    >>> cb = MetricsCallback(PrintRun(), prefix="train/", log_every=2)
    >>> for epoch in range(3):
    ...     _ = cb.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "phase": "fit"})
    0 {'train/loss': 1.0}
    2 {'train/loss': 0.3333333333333333}
    """

    def __init__(self, run: _Run, *, prefix: str = "", log_every: int = 1) -> None:
        if not callable(getattr(run, "log", None)):
            raise InvalidInputError(
                f"`run` must have a `log(metrics, step=None)` method; got {type(run).__name__}."
            )
        if not isinstance(prefix, str):
            raise InvalidInputError(f"`prefix` must be a str; got {type(prefix).__name__}.")
        if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1:
            raise InvalidInputError(f"`log_every` must be an int >= 1; got {log_every!r}.")
        self.run = run
        self.prefix = prefix
        self.log_every = log_every
        self._skipped: set[str] = set()

    def on_step_end(self, step: int, logs: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Log ``logs`` at ``step`` if ``step`` is a multiple of ``log_every``.

        Returns
        -------
        dict of str to float
            What was logged (empty when this step is skipped).
        """
        return self._maybe_log(step, logs)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> dict[str, float]:
        """Log ``logs`` with ``step=epoch`` if ``epoch`` is a multiple of ``log_every``.

        Returns
        -------
        dict of str to float
            What was logged (empty when this epoch is skipped).
        """
        return self._maybe_log(epoch, logs)

    def log(self, logs: Mapping[str, Any] | None, step: int | None = None) -> dict[str, float]:
        """Convert ``logs`` to floats, prefix the keys and log them now, whatever ``log_every``.

        Returns
        -------
        dict of str to float
            What was logged; nothing is logged when no value is numeric.
        """
        metrics = self.to_metrics(logs)
        if metrics:
            self.run.log(metrics, step=step)
        return metrics

    def to_metrics(self, logs: Mapping[str, Any] | None) -> dict[str, float]:
        """The prefixed, float-valued dict :meth:`log` would log for ``logs``."""
        metrics: dict[str, float] = {}
        for key, value in (logs or {}).items():
            number = _as_float(value)
            if number is None:
                if key not in self._skipped:
                    self._skipped.add(key)
                    _log.debug("not logging %r: %s is not a number", key, type(value).__name__)
                continue
            metrics[f"{self.prefix}{key}"] = number
        return metrics

    def _maybe_log(self, index: int, logs: Mapping[str, Any] | None) -> dict[str, float]:
        if index % self.log_every:
            return {}
        return self.log(logs, step=int(index))


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "size", 1) in (1, None):
        try:
            # numpy arrays: .size; torch tensors: .numel(), and .item() raises if not one element.
            inner = item()
        except (ValueError, RuntimeError, TypeError):
            return None
        if isinstance(inner, numbers.Real) and not isinstance(inner, bool):
            return float(inner)
    return None


def keras_callback(run: _Run, *, prefix: str = "", log_every: int = 1) -> Any:
    """A ``keras.callbacks.Callback`` that logs Keras's epoch ``logs`` with ``step=epoch``.

    Parameters
    ----------
    run : Run
        The run to log into.
    prefix, log_every
        As for :class:`MetricsCallback`.

    Returns
    -------
    keras.callbacks.Callback
        Pass it to ``model.fit(..., callbacks=[...])``.

    Raises
    ------
    MissingDependencyError
        Keras is not installed (``pip install keras``).
    """
    keras = require("keras", pip="keras", feature="keras_callback")
    metrics_cb = MetricsCallback(run, prefix=prefix, log_every=log_every)

    class MloopKerasCallback(keras.callbacks.Callback):  # type: ignore[name-defined]
        def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
            metrics_cb.on_epoch_end(epoch, logs)

    return MloopKerasCallback()


def lightning_callback(run: _Run, *, prefix: str = "", log_every: int = 1) -> Any:
    """A Lightning ``Callback`` that logs ``trainer.callback_metrics`` at each epoch's end.

    Works with ``lightning`` (``lightning.pytorch``) or the older ``pytorch_lightning``. Metrics
    are logged with ``step=trainer.current_epoch``: at the end of a validation epoch, those the
    validation loop added or changed; at the end of a training epoch, the rest. Each (key, epoch)
    value is thus logged once, and nothing is logged during the sanity check.

    Parameters
    ----------
    run : Run
        The run to log into.
    prefix, log_every
        As for :class:`MetricsCallback`; ``log_every`` counts epochs.

    Returns
    -------
    lightning.pytorch.Callback
        Pass it to ``Trainer(callbacks=[...])``.

    Raises
    ------
    MissingDependencyError
        Neither ``lightning`` nor ``pytorch_lightning`` is installed (``pip install lightning``).
    """
    pl = require(
        "lightning.pytorch", "pytorch_lightning", pip="lightning", feature="lightning_callback"
    )
    metrics_cb = MetricsCallback(run, prefix=prefix, log_every=log_every)

    class MloopLightningCallback(pl.Callback):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self._before_validation: dict[str, float] = {}
            self._logged: dict[str, tuple[int, float]] = {}

        def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self._before_validation = metrics_cb.to_metrics(trainer.callback_metrics)

        def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if getattr(trainer, "sanity_checking", False):
                return
            now = metrics_cb.to_metrics(trainer.callback_metrics)
            changed = {
                k: v
                for k, v in now.items()
                if k not in self._before_validation or not _same(self._before_validation[k], v)
            }
            self._log(trainer, changed)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            self._log(trainer, metrics_cb.to_metrics(trainer.callback_metrics))

        def _log(self, trainer: Any, metrics: dict[str, float]) -> None:
            epoch = int(trainer.current_epoch)
            if epoch % metrics_cb.log_every:
                return
            fresh = {
                k: v
                for k, v in metrics.items()
                if k not in self._logged
                or self._logged[k][0] != epoch
                or not _same(self._logged[k][1], v)
            }
            if fresh:
                run.log(fresh, step=epoch)
                self._logged.update({k: (epoch, v) for k, v in fresh.items()})

    return MloopLightningCallback()


def xgboost_callback(run: _Run, *, prefix: str = "", log_every: int = 1) -> Any:
    """An ``xgboost.callback.TrainingCallback`` logging the latest eval metrics each iteration.

    Keys are XGBoost's own ``"<eval name>-<metric>"`` (e.g. ``"val-logloss"``), logged with
    ``step=iteration``. Under ``xgboost.cv`` each value is a (mean, std) pair: the mean is logged
    under that key and the std under ``"<key>-std"``.

    Parameters
    ----------
    run : Run
        The run to log into.
    prefix, log_every
        As for :class:`MetricsCallback`; ``log_every`` counts boosting rounds.

    Returns
    -------
    xgboost.callback.TrainingCallback
        Pass it to ``xgboost.train(..., callbacks=[...])`` or ``XGBModel(callbacks=[...])``.

    Raises
    ------
    MissingDependencyError
        XGBoost is not installed (``pip install xgboost``).
    """
    xgb_callback = require("xgboost.callback", pip="xgboost", feature="xgboost_callback")
    metrics_cb = MetricsCallback(run, prefix=prefix, log_every=log_every)

    class MloopXGBoostCallback(xgb_callback.TrainingCallback):  # type: ignore[name-defined]
        def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Any]) -> bool:
            logs: dict[str, Any] = {}
            for data, by_metric in evals_log.items():
                for metric, history in by_metric.items():
                    if not len(history):
                        continue
                    last = history[-1]
                    key = f"{data}-{metric}"
                    if isinstance(last, tuple):
                        logs[key], logs[f"{key}-std"] = last[0], last[1]
                    else:
                        logs[key] = last
            metrics_cb.on_step_end(epoch, logs)
            return False  # never ask XGBoost to stop

    return MloopXGBoostCallback()


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)  # NaN equals NaN here
