"""Gated promotion: only on a passing report under the current policy, atomically, overrides
recorded, stale reports refused."""

from __future__ import annotations

import pytest
from _champions import Gallery, build_gallery

from mloop.errors import ConflictError, InvalidInputError
from mloop.gates import PromotionRefusedError, check_model, parse_policy, promote


@pytest.fixture
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Gallery:
    # function scope: every test moves aliases
    return build_gallery(tmp_path_factory.mktemp("promote") / "home")


def _alias(g: Gallery, alias: str = "champion") -> int:
    return g.registry.store.get_alias("cancer", alias).version


def test_refused_without_a_report_then_promoted_on_a_passing_one(gallery: Gallery) -> None:
    g, reg = gallery, gallery.registry
    v_stump, v_logreg = g.versions["stump"], g.versions["logreg"]
    # the first champion: no baseline, so its check passes on data and signature checks alone
    with pytest.raises(PromotionRefusedError, match="has no check report under the current policy"):
        promote("cancer", v_stump, registry=reg)
    first = check_model(g.uri("stump"), data=g.holdout, registry=reg)
    assert first.passed and first.baseline_uri is None
    p = promote("cancer", v_stump, registry=reg)
    assert (p.version, p.previous_version, p.forced) == (v_stump, None, False)
    assert _alias(g) == v_stump
    # a better candidate: checked against the champion, promoted
    report = check_model(g.uri("logreg"), data=g.holdout, registry=reg)
    assert report.passed and report.baseline_version == v_stump
    p = promote("cancer", v_logreg, to="champion", registry=reg)
    assert p.report is not None and p.report.id == report.id and p.previous_version == v_stump
    assert _alias(g) == v_logreg
    moved = reg.store.list_events(model="cancer", types=["alias_set"], newest_first=True, limit=1)[
        0
    ]
    assert moved.report_id == report.id and moved.before == v_stump and moved.after == v_logreg


def test_refused_on_a_failing_report_naming_what_failed(gallery: Gallery) -> None:
    g, reg = gallery, gallery.registry
    reg.set_alias("cancer", "champion", g.versions["logreg"])
    bad = check_model(g.uri("stump"), data=g.holdout, registry=reg)
    assert not bad.passed
    with pytest.raises(PromotionRefusedError) as info:
        promote("cancer", g.versions["stump"], registry=reg)
    assert info.value.report_id == bad.id
    assert (
        "non_regression:roc_auc" in info.value.message
        and "significantly worse" in info.value.message
    )
    assert "--force --reason" in info.value.message
    assert _alias(g) == g.versions["logreg"]


def test_force_needs_a_reason_and_is_recorded(gallery: Gallery) -> None:
    g, reg = gallery, gallery.registry
    reg.set_alias("cancer", "champion", g.versions["logreg"])
    bad = check_model(g.uri("stump"), data=g.holdout, registry=reg)
    with pytest.raises(InvalidInputError, match="needs a `reason`"):
        promote("cancer", g.versions["stump"], registry=reg, force=True)
    p = promote(
        "cancer", g.versions["stump"], registry=reg, force=True, reason="incident 42: revert"
    )
    assert p.forced and _alias(g) == g.versions["stump"]
    ev = reg.store.list_events(model="cancer", types=["promotion_overridden"], limit=5)
    assert len(ev) == 1
    assert ev[0].reason == "incident 42: revert" and ev[0].report_id == bad.id
    assert ev[0].version == g.versions["stump"] and ev[0].alias == "champion"
    assert "failed" in ev[0].after["why_refused"]
    moved = reg.store.list_events(model="cancer", types=["alias_set"], newest_first=True, limit=1)[
        0
    ]
    assert moved.reason == "incident 42: revert"


def test_report_under_another_policy_does_not_count(gallery: Gallery) -> None:
    g, reg = gallery, gallery.registry
    reg.set_alias("cancer", "champion", g.versions["stump"])
    assert check_model(g.uri("logreg"), data=g.holdout, registry=reg).passed
    stricter = parse_policy("non_regression: {margin: 0.5}\n")
    with pytest.raises(PromotionRefusedError, match="no check report under the current policy"):
        promote("cancer", g.versions["logreg"], registry=reg, policy=stricter)
    promote("cancer", g.versions["logreg"], registry=reg)
    assert _alias(g) == g.versions["logreg"]


def test_stale_report_after_the_champion_moved(gallery: Gallery) -> None:
    g, reg = gallery, gallery.registry
    reg.set_alias("cancer", "champion", g.versions["stump"])
    relaxed = parse_policy("non_regression: {require_better: false}\n")
    assert check_model(g.uri("twin"), data=g.holdout, registry=reg, policy=relaxed).passed
    reg.set_alias("cancer", "champion", g.versions["logreg"])  # someone else promoted meanwhile
    with pytest.raises(
        PromotionRefusedError, match="compared with version 1, but cancer@champion is now version 2"
    ):
        promote("cancer", g.versions["twin"], registry=reg, policy=relaxed)


def test_concurrent_move_is_a_conflict_and_changes_nothing(gallery: Gallery) -> None:
    g, reg = gallery, gallery.registry
    reg.set_alias("cancer", "champion", g.versions["stump"])
    assert check_model(g.uri("logreg"), data=g.holdout, registry=reg).passed
    with pytest.raises(ConflictError):
        promote("cancer", g.versions["logreg"], registry=reg, expected_version=g.versions["twin"])
    assert _alias(g) == g.versions["stump"]


def test_promote_to_the_version_already_there_is_a_no_op(gallery: Gallery) -> None:
    g, reg = gallery, gallery.registry
    assert check_model(g.uri("stump"), data=g.holdout, registry=reg).passed
    promote("cancer", g.versions["stump"], registry=reg)
    n = len(reg.store.list_events(model="cancer", types=["alias_set"]))
    promote("cancer", g.versions["stump"], registry=reg)
    assert len(reg.store.list_events(model="cancer", types=["alias_set"])) == n
