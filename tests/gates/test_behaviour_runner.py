"""Behavioural tests as users write them: files discovered like pytest's, functions given
``model``/``data``/``target``/``baseline`` by parameter name, and each outcome (pass, fail, skip,
error) reported as a check result a reviewer can read."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _gate_models import breast_cancer, log_and_load, settings_for
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mloop.errors import InvalidInputError
from mloop.gates import (
    ModelUnderTest,
    behaviour_checks,
    discover_behaviour_tests,
    run_behaviour_tests,
)
from mloop.store import CheckResult
from mloop.store._open import clear_store_cache


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = settings_for(tmp_path_factory.mktemp("behaviour") / "home")
    X, y = breast_cancer()
    X = X.assign(patient=[f"patient-{i}" for i in range(len(X))])
    used = [c for c in X.columns if c != "patient"]
    first = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), used)], remainder="drop"),
        LogisticRegression(max_iter=5000),
    ).fit(X, y)
    second = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), used)], remainder="drop"),
        LogisticRegression(C=0.1, max_iter=5000),
    ).fit(X, y)
    ridge = make_pipeline(  # a classifier without probabilities
        ColumnTransformer([("num", StandardScaler(), used)], remainder="drop"), RidgeClassifier()
    ).fit(X, y)
    v1 = log_and_load(settings, first, X, "cancer")
    v2 = log_and_load(settings, second, X, "cancer")
    r1 = log_and_load(settings, ridge, X, "cancer-ridge")
    yield {
        "X": X,
        "y": y,
        "candidate": ModelUnderTest(v2.model, uri=v2.uri, version=v2.version),
        "baseline": ModelUnderTest(v1.model, uri=v1.uri, version=v1.version),
        "ridge": ModelUnderTest(r1.model, uri=r1.uri, version=r1.version),
    }
    clear_store_cache()


def _write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def _run(paths: list[Path], cancer: dict[str, Any], **kw: Any) -> dict[str, CheckResult]:
    results = behaviour_checks(
        paths,
        model=kw.pop("model", cancer["candidate"]),
        data=cancer["X"],
        target=cancer["y"],
        baseline=kw.pop("baseline", cancer["baseline"]),
    )
    assert all(r.kind == "behaviour" and r.duration_ms >= 0 for r in results)
    return {r.name: r for r in results}


CHECKS = """
    import asyncio
    import sys

    import pytest
    from helpers import THRESHOLD, flip_radius  # a neighbour of this file

    from mloop.gates import expect_direction, expect_invariance, skip


    def test_name_does_not_matter(model, data):
        expect_invariance(model, data, lambda df: df.assign(patient="Alex"))
        expect_invariance(model, data, lambda df: df.assign(patient=""))


    def test_radius_does_not_matter(model, data):
        expect_invariance(model, data, flip_radius)


    def test_bare_assert(model):
        assert model.version == 99


    def test_assert_with_message(model, baseline):
        assert model.version < baseline.version, f"v{model.version} is not older than v{baseline.version}"


    def test_fixtures_are_given(model, data, target, baseline):
        assert model.uri == "models:/cancer/2" and baseline.uri == "models:/cancer/1"
        assert len(data) == len(target) == 569 and THRESHOLD == 0.5
        data["mean radius"] = 0.0  # a test's own copy: the next test sees the holdout
        print("checked", len(data), "rows")


    def test_data_is_fresh_for_each_test(data):
        assert (data["mean radius"] > 0).all()


    def test_skips_itself(model):
        if not model.raw is None:
            skip("not applicable to this model")


    def test_pytest_style_skip():
        pytest.skip("skipped the pytest way")


    def test_pytest_style_fail():
        pytest.fail("failed the pytest way")


    def test_raises(data):
        return data["no such column"]


    def test_exits():
        sys.exit(3)


    def test_asks_for_something_unknown(model, holdout, features):
        pass


    def test_defaults_are_left_alone(model, threshold=THRESHOLD):
        assert threshold == 0.5


    async def test_async(model):
        await asyncio.sleep(0)
        assert model.version == 2


    def test_misuses_a_helper(model):
        expect_direction(model, model, lambda df: df)


    def helper_not_collected(model):
        raise AssertionError("never run")


    class TestNotCollected:
        def test_method(self):
            raise AssertionError("never run")
"""

HELPERS = """
    THRESHOLD = 0.5


    def flip_radius(df):
        df["worst radius"] = df["worst radius"] * 1.6
        return df


    def test_from_a_helper_module(model):
        raise AssertionError("imported, not defined, in the test file: not collected")
"""


def test_outcomes_messages_and_injection(tmp_path: Path, cancer: dict[str, Any]) -> None:
    _write(tmp_path / "checks" / "helpers.py", HELPERS)
    test_file = _write(tmp_path / "checks" / "test_behaviour.py", CHECKS)
    source = test_file.read_text().splitlines()

    def line_of(text: str) -> int:
        return next(i for i, ln in enumerate(source, 1) if text in ln)

    results = _run([tmp_path / "checks"], cancer)
    names = [n.split("::")[1] for n in results]
    assert names == [  # source order; helpers, classes and imported tests are not collected
        "test_name_does_not_matter",
        "test_radius_does_not_matter",
        "test_bare_assert",
        "test_assert_with_message",
        "test_fixtures_are_given",
        "test_data_is_fresh_for_each_test",
        "test_skips_itself",
        "test_pytest_style_skip",
        "test_pytest_style_fail",
        "test_raises",
        "test_exits",
        "test_asks_for_something_unknown",
        "test_defaults_are_left_alone",
        "test_async",
        "test_misuses_a_helper",
    ]
    r = {n.split("::")[1]: res for n, res in results.items()}
    assert set(results) == {f"behaviour:test_behaviour::{n}" for n in names}
    status = {n: res.status for n, res in r.items()}
    assert status == {
        "test_name_does_not_matter": "pass",
        "test_radius_does_not_matter": "fail",
        "test_bare_assert": "fail",
        "test_assert_with_message": "fail",
        "test_fixtures_are_given": "pass",
        "test_data_is_fresh_for_each_test": "pass",
        "test_skips_itself": "skip",
        "test_pytest_style_skip": "skip",
        "test_pytest_style_fail": "fail",
        "test_raises": "error",
        "test_exits": "error",
        "test_asks_for_something_unknown": "error",
        "test_defaults_are_left_alone": "pass",
        "test_async": "pass",
        "test_misuses_a_helper": "error",
    }

    passed = r["test_name_does_not_matter"]
    assert passed.summary == (
        "Behavioural test test_behaviour::test_name_does_not_matter passed (2 expectations held)."
    )
    assert passed.numbers == {"expectations": 2, "violations": 0}
    assert [d["expectation"] for d in passed.details] == ["invariance", "invariance"]
    assert passed.compared == "models:/cancer/2 on 569 holdout rows"

    # a helper's violation: where in the test file, how many rows, examples in the details
    caught = r["test_radius_does_not_matter"]
    where = f"test_behaviour.py:{line_of('expect_invariance(model, data, flip_radius)')}"
    assert caught.summary.startswith(
        f"Behavioural test test_behaviour::test_radius_does_not_matter failed at {where}: "
        "Invariance violated: predict changed on "
    )
    assert "of 569 rows" in caught.summary
    assert caught.numbers["failed_expectation"] == "invariance"
    assert caught.numbers["rows"] == 569 and caught.numbers["violating_rows"] > 0
    expectation, location = caught.details
    assert expectation["passed"] is False and len(expectation["examples"]) >= 1
    assert location["line"] == int(where.split(":")[1]) and location["file"] == str(test_file)

    # a bare assert shows its source line; a message is shown as written
    bare = r["test_bare_assert"]
    assert bare.summary == (
        "Behavioural test test_behaviour::test_bare_assert failed at "
        f"test_behaviour.py:{line_of('assert model.version == 99')}: assert model.version == 99"
    )
    assert r["test_assert_with_message"].summary.endswith(": v2 is not older than v1")
    assert r["test_pytest_style_fail"].summary.endswith(": failed the pytest way")

    assert r["test_skips_itself"].summary == (
        "Behavioural test test_behaviour::test_skips_itself was skipped: "
        "not applicable to this model."
    )
    assert r["test_pytest_style_skip"].summary.endswith("was skipped: skipped the pytest way.")

    raised = r["test_raises"]
    assert raised.summary == (
        "Behavioural test test_behaviour::test_raises raised KeyError: 'no such column' at "
        f"test_behaviour.py:{line_of('return data[')}."
    )
    assert "Traceback" in raised.details[-1]["traceback"]
    assert "SystemExit: 3" in r["test_exits"].summary

    unknown = r["test_asks_for_something_unknown"]
    assert unknown.summary == (
        "Behavioural test test_behaviour::test_asks_for_something_unknown asks for 'holdout', "
        "'features', which mloop does not provide; the available parameters are model, data, "
        "target, baseline."
    )
    assert "raised InvalidInputError: `data` must be rows" in r["test_misuses_a_helper"].summary

    # what a test prints is kept out of stdout and in the details
    printed = r["test_fixtures_are_given"].details[-1]
    assert printed == {"captured_output": "checked 569 rows\n"}


def test_a_model_without_probabilities_is_an_error_that_says_so(
    tmp_path: Path, cancer: dict[str, Any]
) -> None:
    _write(
        tmp_path / "test_direction.py",
        """
        from mloop.gates import expect_direction

        def test_radius_lowers_benign(model, data):
            expect_direction(model, data, lambda df: df, output=1)
        """,
    )

    (only,) = _run([tmp_path], cancer, model=cancer["ridge"]).values()
    assert only.status == "error"
    assert only.summary.startswith(
        "Behavioural test test_direction::test_radius_lowers_benign raised InvalidInputError: "
        "models:/cancer-ridge/1 (Pipeline) has no predict_proba: it does not give class "
        "probabilities."
    )


def test_import_errors_are_results_not_crashes(tmp_path: Path, cancer: dict[str, Any]) -> None:
    _write(tmp_path / "test_syntax.py", "def test_x(model):\n    return (\n")
    _write(tmp_path / "test_missing.py", "import no_such_module_for_mloop\n")
    _write(tmp_path / "test_module_skip.py", "from mloop.gates import skip\nskip('GPU only')\n")
    _write(tmp_path / "ok_test.py", "def test_ok(model):\n    pass\n")
    results = _run([tmp_path], cancer)
    assert list(results) == [  # sorted by path; *_test.py files count too
        "behaviour:ok_test::test_ok",
        "behaviour:test_missing",
        "behaviour:test_module_skip",
        "behaviour:test_syntax",
    ]
    missing = results["behaviour:test_missing"]
    assert missing.status == "error"
    assert missing.summary == (
        "Behavioural test file test_missing.py could not be imported: ModuleNotFoundError: "
        "No module named 'no_such_module_for_mloop' (line 1)."
    )
    syntax = results["behaviour:test_syntax"]
    assert syntax.status == "error" and "SyntaxError" in syntax.summary
    assert syntax.details[0]["file"] == str(tmp_path / "test_syntax.py")
    skipped = results["behaviour:test_module_skip"]
    assert skipped.status == "skip" and skipped.summary.endswith("was skipped: GPU only.")
    assert results["behaviour:ok_test::test_ok"].status == "pass"
    assert not any("mloop_behaviour_test_missing" in m for m in sys.modules)


def test_discovery_rules(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "test_one.py", "def test_a(): pass\ndef testb(): pass\n")
    _write(tmp_path / "b" / "test_one.py", "def test_c(): pass\n")
    _write(tmp_path / "b" / "deep" / "more_test.py", "def test_d(): pass\n")
    _write(tmp_path / ".hidden" / "test_hidden.py", "def test_h(): pass\n")
    _write(tmp_path / "venv" / "test_site.py", "def test_v(): pass\n")
    _write(tmp_path / "notes.py", "def test_n(): pass\n")
    _write(tmp_path / "a" / "conftest.py", "def test_not_a_test_file(): pass\n")

    found = discover_behaviour_tests([tmp_path])
    assert [t.name for t in found] == [  # same stems: the relative path tells them apart
        "behaviour:a/test_one::test_a",
        "behaviour:a/test_one::testb",
        "behaviour:more_test::test_d",
        "behaviour:b/test_one::test_c",
    ]
    assert [t.line for t in found] == [1, 2, 1, 1]
    # a file named explicitly is collected whatever its name; a path given twice counts once
    explicit = discover_behaviour_tests([tmp_path / "notes.py", str(tmp_path / "notes.py")])
    assert [t.name for t in explicit] == ["behaviour:notes::test_n"]
    assert discover_behaviour_tests([tmp_path / "notes.py", tmp_path / "b" / "deep"])[1].name == (
        "behaviour:more_test::test_d"
    )
    assert discover_behaviour_tests([tmp_path / ".hidden" / "test_hidden.py"])[0].function

    with pytest.raises(InvalidInputError, match="does not exist"):
        discover_behaviour_tests([tmp_path / "nope"])
    (tmp_path / "data.csv").write_text("x\n1\n")
    with pytest.raises(InvalidInputError, match=r"not a \.py file"):
        discover_behaviour_tests([tmp_path / "data.csv"])
    assert discover_behaviour_tests([tmp_path / "venv"]) != []  # named explicitly: searched
    empty = tmp_path / "empty"
    empty.mkdir()
    assert discover_behaviour_tests([empty]) == []


def test_runs_without_a_baseline_or_target_and_from_a_pyarrow_table(
    tmp_path: Path, cancer: dict[str, Any]
) -> None:
    import pyarrow as pa

    _write(
        tmp_path / "test_alone.py",
        """
        from mloop.gates import skip

        def test_needs_a_baseline(model, baseline):
            if baseline is None:
                skip("there is no champion yet")

        def test_sees_rows(data, target):
            assert target is None and list(data.columns)[-1] == "patient"
        """,
    )
    tests = discover_behaviour_tests([tmp_path])
    results = run_behaviour_tests(
        tests,
        model=cancer["candidate"].package,  # a bare package is wrapped
        data=pa.Table.from_pandas(cancer["X"], preserve_index=False),
    )
    assert [r.status for r in results] == ["skip", "pass"]
    assert results[0].summary.endswith("was skipped: there is no champion yet.")
    assert results[0].compared.startswith("the model at ")
    with pytest.raises(InvalidInputError, match="pandas DataFrame or a pyarrow Table"):
        run_behaviour_tests(tests, model=cancer["candidate"], data=[[1, 2]])
