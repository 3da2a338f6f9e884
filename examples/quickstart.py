"""mloop quickstart: train several scikit-learn models, track everything, compare the runs, gate
the best one against the champion and promote it, then watch for drift.

Run with ``make demo`` (or ``python examples/quickstart.py``). Everything lands in ``./.mloop``
(override with MLOOP_HOME); no server is needed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import mloop
import mloop.config

PROJECT = "quickstart"


def load_data():  # type: ignore[no-untyped-def]
    data = load_breast_cancer(as_frame=True)
    frame = data.frame
    train, valid = train_test_split(frame, test_size=0.25, random_state=0, stratify=frame["target"])
    features = [c for c in frame.columns if c != "target"]
    return train, valid, features


def scores(model, X, y) -> dict[str, float]:  # type: ignore[no-untyped-def]
    proba = model.predict_proba(X)[:, 1]
    return {
        "val_acc": accuracy_score(y, proba >= 0.5),
        "val_auc": roc_auc_score(y, proba),
        "val_logloss": log_loss(y, np.clip(proba, 1e-7, 1 - 1e-7)),
    }


MODEL = "cancer-classifier"


def save_model(run: mloop.Run, model, example) -> None:  # type: ignore[no-untyped-def]
    """Package the model (flavor, signature from the example, pinned requirements) and register it."""
    mloop.log_model(model, MODEL, run=run, input_example=example)


def train_sgd(train, valid, features, *, alpha: float) -> str:  # type: ignore[no-untyped-def]
    config = {"model": "sgd-logistic", "alpha": alpha, "epochs": 30}
    with mloop.start_run(project=PROJECT, name=f"sgd-a{alpha:g}", config=config) as run:
        run.log_dataset(train, name="train")
        run.log_dataset(valid, name="valid", context="validation")
        scaler = StandardScaler().fit(train[features])
        Xt, Xv = scaler.transform(train[features]), scaler.transform(valid[features])
        clf = SGDClassifier(loss="log_loss", alpha=alpha, random_state=0)
        for _epoch in range(config["epochs"]):  # one metrics row per epoch
            clf.partial_fit(Xt, train["target"], classes=[0, 1])
            proba_t = clf.predict_proba(Xt)[:, 1]
            run.log(
                {
                    "train_logloss": log_loss(train["target"], np.clip(proba_t, 1e-7, 1 - 1e-7)),
                    **scores(clf, Xv, valid["target"]),
                }
            )
        model = make_pipeline(scaler, clf)
        run.summary["final_val_auc"] = roc_auc_score(
            valid["target"], model.predict_proba(valid[features])[:, 1]
        )
        save_model(run, model, valid[features].head())
    return run.id


def train_forest(train, valid, features, *, max_depth: int) -> str:  # type: ignore[no-untyped-def]
    config = {"model": "random-forest", "max_depth": max_depth, "n_estimators": 200}
    with mloop.start_run(project=PROJECT, name=f"rf-d{max_depth}", config=config) as run:
        run.log_dataset(train, name="train")
        rf = RandomForestClassifier(
            max_depth=max_depth, n_estimators=10, warm_start=True, random_state=0, n_jobs=1
        )
        for n in range(10, config["n_estimators"] + 1, 10):  # metrics as the forest grows
            rf.set_params(n_estimators=n)
            rf.fit(train[features], train["target"])
            run.log(scores(rf, valid[features], valid["target"]), step=n)
        run.set_tags({"family": "trees"})
        save_model(run, rf, valid[features].head())
    return run.id


def train_gbm(train, valid, features, *, learning_rate: float) -> str:  # type: ignore[no-untyped-def]
    config = {
        "model": "gradient-boosting",
        "learning_rate": learning_rate,
        "n_estimators": 150,
        "max_depth": 2,
    }
    with mloop.start_run(project=PROJECT, name=f"gbm-lr{learning_rate:g}", config=config) as run:
        run.log_dataset(train, name="train")
        gbm = GradientBoostingClassifier(
            learning_rate=learning_rate,
            n_estimators=config["n_estimators"],
            max_depth=2,
            random_state=0,
        ).fit(train[features], train["target"])
        for i, proba in enumerate(
            gbm.staged_predict_proba(valid[features])
        ):  # one row per boosting stage
            p = np.clip(proba[:, 1], 1e-7, 1 - 1e-7)
            run.log(
                {
                    "val_logloss": log_loss(valid["target"], p),
                    "val_acc": accuracy_score(valid["target"], p >= 0.5),
                },
                step=i,
            )
        run.log(scores(gbm, valid[features], valid["target"]), step=config["n_estimators"])
        run.set_tags({"family": "trees"})
        save_model(run, gbm, valid[features].head())
    return run.id


def cli(*args: str, ok_codes: tuple[int, ...] = (0,)) -> int:
    print(f"\n$ mloop {' '.join(args)}", flush=True)
    code = subprocess.run([sys.executable, "-m", "mloop", *args]).returncode
    if code not in ok_codes:
        raise SystemExit(f"`mloop {' '.join(args)}` failed with exit code {code}")
    return code


def monitor(train, valid, features, champion) -> None:  # type: ignore[no-untyped-def]
    """Production drifts: profile the training data once, score a shifted copy, check for drift."""
    reports = Path(mloop.config.Settings.from_env().home) / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    shifted = valid[features].copy()
    watched = features[:8]
    for col in ("mean radius", "mean texture", "mean perimeter", "mean area", "mean smoothness"):
        shifted[col] = shifted[col] * 1.25 + rng.normal(0, shifted[col].std() * 0.1, len(shifted))
    shifted["prediction"] = champion.predict(shifted[features])
    train[features].to_parquet(reports / "reference.parquet", index=False)
    shifted.to_parquet(reports / "current.parquet", index=False)
    cli("profile", str(reports / "reference.parquet"), "-o", str(reports / "reference.profile"))
    code = cli(
        "drift",
        str(reports / "reference.profile"),
        str(reports / "current.parquet"),
        "--columns",
        ",".join(watched),
        "--html",
        str(reports / "drift.html"),
        ok_codes=(0, 1),  # exit 1 = dataset drift: what a CI job or a retraining trigger keys on
    )
    verdict = "drift detected" if code == 1 else "no dataset drift"
    print(f"{verdict}; report: {reports / 'drift.html'}", flush=True)


def train_stump(train, valid, features) -> int:  # type: ignore[no-untyped-def]
    """A one-split tree: the modest first champion every later candidate has to beat."""
    with mloop.start_run(project=PROJECT, name="stump", config={"model": "stump"}) as run:
        run.log_dataset(train, name="train")
        stump = DecisionTreeClassifier(max_depth=1, random_state=0)
        stump.fit(train[features], train["target"])
        run.log(scores(stump, valid[features], valid["target"]))
        mv = mloop.log_model(stump, MODEL, run=run, input_example=valid[features].head())
    return int(mv.version)


def main() -> None:
    train, valid, features = load_data()
    stump = train_stump(train, valid, features)
    ids = [
        train_sgd(train, valid, features, alpha=1e-4),
        train_sgd(train, valid, features, alpha=1e-2),
        train_forest(train, valid, features, max_depth=3),
        train_forest(train, valid, features, max_depth=8),
        train_gbm(train, valid, features, learning_rate=0.1),
    ]
    client = mloop.Client()
    best = client.search_runs(
        PROJECT, "metrics.val_auc > 0.9", order_by=["metrics.val_auc DESC"], max_results=1
    ).items[0]
    print(
        f"tracked {len(ids)} runs; best by val_auc: {best.name} ({best.metrics['val_auc'].last:.4f})",
        flush=True,
    )
    cli(
        "runs",
        "list",
        PROJECT,
        "--metrics",
        "val_auc,val_acc,val_logloss",
        "--order-by",
        "metrics.val_auc DESC",
        "-n",
        "5",
    )
    cli("runs", "compare", *ids)

    # Model registry and the gate: every run registered a version. A first champion is promoted
    # through `mloop check` (no champion yet: data and signature checks only), then the best run's
    # version must beat it on the holdout, significantly, before `mloop promote` moves the alias.
    reg = mloop.Registry()
    version = reg.search_versions(f"name = '{MODEL}' and run_id = '{best.id}'").items[0]
    holdout = Path(mloop.config.Settings.from_env().home) / "reports" / "holdout.parquet"
    holdout.parent.mkdir(parents=True, exist_ok=True)
    valid.to_parquet(holdout, index=False)
    gate = ["--data", str(holdout), "--target", "target"]
    if not reg.store.list_aliases(MODEL):  # a fresh store: the stump is the first champion
        cli("check", "--candidate", f"models:/{MODEL}/{stump}", *gate)
        cli("promote", MODEL, str(stump), "--to", "champion")
    code = cli("check", "--candidate", f"models:/{MODEL}/{version.version}", *gate, ok_codes=(0, 1))
    if code == 0:
        cli("promote", MODEL, str(version.version), "--to", "champion")
    # and a worse candidate (the stump, against the new champion) fails its check; promote refuses
    cli("check", "--candidate", f"models:/{MODEL}/{stump}", *gate, ok_codes=(1,))
    cli("promote", MODEL, str(stump), "--to", "champion", ok_codes=(1,))
    champion = mloop.load_model(f"models:/{MODEL}@champion")  # hash-verified, signature-checked
    accuracy = float((champion.predict(valid[features]) == valid["target"]).mean())
    now = reg.store.get_alias(MODEL, "champion").version
    print(
        f"\nmodels:/{MODEL}@champion is v{now} ({best.name if now == version.version else 'kept'}); "
        f"validation accuracy {accuracy:.4f}",
        flush=True,
    )
    cli("models", "show", MODEL)
    cli("models", "lineage", MODEL, str(now))
    monitor(train, valid, features, champion)


if __name__ == "__main__":
    main()
