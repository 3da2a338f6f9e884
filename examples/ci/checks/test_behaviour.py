"""Behavioural tests `mloop check` runs against the candidate (policy: ``behaviour.paths``).

Each ``test_*`` function receives what it names: ``model`` (the candidate), ``data`` (the
holdout's features), ``target`` (its labels: 0 = malignant, 1 = benign) and ``baseline`` (the
champion, or None).
"""

from __future__ import annotations

from mloop.gates import expect_direction, expect_invariance, expect_min_functionality, skip


def test_larger_tumours_do_not_look_more_benign(model, data):  # type: ignore[no-untyped-def]
    # Directional expectation: growing every size measure must not raise P(benign).
    size = ["mean_radius", "mean_perimeter", "mean_area", "worst_radius", "worst_perimeter"]

    def grow(df):  # type: ignore[no-untyped-def]
        df[size] = df[size] * 1.2
        df["worst_area"] = df["worst_area"] * 1.44
        return df

    expect_direction(model, data, grow, direction="decrease", output=1, min_share=0.95)


def test_a_negligible_change_changes_nothing(model, data):  # type: ignore[no-untyped-def]
    # Invariance: a measurement error far below the instruments' precision.
    def jitter(df):  # type: ignore[no-untyped-def]
        df["mean_fractal_dimension"] = df["mean_fractal_dimension"] * (1 + 1e-9)
        return df

    expect_invariance(model, data, jitter, max_changed_share=0.01)


def test_textbook_cases(model, data, target):  # type: ignore[no-untyped-def]
    # Minimum functionality: the ten largest tumours of the holdout are malignant, the ten
    # smallest benign, and any useful model gets nearly all of them right.
    if target is None:
        skip("the holdout has no labels")
    order = data["worst_area"].sort_values().index
    cases = data.loc[list(order[:10]) + list(order[-10:])]
    expected = target.loc[cases.index].to_numpy()
    expect_min_functionality(model, cases, expected, min_accuracy=0.9)


def test_never_much_worse_than_the_champion_on_large_tumours(model, baseline, data, target):  # type: ignore[no-untyped-def]
    # A slice the clinicians care about: the largest quarter of tumours.
    if baseline is None or target is None:
        skip("no champion to compare with")
    large = data[data["worst_area"] >= data["worst_area"].quantile(0.75)]
    y = target.loc[large.index].to_numpy()
    ours = (model.predict(large) == y).mean()
    theirs = (baseline.predict(large) == y).mean()
    assert ours >= theirs - 0.1, (
        f"accuracy on large tumours {ours:.3f} vs the champion's {theirs:.3f}"
    )
