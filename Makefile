# Two entry points a fresh machine needs: `make demo` and `make test`.
# Both create (or reuse) the virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-quick bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlops-nb demo

# Two workers (pytest-xdist), a test file each at a time, the longest files first (tests/conftest.py): the
# suite mostly waits on kernels, servers and browsers.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

test-quick: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_registry.py
	$(BIN)/python benchmarks/bench_magics.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_kernels.py
	$(BIN)/python benchmarks/bench_drift.py
	$(BIN)/python benchmarks/bench_drift_agreement.py
	$(BIN)/python benchmarks/bench_triggers.py
	$(BIN)/python benchmarks/bench_ploomber.py
	$(BIN)/python benchmarks/bench_dask.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_monitor.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_serve_features.py

clean:
	rm -rf $(VENV) demo .pytest_cache
