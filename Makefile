# faabric: `make run` and `make test` install what is missing, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit bench experiment experiments lint clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps
	@scripts/install-system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The demo main job: an MPI estimate of pi by 4 ranks on an embedded cluster of 2 worker
# processes with 2 slots each.
run: install
	$(BIN)/faabric run -n 4 --hosts 2 --slots 2 examples/mpi_pi.c -- 50000000

# The suite compares MPI and OpenMP programs with the same C built natively, so it also
# installs OpenMPI and the OpenMP runtime (the tests skip those comparisons without them).
test: install
	@scripts/install-system-deps --peers
	$(BIN)/pytest -q

test-unit: install
	$(BIN)/pytest -q tests/unit

bench: install
	@scripts/install-system-deps --peers
	$(BIN)/pip install --quiet -e '.[bench]'
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench

# Schedulers compared on a job trace replayed through the planner core (docs/experiments.md).
experiment: install
	$(BIN)/faabric experiment compare --hosts 8 --jobs 25 --mix mpi --seed 0

# The CSVs and figures of docs/experiments.md, written to docs/experiments/ (needs matplotlib).
experiments: install
	$(BIN)/pip install --quiet -e '.[experiments]'
	$(BIN)/faabric experiment plot --hosts 32 --jobs 100 --mix mpi --seed 0
	$(BIN)/faabric experiment plot --hosts 32 --jobs 100 --mix openmp --seed 0
	$(BIN)/faabric experiment plot --hosts 32 --jobs 100 --mix spot --seed 0

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
