"""The policy file: every form it accepts, and errors that name the key and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mloop.gates import Policy, PolicyError, load_policy, parse_policy, policy_hash

FULL = """\
# the whole policy, every section
version: 1
target: churned
primary_metric: roc_auc
thresholds:
  - accuracy >= 0.85
  - log_loss <= 0.4
  - roc_auc: {threshold: 0.9, min_absolute_change: 0.001}
  - {metric: f1, min_relative_change: 0.01, greater_is_better: true}
non_regression:
  metrics: [roc_auc, accuracy]
  level: 0.01
  margin: 0.005
  require_better: false
  resamples: 2000
  seed: 7
slices:
  - {column: plan, metric: accuracy, max_drop: 0.03, min_rows: 50}
  - column: tenure
    bins: 5
data:
  reference: training
  schema: true
  missing: true
  max_missing_increase: 0.1
  drift: true
  max_drift_share: 0.3
signature: {allow_removed: true}
budgets: {p95_latency_ms: 20, package_size_mb: 50, peak_memory_mb: 400, requests: 100}
behaviour: {paths: [checks]}
post_deploy:
  endpoints: [http://127.0.0.1:8080]
  window_s: 30
  max_error_rate: 0.02
"""


def test_full_policy_reads_every_section() -> None:
    p = parse_policy(FULL)
    assert p.target == "churned" and p.primary_metric == "roc_auc"
    assert [(t.metric, t.threshold, t.greater_is_better) for t in p.thresholds] == [
        ("accuracy", 0.85, True),
        ("log_loss", 0.4, False),
        ("roc_auc", 0.9, None),
        ("f1", None, True),
    ]
    assert p.thresholds[2].min_absolute_change == 0.001
    assert p.thresholds[3].min_relative_change == 0.01
    nr = p.non_regression
    assert (nr.metrics, nr.level, nr.margin, nr.require_better, nr.resamples, nr.seed) == (
        ["roc_auc", "accuracy"],
        0.01,
        0.005,
        False,
        2000,
        7,
    )
    assert [(s.column, s.metric, s.max_drop, s.min_rows, s.bins) for s in p.slices] == [
        ("plan", "accuracy", 0.03, 50, 4),
        ("tenure", None, 0.02, 30, 5),
    ]
    assert p.data.schema_ is True and p.data.max_drift_share == 0.3
    assert p.signature.allow_removed is True
    assert p.budgets.p95_latency_ms == 20 and p.budgets.requests == 100
    assert p.behaviour.paths == ["checks"]
    assert p.post_deploy is not None and p.post_deploy.endpoints == ["http://127.0.0.1:8080"]
    assert p.post_deploy.window_s == 30 and p.post_deploy.max_error_rate == 0.02


def test_empty_file_is_the_default_policy() -> None:
    for text in ("", "# nothing\n", "{}"):
        p = parse_policy(text)
        assert p == Policy()
    p = Policy()
    # the default: the candidate must be significantly better, never significantly worse
    assert p.non_regression.enabled and p.non_regression.require_better
    assert p.non_regression.level == 0.05 and p.non_regression.margin == 0
    assert p.signature.enabled and p.data.enabled and p.post_deploy is None
    assert p.target == "label" and p.primary_metric is None


def test_threshold_mapping_form() -> None:
    p = parse_policy(
        "thresholds:\n  accuracy: 0.9\n  log_loss: {threshold: 0.3, greater_is_better: false}\n"
    )
    assert [(t.metric, t.threshold, t.greater_is_better) for t in p.thresholds] == [
        ("accuracy", 0.9, None),
        ("log_loss", 0.3, False),
    ]


def test_same_meaning_same_hash_and_any_change_changes_it() -> None:
    a = parse_policy("thresholds: ['accuracy >= 0.85']\nnon_regression: {margin: 0.01}\n")
    b = parse_policy(
        "# reordered, long forms\nnon_regression:\n  margin: 0.010\n  level: 0.05\n"
        "thresholds:\n  - {metric: accuracy, threshold: 0.85, greater_is_better: true}\n"
    )
    assert policy_hash(a) == policy_hash(b)
    c = parse_policy("thresholds: ['accuracy >= 0.85']\nnon_regression: {margin: 0.02}\n")
    assert policy_hash(c) != policy_hash(a)
    assert policy_hash(Policy()) == policy_hash(parse_policy(""))
    assert len(policy_hash(a)) == 64


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("non_regression:\n  margin: 0.01\n  levl: 0.1\n", 3, "non_regression.levl", "known here"),
        ("non_regression:\n  level: often\n", 2, "non_regression.level", "'often'"),
        ("non_regression:\n  level: 0.7\n", 2, "non_regression.level", "0.7"),
        ("thresholds:\n  - accuracy >= 0.85\n  - auc => 3\n", 3, "thresholds.1", "'auc => 3'"),
        ("thresholds:\n  - {metric: f1}\n", 2, "thresholds.0", "at least one of"),
        ("slices:\n  - metric: accuracy\n", 2, "slices.0.column", "is required"),
        (
            "budgets:\n  package_size_mb: 10\n  p95_latency_ms: -1\n",
            3,
            "budgets.p95_latency_ms",
            "greater than 0",
        ),
        ("data:\n  schema: maybe\n", 2, "data.schema", "'maybe'"),
        ("\n\ncolour: blue\n", 3, "colour", "known here: version, target"),
        ("version: 2\n", 1, "version", "2"),
    ],
)
def test_errors_name_the_key_and_the_line(text: str, line: int, key: str, words: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="policy.yaml")
    msg = str(info.value)
    assert msg.startswith(f"policy.yaml, line {line}: `{key}`"), msg
    assert words in msg


def test_every_error_is_listed() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("target: 3.5\nnon_regression: {level: x}\nbudgets: {requests: 1}\n")
    lines = str(info.value).splitlines()
    assert [line.split("`")[1] for line in lines] == [
        "target",
        "non_regression.level",
        "budgets.requests",
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: [1\n", "line 1: not valid YAML"),
        ("- 1\n- 2\n", "line 1: a policy is a mapping"),
        ("thresholds:\n  bad: [\n", "line 3: not valid YAML"),
        ("a: 1\n  b: 2\n", "line 2: not valid YAML"),
    ],
)
def test_not_a_policy(text: str, words: str) -> None:
    with pytest.raises(PolicyError, match="policy.yaml, " + words):
        parse_policy(text, source="policy.yaml")


def test_load_policy_from_file_default_and_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    policy, source = load_policy()
    assert policy == Policy() and source is None
    (tmp_path / "mloop.yaml").write_text("non_regression: {margin: 0.02}\n")
    policy, source = load_policy()
    assert policy.non_regression.margin == 0.02 and source == "mloop.yaml"
    other = tmp_path / "strict.yaml"
    other.write_text("non_regression:\n  level: 2\n")
    with pytest.raises(PolicyError, match=r"strict.yaml, line 2: `non_regression.level`"):
        load_policy(other)
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.yaml")
    # a PolicyError is an InvalidInputError (the CLI's exit 2) and a ValueError
    assert issubclass(PolicyError, ValueError)
