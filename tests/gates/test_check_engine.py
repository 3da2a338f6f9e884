"""``check_model`` on real models and bundled datasets: better passes, worse fails, an
indistinguishable twin does not replace the champion, schema breaks fail naming the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _champions import Gallery, build_gallery
from sklearn import metrics as skm

from mloop.gates import Policy, check_model, parse_policy
from mloop.store import CheckReport


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Gallery:
    return build_gallery(tmp_path_factory.mktemp("gates") / "home")


def _check(
    g: Gallery, cand: str, base: str | None, data: object = None, **kw: object
) -> CheckReport:
    return check_model(
        g.uri(cand),
        baseline=None if base is None else g.uri(base),
        data=g.holdout if data is None else data,
        registry=g.registry,
        **kw,  # type: ignore[arg-type]
    )


def _status(report: CheckReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def test_clearly_better_candidate_passes(gallery: Gallery) -> None:
    r = _check(gallery, "logreg", "stump")
    assert r.passed, [c.summary for c in r.checks if c.blocking]
    nr = r.check("non_regression:roc_auc")
    assert nr.numbers["verdict"] == "better" and nr.numbers["method"] == "delong"
    # the numbers are the holdout's, computed independently
    g = gallery
    reg = g.registry
    X, y = g.holdout.drop(columns="label"), g.holdout["label"]
    cand = reg.load(g.uri("logreg")).raw.predict_proba(X)[:, 1]
    base = reg.load(g.uri("stump")).raw.predict_proba(X)[:, 1]
    assert nr.numbers["candidate"] == pytest.approx(skm.roc_auc_score(y, cand), abs=1e-12)
    assert nr.numbers["baseline"] == pytest.approx(skm.roc_auc_score(y, base), abs=1e-12)
    assert nr.numbers["ci_low"] > 0 and nr.numbers["confidence"] == pytest.approx(0.9)
    assert "significantly better" in nr.summary
    assert _status(r) == {
        "signature": "pass",
        "non_regression:roc_auc": "pass",
        "data:schema": "pass",
        "data:missing": "pass",
        "data:drift": "pass",
    }
    assert r.data["rows"] == len(g.holdout) and r.data["primary_metric"] == "roc_auc"
    assert len(r.extra["predictions"]["sample"]) == len(g.holdout)


def test_clearly_worse_candidate_fails(gallery: Gallery) -> None:
    r = _check(gallery, "stump", "logreg")
    assert not r.passed
    nr = r.check("non_regression:roc_auc")
    assert nr.status == "fail" and nr.numbers["verdict"] == "worse"
    assert nr.numbers["ci_high"] < 0
    assert "significantly worse at level 0.05" in nr.summary


def test_indistinguishable_twin_does_not_replace_the_champion(gallery: Gallery) -> None:
    r = _check(gallery, "twin", "logreg")
    nr = r.check("non_regression:roc_auc")
    assert nr.numbers["verdict"] == "no significant difference"
    assert nr.numbers["ci_low"] < 0 < nr.numbers["ci_high"] or nr.numbers["gain"] == 0
    assert nr.status == "fail" and "not significantly better" in nr.summary
    assert not r.passed
    # pure non-regression accepts it
    relaxed = parse_policy("non_regression: {require_better: false}\n")
    r2 = _check(gallery, "twin", "logreg", policy=relaxed, store=False)
    assert r2.passed and r2.check("non_regression:roc_auc").summary.endswith("no significant loss.")
    assert r2.policy_hash != r.policy_hash


def test_schema_breaking_candidate_fails_naming_the_columns(gallery: Gallery) -> None:
    r = _check(gallery, "narrow", "logreg")
    sig = r.check("signature")
    assert sig.status == "fail"
    assert "27 inputs no longer taken" in sig.summary and "mean_area" in sig.summary
    assert {d["column"] for d in sig.details} >= {"mean_area", "worst_radius"}


def test_candidate_that_needs_a_column_the_holdout_lacks(gallery: Gallery) -> None:
    r = _check(gallery, "needs_extra", "logreg")
    st = _status(r)
    assert st["signature"] == "fail" and "new_feature" in r.check("signature").summary
    assert st["predict"] == "fail" and "new_feature" in r.check("predict").summary
    assert "non_regression:roc_auc" not in st  # nothing to compare without predictions


def test_no_baseline_skips_comparisons(gallery: Gallery) -> None:
    r = _check(gallery, "logreg", None)
    assert r.baseline_uri is None and r.baseline_version is None
    st = _status(r)
    assert st["signature"] == "skip" and st["non_regression:roc_auc"] == "skip"
    assert r.passed


def test_thresholds_and_slices(gallery: Gallery) -> None:
    g = gallery
    hold = g.holdout.assign(
        size=np.where(
            g.holdout["mean_radius"] > np.median(g.holdout["mean_radius"]), "large", "small"
        )
    )
    pol = parse_policy(
        """
non_regression: {require_better: false}
thresholds: ["accuracy >= 0.9", "roc_auc >= 0.999"]
slices:
  - {column: size, metric: accuracy, max_drop: 0.05}
  - {column: mean_radius, metric: accuracy, bins: 4, min_rows: 10}
"""
    )
    r = _check(g, "slice_bug", "logreg", data=hold, policy=pol, store=False)
    st = _status(r)
    assert st["threshold:roc_auc"] == "fail" and "0.999" in r.check("threshold:roc_auc").summary
    sl = r.check("slice:size:accuracy")
    assert sl.status == "fail" and "size=large" in sl.summary
    rows = {d["segment"]: d for d in sl.details}
    y, X = hold["label"].to_numpy(), hold.drop(columns=["label", "size"])
    cand = g.registry.load(g.uri("slice_bug")).raw.predict(X)
    large = hold["size"].to_numpy() == "large"
    assert rows["size=large"]["candidate"] == pytest.approx(np.mean(cand[large] == y[large]))
    assert rows["size=small"]["status"] == "pass"
    binned = r.check("slice:mean_radius:accuracy")
    assert binned.numbers["segments"] == 4 and binned.status == "fail"
    assert sum(d["rows"] for d in binned.details) == len(hold)


def test_multiclass_uses_mcnemar_and_regression_the_bootstrap(gallery: Gallery) -> None:
    g = gallery
    r = check_model(
        g.uri("logreg", "wine"),
        baseline=g.uri("stump", "wine"),
        data=g.wine_holdout,
        registry=g.registry,
        store=False,
    )
    nr = r.check("non_regression:accuracy")
    assert nr.numbers["method"].startswith("mcnemar") and nr.numbers["verdict"] == "better"
    assert r.data["primary_metric"] == "accuracy"
    r = check_model(
        g.uri("stump", "diabetes"),
        baseline=g.uri("ridge", "diabetes"),
        data=g.diabetes_holdout,
        registry=g.registry,
        store=False,
    )
    nr = r.check("non_regression:rmse")
    assert nr.numbers["method"] == "paired-bootstrap" and nr.numbers["verdict"] == "worse"
    assert r.data["task"] == "regression" and not r.passed


def test_data_checks_catch_drift_missing_values_and_a_dropped_column(gallery: Gallery) -> None:
    g = gallery
    relaxed = Policy.model_validate({"non_regression": {"require_better": False}})
    shifted = g.holdout.copy()
    for c in ("mean_radius", "mean_texture", "mean_perimeter", "mean_area", "worst_radius"):
        shifted[c] = shifted[c] * 3.0
    r = _check(g, "logreg", "logreg", data=shifted, policy=relaxed, store=False)
    drift = r.check("data:drift")
    assert drift.status == "pass"  # 5 of 30 columns: under the 50% share
    assert {d["column"] for d in drift.details if d["drifted"]} >= {"mean_radius", "mean_area"}
    strict = Policy.model_validate(
        {"non_regression": {"require_better": False}, "data": {"max_drift_share": 0.1}}
    )
    r = _check(g, "logreg", "logreg", data=shifted, policy=strict, store=False)
    assert r.check("data:drift").status == "fail" and "mean_radius" in r.check("data:drift").summary
    holes = g.holdout.copy()
    holes.loc[holes.index[:100], "mean_texture"] = np.nan
    r = _check(g, "logreg", "logreg", data=holes, policy=relaxed, store=False)
    missing = r.check("data:missing")
    assert missing.status == "fail" and "mean_texture" in missing.summary


def test_report_is_stored_linked_and_announced(gallery: Gallery) -> None:
    g = gallery
    r = _check(g, "logreg", "stump")
    store = g.registry.store
    assert store.get_check_report(r.id) == r
    assert store.list_check_reports("cancer", version=g.versions["logreg"])[0].id == r.id
    events = store.list_events(
        model="cancer", types=["report_attached"], newest_first=True, limit=5
    )
    assert events[0].report_id == r.id and events[0].version == g.versions["logreg"]


def test_holdout_from_a_parquet_file_and_a_missing_target(gallery: Gallery, tmp_path: Path) -> None:
    from mloop.errors import InvalidInputError

    path = tmp_path / "holdout.parquet"
    gallery.holdout.rename(columns={"label": "y"}).to_parquet(path)
    r = _check(gallery, "logreg", "stump", data=str(path), target="y", store=False)
    assert r.passed and r.data["uri"] == str(path) and r.data["target"] == "y"
    with pytest.raises(
        InvalidInputError, match="no target column 'label'; its columns: mean_radius"
    ):
        _check(gallery, "logreg", "stump", data=str(path), store=False)
    with pytest.raises(InvalidInputError, match="must be a registered version"):
        check_model("runs:/abc/model", data=gallery.holdout, registry=gallery.registry)
    empty = pd.DataFrame({"label": [1, None]})
    with pytest.raises(InvalidInputError, match="1 missing values"):
        _check(gallery, "logreg", "stump", data=empty, store=False)


def test_the_champion_checked_against_itself_is_not_compared(gallery: Gallery) -> None:
    r = _check(gallery, "logreg", "logreg", store=False)
    nr = r.check("non_regression:roc_auc")
    assert nr.status == "skip" and "the candidate is the baseline" in nr.summary
    assert r.passed and r.check("data:drift").status == "pass"
