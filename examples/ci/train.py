"""Train a breast-cancer classifier, track the run and register a new version of ``cancer``.

This is the training step of the CI example: the workflow that ``mloop ci init github`` writes
runs it on every pull request and on ``main``, then checks the new version against the champion
(``mloop check``, under ``mloop.yaml``), reports on the pull request (``mloop ci report``) and,
on ``main``, promotes it (``mloop promote``). ``train_config.json`` is what a pull request
changes: the kind of model and its settings.

It also writes ``holdout.parquet``: the rows held out from training (the same split every
time), with the label in the ``label`` column (0 = malignant, 1 = benign), for the check.

Run it with ``python train.py`` (the store is ``./.mloop`` unless MLOOP_HOME or
MLOOP_STORE_URI say otherwise).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sklearn.base import ClassifierMixin
from sklearn.datasets import load_breast_cancer
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import mloop

MODEL = "cancer"
HERE = Path(__file__).resolve().parent


def load_data():  # type: ignore[no-untyped-def]
    """Features with plain names (``mean_radius``), the label as ``label``; a fixed split."""
    frame = load_breast_cancer(as_frame=True).frame
    frame.columns = [c.replace(" ", "_") for c in frame.columns]
    frame = frame.rename(columns={"target": "label"})
    train, holdout = train_test_split(frame, test_size=0.3, random_state=0, stratify=frame["label"])
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def build(config: dict) -> ClassifierMixin:  # type: ignore[type-arg]
    kind = config.get("model", "logistic_regression")
    if kind == "logistic_regression":
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=float(config.get("C", 1.0)), max_iter=1000)
        )
    if kind == "decision_tree":
        return DecisionTreeClassifier(max_depth=int(config.get("max_depth", 3)), random_state=0)
    if kind == "dummy":  # a model that learned nothing: what the gate is there to stop
        return DummyClassifier(strategy="prior")
    raise SystemExit(f"train_config.json: unknown model {kind!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=HERE / "train_config.json")
    parser.add_argument("--holdout", type=Path, default=Path("holdout.parquet"))
    args = parser.parse_args(argv)
    config = json.loads(args.config.read_text())

    train, holdout = load_data()
    holdout.to_parquet(args.holdout, index=False)
    features = [c for c in train.columns if c != "label"]

    with mloop.start_run(project="cancer-ci", config=config, system_metrics=False) as run:
        # The training data is the reference the check's data checks compare the holdout with.
        run.log_dataset(train, name="train")
        model = build(config).fit(train[features], train["label"])
        proba = model.predict_proba(holdout[features])[:, 1]
        run.log(
            {
                "holdout_roc_auc": roc_auc_score(holdout["label"], proba),
                "holdout_accuracy": accuracy_score(holdout["label"], proba >= 0.5),
            }
        )
        mloop.log_model(model, MODEL, run=run, input_example=train[features].head(5))


if __name__ == "__main__":
    main()
