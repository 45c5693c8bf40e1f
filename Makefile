# Two entry points, each self-contained on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
MNIST ?= ../shared/data/mnist

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,test]'
	$(PY) tests/timm_suite/fetch.py  # timm's own model tests, cached in .cache/ so `make test` needs no network
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/convgru-zoo demo --mnist $(MNIST)

train-demo: $(VENV)/.installed
	$(VENV)/bin/convgru-zoo demo --train --mnist $(MNIST)

test: $(VENV)/.installed
	$(PY) -m pytest -q --durations=15

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_convgru.py

.PHONY: install demo train-demo test bench
