# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Where torch comes from. Empty (the default): wherever pip finds torch==2.13.0 (constraints.txt),
# the CPU wheel on the project's machines. On a machine without one, PyPI's torch==2.13.0 is the
# CUDA build (about 20 nvidia packages, several GB); PyTorch's CPU index avoids them:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
# torch (with its own dependencies) is then installed first from that index alone, and the rest
# of the project from PyPI around it.
TORCH_INDEX ?=
# What `make reproduce` runs (IDs and options of `poisonlab reproduce`); it prints what it will
# run and for how long before it starts. Add --force to replace earlier results.
REPRODUCE ?= R1 R2 --seeds 3

.PHONY: demo test test-fast install reproduce clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip -c constraints.txt
ifneq ($(strip $(TORCH_INDEX)),)
	$(BIN)/python -m pip install --quiet -c constraints.txt --index-url $(TORCH_INDEX) torch
endif
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,ray,dp,flower,postgres,sign]'
	touch $(STAMP)

install: $(STAMP)

# The demo replaces its own record (poisonlab-demo.json) on every `make demo`; `poisonlab demo`
# alone refuses an existing --out without --force.
demo: $(STAMP)
	$(BIN)/poisonlab demo --force

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m 'not slow'

reproduce: $(STAMP)
	$(BIN)/poisonlab reproduce $(REPRODUCE)

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
