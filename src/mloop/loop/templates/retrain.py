"""The standard retraining pipeline: copy it, edit it, point a trigger at it.

    mloop loop template retrain.py        # writes this file where you want it

gather -> validate -> train -> check -> promote, each a ``@step``:

1. **gather** the recent traffic of a deployment from its inference log, the labelled part of it
   (labels posted to ``/feedback`` or :func:`mloop.log_labels`), and the training history (a
   table with the features and the label). A share of the recent labelled rows is held out: the
   candidate and the champion are compared on it, on what production looks like now.
2. **validate** the recent traffic against the history with the monitoring engine's quality
   checks. A broken feature (a column missing, empty, constant, suddenly missing values or
   infinities, unseen categories) **blocks training**: a model trained on it would learn the
   fault and hide it. The block is an event (``training_blocked``) naming the columns and checks,
   and the run fails at this step. Values outside the training range do not block: that is drift,
   which is what a retrain is for.
3. **train** a scikit-learn model on the history and the recent labelled rows (recent rows can
   weigh more: ``history_weight``, ``half_life_ms``), log it with its training data and its
   holdout metrics, and register it as a new version of ``model``.
4. **check** the candidate against the champion on the holdout under the gate policy
   (``mloop.yaml``, see :mod:`mloop.gates`): the check report is stored with the version.
5. **promote** it (``champion`` by default) when the check passed; otherwise record why not
   (``promotion_refused``, with the failing checks). A server that follows the alias
   (``mloop serve models:/<model>@champion``) hot-swaps to the new version by itself.

Every decision lands in the event log with its reasons: the check report (``report_attached``),
the version (``version_registered``), the alias move (``alias_set``), a block or a refusal. The
steps use the environment's store and artifact store (``MLOOP_HOME``, ``MLOOP_STORE_URI``, ...),
as ``mloop pipelines run`` does.

Run it by hand::

    from retrain import retrain
    retrain.run(model="churn", deployment="churn", history="train.parquet")

or from the agent (:mod:`mloop.loop`), which passes a ``trigger`` describing the alert: the
recent span then ends where the alerting window ended.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
import pandas as pd

import mloop
from mloop.gates import check_model, promote
from mloop.inference import read_inference_log
from mloop.monitoring import quality_report
from mloop.pipelines import pipeline, step

# The quality checks that mean "a feature is broken" (see mloop.monitoring.quality_report).
# ``out_of_range`` is not one of them: a shifted feature leaves the training range without being
# broken, and retraining on it is the point.
BLOCKING_CHECKS = frozenset(
    {"column_missing", "type", "empty", "constant", "missing_share", "non_finite",
     "unseen_categories"}
)  # fmt: skip


class TrainingBlockedError(RuntimeError):
    """The recent data failed a blocking quality check: no model is trained on it."""


def make_model(seed: int) -> Any:
    """The estimator to train: edit this. HistGradientBoosting handles missing values, so a
    request with a missing feature is answered (and logged, where the monitors see it)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=60, learning_rate=0.15, max_leaf_nodes=15, random_state=seed
    )


def _store() -> Any:
    return mloop.Registry().store


def _held_out(request_ids: pd.Series, share: float, seed: int) -> np.ndarray:
    """A stable split: a row's side depends on its request id (and the seed), not on the order."""
    digest = [hashlib.sha256(f"{seed}:{r}".encode()).digest() for r in request_ids.astype(str)]
    u = np.array([int.from_bytes(d[:8], "big") for d in digest], dtype=np.float64) / 2.0**64
    return u < share


@step(outputs=("train", "holdout", "recent"), cache=False)
def gather(
    deployment: str,
    history: str,
    label: str,
    since_ms: int,
    until_ms: int,
    holdout_share: float,
    history_weight: float,
    half_life_ms: int,
    seed: int,
    check_since_ms: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Training rows (history and recent labelled traffic, with weights), the holdout, and the
    requests served since ``check_since_ms`` as they came in (what validation checks)."""
    hist = pd.read_parquet(history)
    if label not in hist.columns:
        raise ValueError(f"the history {history!r} has no label column {label!r}.")
    features = [c for c in hist.columns if c != label]
    log = read_inference_log(deployment, since=since_ms, until=until_ms, with_labels=True)
    recent = log.to_pandas() if log.num_rows else pd.DataFrame(columns=["request_id", "ts", label])
    for c in features:
        if c not in recent.columns:
            recent[c] = np.nan
    labelled = recent[recent["label"].notna()] if "label" in recent else recent.iloc[:0]
    labelled = labelled.rename(columns={"label": label}) if label != "label" else labelled
    hist = hist.assign(sample_weight=float(history_weight), origin="history")
    if len(labelled):
        out = _held_out(labelled["request_id"], holdout_share, seed)
        epoch = pd.Timestamp(0, tz="UTC")
        ts = (pd.to_datetime(labelled["ts"], utc=True) - epoch) // pd.Timedelta(milliseconds=1)
        age = (until_ms - ts.to_numpy()).clip(min=0)
        weight = 0.5 ** (age / half_life_ms) if half_life_ms > 0 else np.ones(len(labelled))
        fresh = labelled[[*features, label]].assign(sample_weight=weight, origin="recent")
        train = pd.concat([hist, fresh[~out]], ignore_index=True)
        holdout = labelled.loc[out, [*features, label]].reset_index(drop=True)
    else:  # nothing labelled yet (a first version): hold out a share of the history
        out = np.random.default_rng(seed).random(len(hist)) < holdout_share
        train, holdout = hist[~out].reset_index(drop=True), hist.loc[out, [*features, label]]
        holdout = holdout.reset_index(drop=True)
    if len(recent):
        epoch = pd.Timestamp(0, tz="UTC")
        at = (pd.to_datetime(recent["ts"], utc=True) - epoch) // pd.Timedelta(milliseconds=1)
        recent = recent[at.to_numpy() >= check_since_ms]
    served = recent[features].reset_index(drop=True)
    train[label] = train[label].astype(hist[label].dtype)
    holdout[label] = holdout[label].astype(hist[label].dtype)
    return train, holdout, served


@step(cache=False)
def validate(
    recent: pd.DataFrame, history: str, label: str, model: str, since_ms: int, until_ms: int
) -> dict[str, Any]:
    """Quality of the recent traffic against the history; a blocking failure stops the run."""
    if not len(recent):
        return {"passed": True, "rows": 0, "failed": []}
    reference = pd.read_parquet(history).drop(columns=[label])
    report = quality_report(reference, recent, columns=list(reference.columns))
    failed = [c for c in report.failed if c.check in BLOCKING_CHECKS]
    if not failed:
        return {"passed": True, "rows": len(recent), "failed": []}
    reasons = [
        {"column": c.column, "check": c.check, "value": c.value, "message": c.message}
        for c in failed
    ]
    _store().append_event(
        "training_blocked",
        f"models/{model}",
        payload={
            "model": model,
            "reason": "the recent data failed its quality checks",
            "failed": reasons,
            "columns": sorted({str(c.column) for c in failed}),
            "rows": len(recent),
            "since_ms": since_ms,
            "until_ms": until_ms,
        },
    )
    said = "; ".join(f"{c.column}: {c.message or c.check}" for c in failed[:5])
    raise TrainingBlockedError(f"training blocked by data quality: {said}")


@step(cache=False)
def train(
    train: pd.DataFrame, holdout: pd.DataFrame, quality: dict, model: str, label: str, seed: int
) -> dict[str, Any]:
    """Fit the estimator, log it with its data and holdout metrics, register a version."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    features = [c for c in train.columns if c not in (label, "sample_weight", "origin")]
    est = make_model(seed)
    est.fit(train[features], train[label], sample_weight=train["sample_weight"])
    run = mloop.active_run()
    metrics: dict[str, float] = {}
    if len(holdout):
        y = holdout[label]
        metrics["holdout_accuracy"] = float(accuracy_score(y, est.predict(holdout[features])))
        if y.nunique() == 2 and hasattr(est, "predict_proba"):
            score = est.predict_proba(holdout[features])[:, 1]
            metrics["holdout_roc_auc"] = float(roc_auc_score(y, score))
    if run is not None:
        run.log_dataset(train[[*features, label]], name="train")
        run.log({**metrics, "train_rows": float(len(train))})
    # The example's first row is missing everywhere, so the signature lets features be missing:
    # a broken feature still reaches the inference log, where the monitors see it.
    example = train[features].head(5).astype("float64").copy()
    example.iloc[0] = np.nan
    version = mloop.log_model(est, model, run=run, input_example=example)
    if getattr(version, "pending", False):  # spooled: the store is out of reach
        raise RuntimeError(f"the store is out of reach: {model}'s new version is only spooled.")
    number = int(getattr(version, "version", 0))
    return {"version": number, "metrics": metrics, "rows": len(train)}


@step(cache=False)
def check(candidate: dict, holdout: pd.DataFrame, model: str, label: str, policy: Any) -> dict:
    """The gate: the candidate against the champion on the holdout, under the policy."""
    report = check_model(
        f"models:/{model}/{candidate['version']}", data=holdout, target=label, policy=policy
    )
    failing = [c for c in report.checks if c.blocking]
    return {
        "passed": bool(report.passed),
        "report_id": report.id,
        "baseline_version": report.baseline_version,
        "failed": [f"{c.name}: {c.summary}" for c in failing],
    }


@step(cache=False)
def promote_if_passed(
    verdict: dict, candidate: dict, model: str, alias: str, policy: Any
) -> dict[str, Any]:
    """Move the alias to the candidate on a passing check; record the refusal otherwise."""
    version = int(candidate["version"])
    if verdict["passed"]:
        done = promote(model, version, to=alias, policy=policy, watch=False)
        return {
            "promoted": True,
            "version": version,
            "previous": done.previous_version,
            "metrics": candidate["metrics"],
        }
    _store().append_event(
        "promotion_refused",
        f"models/{model}",
        payload={
            "model": model,
            "version": version,
            "alias": alias,
            "champion": verdict["baseline_version"],
            "report_id": verdict["report_id"],
            "reason": "the check against the champion failed",
            "failed": verdict["failed"],
        },
    )
    return {
        "promoted": False,
        "version": version,
        "previous": verdict["baseline_version"],
        "metrics": candidate["metrics"],
    }


@pipeline(name="retrain")
def retrain(
    *,
    model: str,
    deployment: str,
    history: str,
    label: str = "label",
    recent_ms: int = 6 * 3600 * 1000,
    until_ms: int | None = None,
    holdout_share: float = 0.3,
    history_weight: float = 1.0,
    half_life_ms: int = 0,
    alias: str = "champion",
    policy: str | None = None,
    seed: int = 0,
    trigger: dict | None = None,
) -> Any:
    """Retrain ``model`` on ``history`` plus the last ``recent_ms`` of ``deployment``'s labelled
    traffic, and promote the candidate to ``alias`` if it passes its check.

    Parameters
    ----------
    model : str
        The registered model (its ``alias`` is what serving follows).
    deployment : str
        Whose inference log holds the recent traffic (a deployment, or the served model's name).
    history : str
        A Parquet file of training data: the features and ``label``.
    recent_ms : int
        How far back the recent span reaches from its end.
    until_ms : int, optional
        The end of the recent span (ms since the epoch). Default: the end of the alerting window
        when the agent fired the run (``trigger["window_end_ms"]``), else now.
    holdout_share : float
        The share of recent labelled rows held out for the check (of the history when none).
    history_weight, half_life_ms :
        Sample weight of a history row; a recent row weighs ``0.5 ** (age / half_life_ms)``
        (1 when ``half_life_ms`` is 0).
    policy : str, optional
        The gate policy file (default ``./mloop.yaml`` when it exists, else the default policy).
    trigger : dict, optional
        Set by the agent: what fired this run.
    """
    end = until_ms
    if end is None and trigger and trigger.get("window_end_ms") is not None:
        end = int(trigger["window_end_ms"])
    if end is None:
        end = int(time.time() * 1000)
    since = end - int(recent_ms)
    # Validate the traffic the alert is about (its window), else the whole recent span: a
    # feature that broke in the last window is diluted by the healthy windows before it.
    check_since = since
    if trigger and trigger.get("window_start_ms") is not None:
        check_since = max(since, int(trigger["window_start_ms"]))
    rows, holdout, recent = gather(
        deployment, history, label, since, end, holdout_share, history_weight, half_life_ms,
        seed, check_since,
    )  # fmt: skip
    quality = validate(recent, history, label, model, check_since, end)
    candidate = train(rows, holdout, quality, model, label, seed)
    verdict = check(candidate, holdout, model, label, policy)
    return promote_if_passed(verdict, candidate, model, alias, policy)
