"""Loop quality: ``replay`` on each seeded scenario, against the goals of issue 15.

Each test replays a generated scenario through the real parts (the retraining template, the
serving app over HTTP, the monitors, the agent, the gate) and checks what the loop did. Detection
delays and false alarms are printed (``pytest -s``) for the closing note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import mloop
from mloop.loop import generate_scenario, replay

K = 1  # label delay, in windows
FEATURES = ["x0", "x1", "x2", "x3"]


def _window(folder: Path, w: int) -> pd.DataFrame:
    x = pd.read_parquet(folder / "windows" / f"w{w:03d}.parquet")
    y = pd.read_parquet(folder / "labels" / f"w{w:03d}.parquet")
    return x.merge(y, on="request_id")


def _accuracy(model: Any, frame: pd.DataFrame) -> float:
    return float((np.asarray(model.predict(frame[FEATURES])) == frame["label"].to_numpy()).mean())


def _run(folder: Path, kind: str, **kw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    spec = generate_scenario(kind, folder, seed=kw.pop("seed", 7), **kw)
    result = replay(folder, label_delay=K)
    assert result.summary["errors"] == 0
    assert [e["window"] for e in result.windows] == list(range(spec.n_windows))
    return result.summary | {"model": result.model}, result.windows


def _report(kind: str, change: int | None, windows: list[dict[str, Any]]) -> None:
    drift = [e["window"] for e in windows if e["drift_alert"]]
    fired = [e["window"] for e in windows if e["retrain_started"]]
    before = [w for w in drift if change is None or w < change]
    delay = None if change is None else next((w - change for w in drift if w >= change), None)
    print(
        f"\n[{kind}] drift alerts at {drift}, retrains at {fired}, false drift alarms "
        f"{len(before)}, detection delay (windows) {delay}"
    )


def _no_worse_promotion(folder: Path, model: str, windows: list[dict[str, Any]]) -> None:
    """Every promotion: the new champion is not worse than the one it replaced on the windows
    that followed (beyond noise: 2 points of accuracy on the pooled later windows)."""
    champion = 1
    for e in windows:
        new = e["promoted_version"]
        if new is None:
            continue
        later = [_window(folder, w) for w in range(e["window"] + 1, len(windows))]
        if later:
            data = pd.concat(later, ignore_index=True)
            old_acc = _accuracy(mloop.load_model(f"models:/{model}/{champion}"), data)
            new_acc = _accuracy(mloop.load_model(f"models:/{model}/{new}"), data)
            assert new_acc >= old_acc - 0.02, (e["window"], champion, old_acc, new, new_acc)
        champion = new


def test_no_change_40_windows_no_retrain_at_most_one_drift_alert(
    mloop_home: Path, tmp_path: Path
) -> None:
    summary, windows = _run(
        tmp_path / "s", "no_change", n_windows=40, rows_per_window=150, change_window=40
    )
    _report("no_change", None, windows)
    assert summary["drift_alerts"] <= 1
    assert summary["quality_alerts"] == 0
    assert summary["performance_alerts"] == 0
    assert summary["promotions"] == []
    assert summary["retrains"] <= summary["drift_alerts"]  # only a drift false alarm could fire
    assert all(e["serving_version"] == 1 for e in windows)


def test_small_shift_is_alerted_within_one_window(mloop_home: Path, tmp_path: Path) -> None:
    change = 3
    _summary, windows = _run(
        tmp_path / "s", "covariate_shift", n_windows=6, rows_per_window=150,
        change_window=change, shift_sd=0.5,
    )  # fmt: skip
    _report("covariate_shift 0.5 sd", change, windows)
    alerted = [e["window"] for e in windows if e["drift_alert"]]
    assert alerted and change <= alerted[0] <= change + 1
    assert "x0" in windows[alerted[0]]["drifted_columns"]
    assert not any(e["drift_alert"] for e in windows[:change])


def test_harmful_shift_is_fixed_by_a_promoted_retrain(mloop_home: Path, tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    change, n = 3, 13
    folder = tmp_path / "s"
    summary, windows = _run(
        folder, "covariate_shift", n_windows=n, rows_per_window=150, change_window=change,
        shift_sd=2.0,
    )  # fmt: skip
    _report("covariate_shift 2 sd", change, windows)
    assert windows[change]["drift_alert"] or windows[change + 1]["drift_alert"]
    assert summary["promotions"], summary
    _no_worse_promotion(folder, summary["model"], windows)
    # The reference: a model trained on post-change data only (4 windows), independently.
    post = pd.concat([_window(folder, w) for w in range(change, change + 4)], ignore_index=True)
    ref = HistGradientBoostingClassifier(random_state=0).fit(post[FEATURES], post["label"])
    final = windows[-1]["serving_version"]
    assert final != 1
    first = next(e["window"] for e in windows if e["serving_version"] == final)
    later = pd.concat([_window(folder, w) for w in range(first, n)], ignore_index=True)
    served = _accuracy(mloop.load_model(f"models:/{summary['model']}/{final}"), later)
    reference = _accuracy(ref, later)
    print(f"[covariate_shift 2 sd] served v{final}: {served:.3f}, reference {reference:.3f}")
    assert served >= 0.95 * reference


def test_shift_of_an_unused_feature_promotes_nothing_worse(
    mloop_home: Path, tmp_path: Path
) -> None:
    change = 3
    folder = tmp_path / "s"
    summary, windows = _run(
        folder, "irrelevant_shift", n_windows=8, rows_per_window=150, change_window=change,
        shift_sd=2.0,
    )  # fmt: skip
    _report("irrelevant_shift", change, windows)
    alerted = [e["window"] for e in windows if e["drift_alert"]]
    assert alerted and alerted[0] in (change, change + 1)
    assert windows[alerted[0]]["drifted_columns"] == ["x3"]
    assert summary["performance_alerts"] == 0
    _no_worse_promotion(folder, summary["model"], windows)


def test_concept_drift_is_caught_through_realized_performance(
    mloop_home: Path, tmp_path: Path
) -> None:
    change = 3
    folder = tmp_path / "s"
    summary, windows = _run(
        folder, "concept_drift", n_windows=9, rows_per_window=150, change_window=change
    )
    _report("concept_drift", change, windows)
    assert not any(e["data_drift"] for e in windows)  # same inputs: only labels tell
    alerted = [e["window"] for e in windows if e["performance_alert"]]
    assert alerted and alerted[0] == change  # window `change` is judged once its labels are in
    fired = [e["window"] for e in windows if e["retrain_started"]]
    assert fired and change <= fired[0] <= change + K + 1
    print(f"[concept_drift] performance alert on window {alerted[0]}, retrain at {fired[0]}")
    _no_worse_promotion(folder, summary["model"], windows)


@pytest.mark.parametrize("broken", ["missing", "constant"])
def test_a_broken_feature_alerts_and_blocks_training(
    mloop_home: Path, tmp_path: Path, broken: str
) -> None:
    change = 3
    summary, windows = _run(
        tmp_path / "s", "broken_feature", n_windows=6, rows_per_window=150,
        change_window=change, broken=broken, broken_share=0.5 if broken == "missing" else 1.0,
    )  # fmt: skip
    _report(f"broken_feature ({broken})", change, windows)
    assert windows[change]["quality_alert"] and "x2" in windows[change]["quality_columns"]
    assert not any(e["quality_alert"] for e in windows[:change])
    assert summary["promotions"] == []
    assert summary["blocked"] >= 1
    blocked = next(e for e in windows if e["retrain_blocked"])
    assert blocked["blocked_columns"] == ["x2"] and blocked["candidate_version"] is None
    events = mloop.Registry().store.read_events(types=["training_blocked"])
    assert events and events[0].payload["columns"] == ["x2"]


def test_gradual_drift_is_alerted_and_nothing_worse_is_promoted(
    mloop_home: Path, tmp_path: Path
) -> None:
    change = 3
    folder = tmp_path / "s"
    summary, windows = _run(
        folder, "gradual_drift", n_windows=10, rows_per_window=150, change_window=change,
        shift_sd=2.0, ramp_windows=4,
    )  # fmt: skip
    _report("gradual_drift", change, windows)
    alerted = [e["window"] for e in windows if e["drift_alert"]]
    assert alerted and change <= alerted[0] <= change + 3
    assert not any(e["drift_alert"] for e in windows[:change])
    _no_worse_promotion(folder, summary["model"], windows)
