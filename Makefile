# Two entry points, each self-contained on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
MNIST ?= ../shared/data/mnist
# Wheels the packaging tests install offline into fresh environments (tests/project/test_packaging.py)
WHEELHOUSE := .cache/wheels
OTHER_PYTHONS := 3.10 3.12

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[all,test]'
	$(PY) -m pip download -q --only-binary :all: -d $(WHEELHOUSE) "numpy>=2" tqdm
	for v in $(OTHER_PYTHONS); do \
	  $(PY) -m pip download -q --only-binary :all: --python-version $$v -d $(WHEELHOUSE) numpy tqdm || exit 1; done
	$(PY) tests/timm_suite/fetch.py  # timm's own model tests, cached in .cache/ so `make test` needs no network
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/convgru-zoo demo --mnist $(MNIST)

train-demo: $(VENV)/.installed
	$(VENV)/bin/convgru-zoo demo --train --mnist $(MNIST)

test: $(VENV)/.installed
	$(PY) -m pytest -q -n auto --dist loadfile --durations=15

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_convgru.py

.PHONY: install demo train-demo test bench
