"""Importing skops (the first scikit-learn load or save of a process) leaves scikit-learn's
array-API adapters alone, and skops still trusts exactly the estimators scikit-learn lists."""

from __future__ import annotations

import importlib.util
import json

from _fresh_python import run_fresh

_SCRIPT = """
import json, sys
from mloop.registry.flavors import sklearn as flavor

sio = flavor._skops_io()
loaded = sorted(name for name in flavor._WALK_SKIPS if name in sys.modules)
torch_loaded = "torch" in sys.modules
finders_left = [f for f in sys.meta_path if type(f).__name__ == "_SkipInWalk"]

from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES
from skops.io._utils import get_type_name
from sklearn.utils import all_estimators

listed = [get_type_name(c) for _, c in all_estimators()]
listed = [n for n in listed if n.startswith("sklearn.")]
print(json.dumps({
    "loaded": loaded,
    "torch_loaded": torch_loaded,
    "finders_left": len(finders_left),
    "same_list": sorted(SKLEARN_ESTIMATOR_TYPE_NAMES) == sorted(listed),
    "n": len(SKLEARN_ESTIMATOR_TYPE_NAMES),
    "again": flavor._skops_io() is sio,
}))
"""


def test_skops_import_skips_the_array_api_adapters_and_lists_every_estimator(tmp_path) -> None:
    proc = run_fresh(_SCRIPT, tmp_path)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["finders_left"] == 0  # the guard is gone once skops is imported
    assert report["same_list"] and report["n"] > 100
    assert report["again"]
    if importlib.util.find_spec("torch") is not None:
        # With PyTorch installed, the walk would have imported it (~0.8 s).
        assert report["torch_loaded"] is False


def test_the_adapters_import_as_usual_after_skops(tmp_path) -> None:
    # The guard only covers skops' own import: scikit-learn can load its PyTorch adapter later.
    script = (
        "from mloop.registry.flavors import sklearn as flavor\n"
        "flavor._skops_io()\n"
        "import importlib\n"
        "try:\n"
        "    importlib.import_module('sklearn.externals.array_api_compat.torch')\n"
        "except ImportError as exc:\n"
        "    assert 'not imported while skops' not in str(exc), exc\n"
        "    print('no torch')\n"
        "else:\n"
        "    print('imported')\n"
    )
    proc = run_fresh(script, tmp_path)
    expected = "imported" if importlib.util.find_spec("torch") is not None else "no torch"
    assert proc.stdout.strip() == expected
