"""Budgets on real models loaded through the registry: p95 single-row latency, package size on
disk, peak memory at load (in a fresh process), and the error paths. No assertion bounds how fast
mloop itself is: budgets are set absurdly high to pass and absurdly low to fail."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from _gate_models import breast_cancer, diabetes, log_and_load, settings_for
from sklearn.linear_model import LinearRegression, LogisticRegression

from mloop.errors import InvalidInputError
from mloop.gates import budget_checks
from mloop.registry._package import load_model_dir
from mloop.store._open import clear_store_cache

HUGE = 1e9  # no measurement on any machine comes near it
TINY = 1e-9


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    settings = settings_for(tmp_path_factory.mktemp("budgets") / "home")
    X, y = breast_cancer()
    clf = log_and_load(settings, LogisticRegression(max_iter=5000).fit(X, y), X, "cancer")
    Xd, yd = diabetes()
    reg = log_and_load(settings, LinearRegression().fit(Xd, yd), Xd, "diabetes")
    yield {"clf": clf, "X": X, "y": y, "reg": reg, "Xd": Xd}
    clear_store_cache()


def _by_name(results: list[Any]) -> dict[str, Any]:
    return {r.name: r for r in results}


def test_latency_within_and_over_budget(models: dict[str, Any]) -> None:
    clf = models["clf"]
    # the label column rides along: it is dropped as a server drops unknown columns
    rows = pa.Table.from_pandas(models["X"].assign(label=models["y"]), preserve_index=False)
    (within,) = budget_checks(clf.model, rows=rows, p95_latency_ms=HUGE, requests=50, uri=clf.uri)
    assert (within.name, within.kind, within.status) == ("budget:p95_latency_ms", "budget", "pass")
    n = within.numbers
    assert 0 < n["p50_ms"] <= n["p95_ms"] <= n["p99_ms"] <= n["max_ms"]
    assert (n["requests"], n["budget_ms"], n["seed"]) == (50, HUGE, 0)
    assert within.summary.startswith("p95 single-row latency ")
    assert "ms is within the 1,000,000,000 ms budget (p50 " in within.summary
    assert within.summary.endswith(", 50 requests).")
    assert (
        within.compared == f"p95 single-row latency of {clf.uri} against a 1,000,000,000 ms budget"
    )
    assert len(within.details) == 5 and all(0 <= d["row"] < rows.num_rows for d in within.details)
    assert within.duration_ms > 0

    (over,) = budget_checks(clf.model, rows=rows, p95_latency_ms=TINY, requests=20)
    assert over.status == "fail" and over.blocking
    assert "ms exceeds the 1e-09 ms budget" in over.summary


def test_latency_errors_when_rows_do_not_fit_or_are_missing(models: dict[str, Any]) -> None:
    clf = models["clf"]
    wrong = pa.Table.from_pandas(models["Xd"], preserve_index=False)  # another dataset's columns
    (broken,) = budget_checks(clf.model, rows=wrong, p95_latency_ms=10.0)
    assert broken.status == "error" and broken.blocking
    assert broken.summary.startswith(
        "Could not measure p95_latency_ms: the model failed to predict a single holdout row "
        "(InvalidInputError: Input does not match the model signature"
    )
    assert "'mean radius'" in broken.summary
    empty = pa.Table.from_pandas(models["X"].head(0), preserve_index=False)
    (nothing,) = budget_checks(clf.model, rows=empty, p95_latency_ms=10.0)
    assert nothing.status == "error" and "no rows" in nothing.summary


def test_package_size_is_the_files_on_disk(models: dict[str, Any]) -> None:
    reg = models["reg"]
    root = Path(reg.model.path)
    sizes = {
        p.relative_to(root).as_posix(): p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    total = sum(sizes.values())
    biggest = max(sizes, key=lambda k: sizes[k])
    (size,) = budget_checks(reg.model, rows=pa.table({}), package_size_mb=HUGE, uri=reg.uri)
    assert size.name == "budget:package_size_mb" and size.status == "pass"
    assert size.numbers["bytes"] == total and size.numbers["files"] == len(sizes)
    assert size.numbers["size_mb"] == pytest.approx(total / 2**20)
    assert size.details[0] == {
        "file": biggest,
        "bytes": sizes[biggest],
        "share": sizes[biggest] / total,
    }
    assert f"({len(sizes)} files) is within the 1,000,000,000 MB budget" in size.summary
    assert f"the largest file is {biggest} (" in size.summary

    (over,) = budget_checks(reg.model, rows=pa.table({}), package_size_mb=total / 2**20 / 2)
    assert over.status == "fail" and " exceeds the " in over.summary
    # exactly at the budget is within it
    (edge,) = budget_checks(reg.model, rows=pa.table({}), package_size_mb=total / 2**20)
    assert edge.status == "pass"


@pytest.mark.no_mutation  # measured in a child process, which never sees a mutant
def test_peak_memory_at_load_in_a_fresh_process(models: dict[str, Any]) -> None:
    clf = models["clf"]
    results = budget_checks(
        clf.model,
        rows=pa.table({}),
        peak_memory_mb=TINY,
        package_size_mb=HUGE,
        uri=clf.uri,
    )
    assert [r.name for r in results] == ["budget:package_size_mb", "budget:peak_memory_mb"]
    memory = results[1]
    assert memory.status == "fail", memory.summary
    n = memory.numbers
    # loading a model allocates: at least the deserialised estimator, in practice the framework
    assert n["peak_mb"] > 0 and n["resident_mb"] > 0 and n["baseline_mb"] > 0
    assert n["peak_mb"] >= n["resident_mb"] - 1e-9
    assert n["method"] in ("vmhwm_reset", "vmhwm", "ru_maxrss")
    assert memory.summary.startswith("Peak memory added by loading the model ")
    assert "MB exceeds the 1e-09 MB budget (a fresh process, above its " in memory.summary
    assert memory.compared.startswith(f"peak memory added by loading {clf.uri}")
    if n["framework_import_mb"] is not None:
        assert 0 <= n["framework_import_mb"] <= n["peak_mb"] + 1e-9


@pytest.mark.no_mutation  # a child process
def test_a_corrupt_package_is_an_error_with_the_childs_stderr(
    models: dict[str, Any], tmp_path: Path
) -> None:
    copy = tmp_path / "package"
    shutil.copytree(models["clf"].model.path, copy)
    model = load_model_dir(copy)
    weights = copy / "model.skops"
    weights.write_bytes(weights.read_bytes() + b"tampered")
    (memory,) = budget_checks(model, rows=pa.table({}), peak_memory_mb=HUGE)
    assert memory.status == "error" and memory.blocking
    assert memory.summary.startswith(
        "Could not measure peak_memory_mb: loading the model in a fresh process failed (exit 1): "
        "mloop.registry._manifest.ModelIntegrityError: Model file 'model.skops' failed its "
        "integrity check"
    )
    assert "Traceback" in memory.details[0]["stderr_tail"]

    shutil.rmtree(copy)
    (size,) = budget_checks(model, rows=pa.table({}), package_size_mb=HUGE)
    assert size.status == "error" and "does not exist" in size.summary


@pytest.mark.no_mutation  # a child process
def test_a_load_that_outlives_its_timeout_is_an_error(models: dict[str, Any]) -> None:
    (memory,) = budget_checks(
        models["reg"].model, rows=pa.table({}), peak_memory_mb=HUGE, memory_timeout_s=0.001
    )
    assert memory.status == "error"
    assert memory.summary == (
        "Could not measure peak_memory_mb: loading the model in a fresh process did not finish "
        "within 0.001 s."
    )


def test_no_budget_no_result_and_bad_arguments(models: dict[str, Any]) -> None:
    model = models["reg"].model
    assert budget_checks(model, rows=pa.table({})) == []
    for bad in ({"p95_latency_ms": 0}, {"package_size_mb": -1.0}, {"peak_memory_mb": float("nan")}):
        with pytest.raises(InvalidInputError, match="must be a positive number"):
            budget_checks(model, rows=pa.table({}), **bad)
    with pytest.raises(InvalidInputError, match=r"`requests` must be an int >= 1; got 0"):
        budget_checks(model, rows=pa.table({}), p95_latency_ms=1.0, requests=0)
    with pytest.raises(InvalidInputError, match=r"`rows` must be a pyarrow\.Table"):
        budget_checks(model, rows=models["Xd"], p95_latency_ms=1.0)
