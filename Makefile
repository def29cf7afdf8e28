# The two commands of the README:
#   make demo   set everything up and run the dice example on embedded Spark
#   make test   set everything up and run the test suite
# Both install from constraints.txt, the versions the suite last passed with,
# so a fresh clone tests what was tested; `make test-latest` tries the newest
# releases pyproject.toml allows, and `make lock` records a new set.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
LOCK    = constraints.txt
LATEST  = .venv-latest
# pytest-randomly is installed for `make test-random`; the other targets run in file order.
PYTEST  = -m pytest -q -p no:randomly

export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: demo test test-fast test-random test-latest lock test-matrix lock-matrix bench lint java test-libs venv clean docs

venv: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c $(LOCK) pip
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[dev,examples]'
	@$(PY) -m pip install --quiet -c $(LOCK) -e '.[mkl]' || echo "rxspark: mkl-random is not available here; Intel VSL rng kinds will be skipped"
	@touch $(STAMP)

java:
	@scripts/ensure-java.sh

# Native libraries some tests compare against (GSL's Niederreiter generator); they skip without them.
test-libs:
	@PYTHON=$(PYTHON) scripts/ensure-test-libs.sh

demo: venv java
	$(PY) examples/dice.py --seed 777

test: venv java test-libs
	$(PY) $(PYTEST)

test-fast: venv
	$(PY) $(PYTEST) -m "not spark and not cluster and not slow"

# The suite in a random order (SEED=N replays one).
test-random: venv java test-libs
	$(PY) -m pytest -q $(if $(SEED),--randomly-seed=$(SEED))

# The suite against the newest releases pyproject.toml allows, in a venv of its own;
# it first lists every version that differs from constraints.txt.
test-latest: java test-libs
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[dev,examples]'
	@$(LATEST)/bin/python -m pip install --quiet --upgrade -e '.[mkl]' || echo "rxspark: mkl-random is not available here; Intel VSL rng kinds will be skipped"
	$(LATEST)/bin/python scripts/drift.py $(LOCK)
	$(LATEST)/bin/python $(PYTEST)

# Record the newest releases as the tested set (run the suite with them first: make test-latest).
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[dev,examples,mkl,bench]'
	.venv-lock/bin/python scripts/drift.py --write $(LOCK)
	rm -rf .venv-lock

# The version matrix (docs/guide/versions.md): the suite's core on PySpark 3.5 and on Pythons 3.10, 3.12
# and 3.13, one venv per cell (.venv-matrix/<cell>) from its own lock (constraints/<cell>.txt); cells run
# one after the other. CELLS="py311-pyspark35 py313-pyspark4" picks some; `scripts/matrix.py list` lists them.
test-matrix: java
	$(PYTHON) scripts/matrix.py test $(CELLS)

# Record the newest releases each cell allows as its lock (then run the cell: make test-matrix CELLS=...).
lock-matrix:
	$(PYTHON) scripts/matrix.py lock $(CELLS)

bench: venv java
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[bench]'
	$(PY) benchmarks/run.py

# The documentation site, warnings as errors, into docs/_build/html (open index.html there).
# Intersphinx reads CPython's inventory from Debian's python3-doc (installed here when run
# as root); without it, or offline for the other projects, those links are left out.
docs: venv
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[docs]'
	@if [ ! -f /usr/share/doc/python3/html/objects.inv ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get install -y -qq python3-doc >/dev/null 2>&1 || echo "rxspark: python3-doc is not available; links to Python's docs are left out"; fi
	$(PY) -m sphinx -b html -W --keep-going -E docs docs/_build/html

lint: venv
	$(PY) -m ruff check rxspark tests examples benchmarks

clean:
	rm -rf $(VENV) $(LATEST) .venv-lock .venv-matrix build dist *.egg-info .pytest_cache
