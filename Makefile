# Two commands that work on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch kept on this machine kind; installing it first by path means no
# resolver ever gets the chance to pick a CUDA build from the registry.
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl))
TORCH_REQ := $(if $(TORCH_WHEEL),$(TORCH_WHEEL),torch==2.13.0)
MODEL := checkpoints/docsprint-kie-sroie
SAMPLE := samples/receipt.jpg

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip install -q --python $(PY) "$(TORCH_REQ)"
	$(VENV)/bin/uv pip install -q --python $(PY) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/docsprint extract $(SAMPLE) --schema receipt

test: install
	$(VENV)/bin/ruff check docsprint tests
	$(VENV)/bin/mypy docsprint
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
