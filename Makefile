# Quick start: `make eval` (headless benchmark evaluation on the bundled defaults) and `make test`.
# Both create .venv and install egosim on first use (scripts/setup.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export MUJOCO_GL ?= egl
export PYTHONUNBUFFERED := 1

.PHONY: setup eval test test-slow bench bench-eval clean

setup:
	@VENV=$(VENV) bash scripts/setup.sh

eval: setup
	$(VENV)/bin/egosim eval $(ARGS)

test: setup
	$(PY) -m pytest $(ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(ARGS)

bench: setup
	$(PY) benchmarks/env_step.py $(ARGS)

bench-eval: setup
	$(PY) benchmarks/eval.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
