# Quick start: `make demo` (set up .venv, run the main example on 2 ranks), `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
MPIEXEC := $(VENV)/bin/mpiexec
NP ?= 2

.PHONY: setup demo test test-fast bench lint clean

setup:
	@bash scripts/bootstrap.sh

demo: setup
	$(MPIEXEC) -n $(NP) $(PY) examples/poisson2d.py -tao_monitor_short -pinn_report poisson2d-report.json

test: setup
	@bash scripts/run_tests.sh

lint: setup
	$(VENV)/bin/ruff check src tests examples

bench: setup
	$(PY) -m pinntao.bench --quick --out bench-out

clean:
	rm -rf build .pytest_cache bench-out poisson2d-report.json
