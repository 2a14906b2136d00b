# mmrec-nb: two entry points.
#   make book  -> set up .venv, run the quick reproduction, build the HTML book into _build/html, then check
#                 what the pages show (tests/scripts/book_check.py: no nbdev lines, no clipped code or
#                 equations, no raw LaTeX, labels, temp paths or NaN in outputs)
#   make test  -> set up .venv, check export/clean are clean, run the notebooks as tests, run pytest
#
# Variables:
#   PYTHON=python3        interpreter used to create .venv
#   USE_SYSTEM_TORCH=1    keep the torch you already have (e.g. a CUDA build): .venv is created with
#                         --system-site-packages and the CPU pin below is not installed
#   TORCH_SPEC=...        the torch requirement installed first (default: the CPU wheel torch==2.13.0)
#   PROFILE=quick|full    reproduction profile run by `make repro` / `make book`
#   MMREC_TEST_SEED=k     (environment) the seed that every test's global RNGs start from (default 0);
#                         `make test-seeds SEEDS="0 1 2 3 4"` runs `make test` under each

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TRITON_SPEC ?= triton==3.9.*
PROFILE ?= quick
SEEDS ?= 0 1 2 3 4
BIN := $(VENV)/bin
MATHJAX_DIR := _build/mathjax
MATHJAX := $(MATHJAX_DIR)/tex-chtml.js
STAMP := $(VENV)/.mmrec-installed
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: all setup test test-fast test-seeds readme book repro export clean-nbs check-clean bench distclean

all: test

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
ifeq ($(USE_SYSTEM_TORCH),1)
	test -x $(BIN)/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -c "import torch; print('using existing torch', torch.__version__)"
	$(BIN)/python -m pip install -q -e ".[dev]"
else
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]" "$(TRITON_SPEC)"
endif
	$(BIN)/python -m pip install -q --no-deps recbole==1.2.1
	touch $(STAMP)

# Notebooks are the source: exporting and cleaning them must not change a tracked or new file.
check-clean: $(STAMP)
	@before="$$(git status --porcelain --untracked-files=all -- mmrec_nb nbs; git diff -- mmrec_nb nbs | md5sum)"; \
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && \
	after="$$(git status --porcelain --untracked-files=all -- mmrec_nb nbs; git diff -- mmrec_nb nbs | md5sum)"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "ERROR: nbdev_export / nbdev_clean changed files; commit the notebook AND the generated module:"; \
	  git status --short -- mmrec_nb nbs; exit 1; \
	fi; echo "export and clean: nothing to change"

# One BLAS/OpenMP thread per process: the runner tests two notebooks at once on a 2-core machine, and
# oversubscribed torch threads make small models many times slower. The runner is nbdev_test with each
# notebook's global RNGs seeded from MMREC_TEST_SEED; tests/conftest.py does the same for every pytest test.
test: export OMP_NUM_THREADS := 1
test: check-clean
	$(BIN)/python tests/scripts/run_notebook_tests.py --n_workers 2 --timing
	$(BIN)/python -m pytest tests -q -p no:cacheprovider --durations=10

# Every test seeds its own randomness: the suite passes whatever state the global RNGs start in.
test-seeds:
	for seed in $(SEEDS); do MMREC_TEST_SEED=$$seed $(MAKE) test || exit 1; done

# README.md is the markdown of nbs/index.ipynb; tests/test_readme.py fails when they differ.
readme:
	$(PYTHON) tests/scripts/readme.py

# pytest only (skips the export check and the notebook run)
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests -q -p no:cacheprovider

repro: $(STAMP)
	$(BIN)/mmrec-nb repro --profile $(PROFILE)

book: $(STAMP) $(MATHJAX)
	$(BIN)/mmrec-nb repro --profile quick
	$(BIN)/python -c "$$STALE_PAGES"
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python tests/scripts/book_check.py
	@echo "book: $(abspath _build/html/index.html)"

# The execution cache is keyed by a notebook's code, not by the files it reads: pages that read results/
# are dropped from the cache so that they always show the results on disk now.
define STALE_PAGES
from pathlib import Path
from jupyter_cache import get_cache
if Path('_build/.jupyter_cache').is_dir():
    cache = get_cache('_build/.jupyter_cache')
    for record in cache.list_cache_records():
        page = Path(record.uri)
        if not page.is_file() or any(key in page.read_text() for key in ('load_results', 'results/')):
            cache.remove_cache(record.pk)
endef
export STALE_PAGES

# MathJax is served from the book itself so that the HTML reads offline; it comes from the npm registry.
# Without npm the file is a two-line loader that fetches the same MathJax 3 from a CDN instead.
$(MATHJAX):
	mkdir -p $(MATHJAX_DIR)
	if command -v npm >/dev/null 2>&1 && npm install --silent --no-audit --no-fund --prefix _build/npm mathjax@3; then \
	  src=_build/npm/node_modules/mathjax/es5; \
	  mkdir -p $(MATHJAX_DIR)/output/chtml/fonts $(MATHJAX_DIR)/input/tex; \
	  cp -r $$src/output/chtml/fonts/woff-v2 $(MATHJAX_DIR)/output/chtml/fonts/; \
	  cp -r $$src/input/tex/extensions $(MATHJAX_DIR)/input/tex/; \
	  cp $$src/tex-chtml.js $(MATHJAX); \
	else \
	  echo "npm unavailable: the book will load MathJax from a CDN"; \
	  printf '%s\n' "var s = document.createElement('script'); s.async = true;" \
	    "s.src = 'https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js'; document.head.appendChild(s);" > $(MATHJAX); \
	fi

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_eval.py

distclean:
	rm -rf $(VENV) _build
