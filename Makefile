# kerasopt: every target creates and reuses the virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export TF_USE_LEGACY_KERAS := 1

.PHONY: install demo test test-all lint clean bench horovod notebooks reliability reliability-long elastic

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel

# Reinstall when the package metadata changes.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/kerasopt fit configs/digits_cnn.yaml --overwrite

# Horovod 0.28.1 patched to build against TF 2.21 (Gloo, CPU); the wheel is cached in .cache/horovod.
# GPU clusters: HOROVOD_GPU_OPERATIONS=NCCL make horovod
horovod: install
	bash scripts/build_horovod.sh $(BIN)/python

# Plain `pytest`, never `python -m pytest`: the latter puts the repo root on
# sys.path and makes the top-level callbacks/ folder importable a second time.
test: install horovod
	$(BIN)/pytest -q -m "not slow and not elastic" --durations=30

test-all: install horovod
	$(BIN)/pytest -q

# The fault matrix (docs/RELIABILITY.md); the table of faults tried is printed at the end.
reliability: install horovod
	$(BIN)/pytest -q -m "not slow" tests/reliability

# Also the long SIGKILL loop: 25 kills (KERASOPT_KILL_LOOP_LONG=N for another count), about 10 minutes.
reliability-long: install horovod
	$(BIN)/pytest -q tests/reliability

# Elastic Horovod: a worker killed mid-epoch, the job goes on with fewer ranks, a new worker joins (a few minutes).
elastic: install horovod
	$(BIN)/pytest -q -m elastic tests/distribute/test_elastic_horovod.py

notebooks: install
	$(BIN)/pytest -q tests/notebooks

# ruff, the import contracts in .importlinter (layers; no TensorFlow under config) and the graph test
# (no import cycle, function-local imports and package __init__s counted; no private name across packages).
lint: install
	$(BIN)/ruff check kerasopt callbacks tests scripts
	$(BIN)/python scripts/import_graph.py lint-imports
	$(BIN)/pytest -q tests/test_import_graph.py

clean:
	rm -rf $(VENV) runs .pytest_cache build *.egg-info

bench: install horovod
	$(BIN)/python benchmarks/callbacks_overhead.py
	$(BIN)/python benchmarks/checkpoint_cost.py
	$(BIN)/python benchmarks/tune_overhead.py
	$(BIN)/python benchmarks/horovod_scaling.py
	$(BIN)/python benchmarks/compression.py
	$(BIN)/python benchmarks/vs_keras.py
	$(BIN)/python benchmarks/cpu_levers.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/tabular_scale.py
	$(BIN)/python benchmarks/pipeline_limit.py
	$(BIN)/python benchmarks/finetune.py
	$(BIN)/python benchmarks/mixing.py --seeds 5
	$(BIN)/python benchmarks/augment_cost.py
