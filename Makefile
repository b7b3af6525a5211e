# Set-up and everyday commands. `make run` and `make test` create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel on machines without a GPU (no multi-GB CUDA download); override for a GPU box,
# e.g. `make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126" venv`.
TORCH_SPEC ?= torch==2.13.0
ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv run test bench bench-peers clean
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet $(TORCH_SPEC) -e ".[dev]"
	touch $@

run: venv
	$(VENV)/bin/python run.py $(ARGS)

test: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: venv
	$(VENV)/bin/python scripts/bench_neurons.py

clean:
	rm -rf outputs multirun .pytest_cache

# The peers the benchmark compares against (not needed otherwise).
bench-peers: venv
	$(VENV)/bin/python -m pip install --quiet --no-deps snntorch==1.0.0 spikingjelly==2.0.0
	$(VENV)/bin/python -m pip install --quiet loguru
	$(VENV)/bin/python scripts/bench_neurons.py
