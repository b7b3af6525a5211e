# Set-up and everyday commands. `make run` and `make test` create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
# The CPU wheel on machines without a GPU (no multi-GB CUDA download); override for a GPU box,
# e.g. `make TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126" venv`.
TORCH_SPEC ?= torch==2.13.0
ARGS ?=
PYTEST_ARGS ?=

.PHONY: venv run test test-fast docs bench bench-peers nir-peers clean lava lava-if-possible slurm
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet $(TORCH_SPEC) -e ".[dev]"
	touch $@

run: venv
	@$(VENV)/bin/python run.py $(ARGS)

# Everything CI runs: the Lava tests too, in .venv-lava, built here when a Python 3.10 is found. Without
# one they are skipped, and the last line says so (on CI, CI=true, a missing Lava fails instead).
# pytest-xdist: one worker per core, at most 8 (each test uses one torch thread); tests that share a
# resource (the Lava venv, the SLURM cluster, DDP's processes) run on one worker (--dist loadgroup).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 8 ] && n=8; echo $$n)
XDIST = -n $(TEST_WORKERS) --dist loadgroup
# Tests marked solo measure the machine's cores, so they run after the others, alone (exit 5: none selected).
test: venv nir-peers lava-if-possible
	@$(VENV)/bin/python -m pytest $(XDIST) -m "not solo" $(PYTEST_ARGS); status=$$?; \
	$(VENV)/bin/python -m pytest -m solo $(PYTEST_ARGS); solo=$$?; \
	if [ $$status -eq 0 ] && [ $$solo -ne 5 ]; then status=$$solo; fi; \
	if [ ! -f $(LAVA_VENV)/.installed ]; then \
	  echo "make test: the Lava tests were SKIPPED: no working $(LAVA_VENV) (make lava needs a Python 3.10; pass PYTHON310=/path/to/python3.10)"; \
	fi; exit $$status

# The unit layer only (no e2e run, nothing slow): about a minute on 2 cores, to run after every change.
test-fast: venv
	@$(VENV)/bin/python -m pytest $(XDIST) -m "not e2e and not slow and not solo" $(PYTEST_ARGS)

# The documentation site (mkdocs.yml, docs/) into site/ (git-ignored); --strict fails on any warning (a broken
# link, a missing page, a `_target_` the generated reference cannot import). `mkdocs serve` previews it.
docs: venv
	$(VENV)/bin/python -m mkdocs build --strict --quiet

# A single-node SLURM cluster on this machine (root: apt-get, munge, slurmctld, slurmd), for hydra/launcher=slurm
# and tests/test_cluster.py; `scripts/slurm_cluster.sh stop` stops it. docs/cluster.md.
slurm:
	scripts/slurm_cluster.sh start

bench: venv
	$(VENV)/bin/python scripts/bench_neurons.py

clean:
	rm -rf outputs multirun .pytest_cache site

# The peers the benchmark compares against (not needed otherwise).
bench-peers: venv
	$(VENV)/bin/python -m pip install --quiet --no-deps snntorch==1.0.0 spikingjelly==2.0.0
	$(VENV)/bin/python -m pip install --quiet loguru
	$(VENV)/bin/python scripts/bench_neurons.py

# The NIR simulators deploy=nir compares (snnTorch, Norse) and NeuroBench (tests/metrics/test_neurobench.py):
# --no-deps, since their metadata would pull torchvision/torchaudio and another torch; they need only torch,
# nir and nirtorch (tqdm for neurobench). The pins match pyproject's `nir` extra.
# make test installs them once (a stamp in the venv), so their tests run rather than skip.
nir-peers: $(VENV)/.nir-peers
$(VENV)/.nir-peers: $(VENV)/.installed
	$(VENV)/bin/python -m pip install --quiet --no-deps $(TORCH_SPEC) snntorch==1.0.0 norse==1.1.0 nirtorch==2.6 neurobench==2.3.0
	$(VENV)/bin/python -m pip install --quiet $(TORCH_SPEC) tqdm
	touch $@

# Lava (lava-nc 0.10) needs Python 3.10 and numpy<2: its own venv, used by deploy=loihi as a subprocess.
LAVA_VENV ?= .venv-lava
PYTHON310 ?= $(firstword $(wildcard /root/.pyenv/versions/3.10*/bin/python $(HOME)/.pyenv/versions/3.10*/bin/python) $(shell command -v python3.10 2>/dev/null))
lava: $(LAVA_VENV)/.installed

# make test: build .venv-lava when possible; outside CI a missing Python 3.10 or a failed build only skips the Lava tests.
lava-if-possible:
	@if [ -f $(LAVA_VENV)/.installed ]; then :; \
	elif [ -n "$(PYTHON310)" ]; then \
	  $(MAKE) --no-print-directory lava || { [ "$$CI" = true ] && exit 1; \
	    echo "make test: building $(LAVA_VENV) failed (see above): the Lava tests will be skipped"; }; \
	elif [ "$$CI" = true ]; then \
	  echo "make test: CI runs the Lava tests, but no Python 3.10 was found (pass PYTHON310=/path/to/python3.10)" >&2; exit 1; \
	else echo "make test: no Python 3.10 found: the Lava tests will be skipped"; fi

$(LAVA_VENV)/.installed:
	@test -n "$(PYTHON310)" || { echo "make lava: no Python 3.10 found (looked for ~/.pyenv/versions/3.10*/bin/python and python3.10 on PATH); lava-nc 0.10 needs 3.10. Install one, or pass PYTHON310=/path/to/python3.10" >&2; exit 1; }
	@$(PYTHON310) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else "make lava: $(PYTHON310) is Python " + sys.version.split()[0] + ", lava-nc 0.10 needs 3.10")'
	test -x $(LAVA_VENV)/bin/python || $(PYTHON310) -m venv $(LAVA_VENV)
	$(LAVA_VENV)/bin/python -m pip install --quiet lava-nc==0.10.0 h5py "numpy<2"
	touch $@

# What the GPU machine lacks (it has Python 3.12, torch, triton, lightning, torchmetrics, h5py,
# matplotlib, scikit-learn; no network): pure-Python wheels for 3.12, and Fashion-MNIST, in wheels/
# (ignored by git). `scripts/device_check.sh` installs them there with pip --no-index --target.
GPU_WHEELS ?= wheels/gpu
GPU_PACKAGES ?= hydra-core==1.3.8 omegaconf==2.3.1 tonic==1.7.0 nir==1.0.8 snntorch==1.0.0 spikingjelly==2.0.0 loguru==0.7.3
.PHONY: gpu-wheels
gpu-wheels: venv
	mkdir -p $(GPU_WHEELS) wheels/data/fashion-mnist
	$(VENV)/bin/python -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	    --implementation cp --platform manylinux_2_28_x86_64 -d $(GPU_WHEELS) $(GPU_PACKAGES)
	$(VENV)/bin/python -m pip wheel --quiet --no-deps -w $(GPU_WHEELS) antlr4-python3-runtime==4.9.3  # sdist only on PyPI
	cp /usr/share/datasets/fashion-mnist/*-ubyte.gz wheels/data/fashion-mnist/
