# The two commands of the README:
#   make demo   set everything up and run the dice example on embedded Spark
#   make test   set everything up and run the test suite
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: demo test test-fast bench lint java venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,examples]'
	@$(PY) -m pip install --quiet -e '.[mkl]' || echo "rxspark: mkl-random is not available here; Intel VSL rng kinds will be skipped"
	@touch $(STAMP)

java:
	@scripts/ensure-java.sh

demo: venv java
	$(PY) examples/dice.py --seed 777

test: venv java
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not spark and not cluster and not slow"

bench: venv java
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/run.py

lint: venv
	$(PY) -m ruff check rxspark tests examples benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
