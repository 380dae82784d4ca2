# Quick start: `make demo` runs the main job, `make test` runs the whole suite.
# Both create .venv and install what they need (torch pinned to the CPU wheel 2.13.0 first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ssmred-installed

.PHONY: demo core-demo results test lint bench install clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[all]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ssmred demo

core-demo: $(STAMP)
	$(PY) -m ssmred.demo

results: $(STAMP)
	$(PY) scripts/results.py

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n 2 --dist loadfile

# the documentation site, strict (-W: any warning fails), notebooks executed (cached in docs/_build)
docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

bench: $(STAMP)
	$(PY) benchmarks/core.py
	$(PY) benchmarks/reduction.py
	$(PY) benchmarks/demo.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
