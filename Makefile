# Two entry points; both install what they need into .venv first (pip caches the llama.cpp build).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: install demo test bench clean

$(BIN)/persona-gen: pyproject.toml
	@echo "installing persona_gen into $(VENV) (the first time builds llama-cpp-python: about 5 minutes on 2 cores)"
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@echo "installed: $$($(BIN)/persona-gen --version)"
	# The Ray launcher plugin without its pins: they clash with dspy's (cloudpickle<3 vs >=3.1.2; pyproject.toml).
	$(BIN)/pip install -q --no-deps 'hydra-ray-launcher==1.2.2'
	touch $@

install: $(BIN)/persona-gen

## The main job at demo scale on the embedded SmolLM2 model; prints where the dataset, card and plots are.
demo: install
	$(BIN)/persona-gen scale=demo

## The whole test suite (unit + integration on the embedded model and loopback servers).
test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf outputs multirun .cache
