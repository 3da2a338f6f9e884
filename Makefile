# Every target creates or reuses .venv and installs what it needs, so each works first on a fresh clone.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
MUTATION_STAMP := $(VENV)/.installed-mutation

.PHONY: demo test check bench mutation venv clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 (see README)"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# PyTorch is an optional extra; where the machine ships its CPU wheel on disk, tests use it (no download).
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl))

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ".[dev]"
	$(if $(TORCH_WHEEL),$(PY) -m pip install -q "$(TORCH_WHEEL)")
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) examples/quickstart.py
	$(PY) examples/loop_demo.py

# Two workers (pytest-xdist; the suite is sized for 2 cores): PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff format --check src tests bench examples tools
	$(VENV)/bin/ruff check src tests bench examples tools
	$(VENV)/bin/mypy src/mloop
	$(VENV)/bin/lint-imports

$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(PY) -m pip install -q -r bench/requirements.txt
	@touch $(BENCH_STAMP)

# Each benchmark installs its peer (MLflow, Evidently) into its own env under bench/ and prints ratios.
bench: $(BENCH_STAMP)
	$(PY) bench/tracking.py $(BENCH_ARGS)
	$(PY) bench/registry.py
	$(PY) bench/artifacts.py --mb 1000
	$(PY) bench/drift.py
	$(PY) bench/profiles.py
	$(PY) bench/profiles_scale.py
	$(PY) bench/serving.py
	$(PY) bench/gates.py
	$(PY) bench/server.py
	$(PY) bench/startup.py
	$(PY) bench/pipelines.py

$(MUTATION_STAMP): $(STAMP)
	$(PY) -m pip install -q "mutmut>=3.8,<4"
	@touch $(MUTATION_STAMP)

# Mutation testing of the core modules, each against its own tests (not part of CI; run it before
# resolving an issue that touches one of them). MODULES="store/_filter.py ..." for a subset.
mutation: $(MUTATION_STAMP)
	$(PY) tools/mutation.py $(MODULES)

clean:
	rm -rf $(VENV) .mloop .mutation .pytest_cache .mypy_cache .ruff_cache
