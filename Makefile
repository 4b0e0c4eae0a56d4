# Lunar Workbench — two commands for a newcomer:  `make demo`  and  `make test`.
# Both create .venv and install the package on first use (`make setup`), and skip that when current.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# CPU torch pin for the setup path; override for CUDA, e.g. `make setup CONSTRAINTS=/dev/null`.
CONSTRAINTS ?= constraints.txt
# Where the pinned CPU build comes from when pip's configured indexes do not have it (PyPI's Linux wheel
# is the CUDA build, several GB with its nvidia-* packages); probed before installing.
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
STAMP := $(VENV)/.setup-stamp
# Use the shared data mirror when it sits beside the checkout (CI, team machines).
ifneq ($(wildcard ../shared/data),)
export WORKBENCH_DATA_MIRROR ?= $(abspath ../shared/data)
endif
PYTEST_ARGS ?=

.PHONY: setup demo test test-all lab lint bench clean

setup: $(STAMP)

# .venv takes about 2.5 GB (torch, JupyterLab, chromium's Playwright driver): refuse early, not half-installed.
SETUP_FREE_MB ?= 3000

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@free=$$(df -Pm . | awk 'NR==2 {print $$4}'); if [ -n "$$free" ] && [ "$$free" -lt $(SETUP_FREE_MB) ]; then \
	  echo "error: only $$free MB free on the disk of $$(pwd); setting up .venv needs about $(SETUP_FREE_MB) MB." >&2; \
	  echo "       Free some space (old clones' .venv folders, ~/.cache/lunar-workbench) and run make again." >&2; \
	  exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@idx=""; \
	if grep -qs '^torch==.*+cpu' $(CONSTRAINTS) && ! $(BIN)/python -m pip install --disable-pip-version-check \
	    --dry-run --ignore-installed --no-deps -q -c $(CONSTRAINTS) torch >/dev/null 2>&1; then \
	  echo "torch's CPU build is not on pip's configured indexes: adding $(TORCH_CPU_INDEX)"; \
	  idx="--extra-index-url $(TORCH_CPU_INDEX)"; fi; \
	echo "$(BIN)/python -m pip install -q -c $(CONSTRAINTS) $$idx -e '.[dev]'"; \
	$(BIN)/python -m pip install --disable-pip-version-check -q -c $(CONSTRAINTS) $$idx -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(BIN)/workbench demo

test: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lab: setup
	$(BIN)/workbench lab

lint: setup
	$(BIN)/ruff check workbench tests

bench: setup
	@mkdir -p outputs/bench
	@for b in $$($(BIN)/python -c "from workbench.bench import BENCHMARKS; print(' '.join(sorted(BENCHMARKS)))"); do \
	  echo "== $$b"; $(BIN)/workbench bench $$b --json outputs/bench/$$b.json || exit 1; done

clean:
	rm -rf outputs .pytest_cache
