"""A filter error points into the text the user typed, never into a string mloop built around it.

`mloop models versions NAME --filter ...` restricts to NAME without rewriting the user's filter, so
the reported position (and the quoted filter) are the user's, through the CLI and the SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

import mloop
from mloop.cli import get_app
from mloop.config import Settings
from mloop.errors import InvalidInputError
from mloop.registry import Registry
from mloop.store._open import clear_store_cache

runner = CliRunner()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in ("MLOOP_STORE_URI", "MLOOP_ARTIFACT_URI", "MLOOP_MODE", "MLOOP_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "h"))
    settings = Settings.from_env(flush_interval_s=0.05)
    X, y = load_iris(return_X_y=True, as_frame=True)
    for depth in (1, 3):
        with mloop.start_run(project="iris", settings=settings, system_metrics=False) as run:
            m = DecisionTreeClassifier(max_depth=depth, random_state=0).fit(X, y)
            run.log({"acc": m.score(X, y)})
            mloop.log_model(m, "iris", run=run)
    yield settings
    clear_store_cache()


# (user's filter, position of the offending token in it)
BAD = [
    ("bogus", 0),
    ("metrics.acc > 'x'", 14),
    ("flavor = 'sklearn' and nope > 1", 23),
    ("metrics.acc > 0.5 or version = 1", 18),
    ("metrics.acc >", 13),  # the end of the user's text, not of a longer string
    ("metrics.acc > 0.5 $", 18),
]


@pytest.mark.parametrize(("text", "pos"), BAD)
def test_cli_reports_the_position_in_the_users_filter(
    settings: Settings, text: str, pos: int
) -> None:
    res = runner.invoke(get_app(), ["models", "versions", "iris", "--filter", text])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())  # rich may wrap long lines
    assert f"position {pos}:" in out, out
    assert "name = 'iris'" not in out, out  # no trace of an internally built filter
    assert repr(text) in out or repr(text).replace("'", '"') in out, out


@pytest.mark.parametrize(("text", "pos"), BAD)
def test_sdk_reports_the_position_in_the_users_filter(
    settings: Settings, text: str, pos: int
) -> None:
    reg = Registry(settings=settings)
    with pytest.raises(InvalidInputError) as err:
        reg.search_versions(text, name="iris")
    assert err.value.details["position"] == pos
    assert f"position {pos}:" in err.value.message and repr(text) in err.value.message
    with pytest.raises(InvalidInputError) as err:
        reg.store.search_model_versions(text, name="iris")
    assert err.value.details["position"] == pos


def test_name_and_filter_combine_without_rewriting(settings: Settings) -> None:
    reg = Registry(settings=settings)
    assert [v.version for v in reg.search_versions(name="iris").items] == [2, 1]
    assert [v.version for v in reg.search_versions("version = 1", name="iris").items] == [1]
    assert reg.search_versions(name="other").items == []
    res = runner.invoke(
        get_app(), ["models", "versions", "iris", "--filter", "version = 2", "--json"]
    )
    assert res.exit_code == 0, res.output
    # A name that is not a model name is refused as a name, not as a broken filter.
    res = runner.invoke(get_app(), ["models", "versions", "x' or '1"])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "model name" in out and "filter" not in out, out
    with pytest.raises(InvalidInputError, match="model name"):
        reg.search_versions(name="x' or '1")
