# Two commands that work on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch kept on this machine kind; installing it first by path means no
# resolver ever gets the chance to pick a CUDA build from the registry.
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl))
TORCH_REQ := $(if $(TORCH_WHEEL),$(TORCH_WHEEL),torch==2.13.0)
SAMPLE := samples/receipt.jpg
# `make eval-kie`: every test split in both decoding modes, then the README's table.
EVAL_MODEL ?= docsprint/weights/kie-general
EVAL_OUT ?= out/eval
EVAL_ARGS ?=

# `make bench`: the committed BENCHMARKS.md (after the training runs the README lists);
# `make bench-quick`: a few documents per dataset with the shipped model (CI).
BENCH_ARGS ?= --general-model runs/kie-general/final --classifier runs/classify-tobacco/final \
	--peer runs/peer-sroie/final runs/peer-funsd/final

.PHONY: install demo test system-deps fonts clean eval-kie eval-round bench bench-quick

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv
	$(VENV)/bin/uv pip install -q --python $(PY) "$(TORCH_REQ)"
	$(VENV)/bin/uv pip install -q --python $(PY) -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/docsprint extract $(SAMPLE) --schema receipt

# Tesseract is the optional second OCR engine; its test needs Debian's tesseract-ocr.
# The web page's test drives Debian's chromium through Playwright (its own download does not work here).
system-deps:
	@command -v tesseract >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr >/dev/null; } \
	  || echo "tesseract-ocr could not be installed: its test will be reported as skipped"
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium could not be installed: the web page's test will fail"

# More typefaces for synthetic training pages (`docsprint synth`); DejaVu alone otherwise.
fonts:
	apt-get install -y -qq fonts-liberation fonts-freefont-ttf fonts-crosextra-carlito fonts-crosextra-caladea >/dev/null

test: install system-deps
	$(VENV)/bin/ruff check docsprint tests
	$(VENV)/bin/mypy docsprint
	$(PY) -m pytest -q tests

eval-kie: install
	for d in sroie funsd wildreceipt kleister-nda; do \
	  $(VENV)/bin/docsprint eval kie --dataset $$d --split test --mode both --model $(EVAL_MODEL) \
	    $(EVAL_ARGS) --json $(EVAL_OUT)/$$d.json || exit 1; done
	$(VENV)/bin/docsprint eval report $(EVAL_OUT)/*.json

# `make eval-round EVAL_MODEL=M EVAL_OUT=out/TAG`: the sets a training round of the general
# model is judged on (docs/kie-general-record.md), parallel decoding: realworld-dev by value,
# then SROIE, WildReceipt (the first 100 receipts), FUNSD and Kleister-NDA test. About 5 min
# on 2 cores, 2 of them realworld-dev's OCR.
eval-round: install
	$(VENV)/bin/docsprint eval kie --data ../shared/data/realworld-dev --model $(EVAL_MODEL) \
	  --json $(EVAL_OUT)/realworld-dev.json
	for d in sroie wildreceipt funsd kleister-nda; do \
	  $(VENV)/bin/docsprint eval kie --dataset $$d --split test --model $(EVAL_MODEL) \
	    $$([ $$d = wildreceipt ] && echo --limit 100) --json $(EVAL_OUT)/$$d.json || exit 1; done
	$(VENV)/bin/docsprint eval report $(EVAL_OUT)/sroie.json $(EVAL_OUT)/wildreceipt.json \
	  $(EVAL_OUT)/funsd.json $(EVAL_OUT)/kleister-nda.json

bench: install
	$(VENV)/bin/docsprint bench --out . $(BENCH_ARGS)

bench-quick: install
	$(VENV)/bin/docsprint bench --quick --out out/bench-quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
