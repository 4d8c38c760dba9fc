# The two quick-start commands: `make demo` and `make test`. Both set up .venv first.
# `make test` also checks the backend-neutral library on JAX, in .venv-jax: the package installed
# with its jax extra, so without TensorFlow, like a GPU machine's. Tests that need TensorFlow carry
# the `tensorflow` marker; the JAX run takes the others.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JAX_VENV := .venv-jax
JAX_BIN := $(JAX_VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup setup-jax demo test test-tf test-jax clean

$(BIN)/kd-keras: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[tensorflow,deploy,tensorboard,test]"
	touch $@

$(JAX_BIN)/kd-keras: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(JAX_VENV)
	$(JAX_BIN)/pip install -q --upgrade pip
	$(JAX_BIN)/pip install -q -e ".[jax,test]"
	touch $@

setup: $(BIN)/kd-keras

setup-jax: $(JAX_BIN)/kd-keras

demo: setup
	$(BIN)/kd-keras reproduce --preset demo --data-dir synthetic --runs-dir runs/demo

# Both suites at once (the TensorFlow one in two workers): about the time of the longer one.
test: setup setup-jax
	@mkdir -p runs; \
	KERAS_BACKEND=jax $(JAX_BIN)/python -m pytest -q -p no:cacheprovider -m "not tensorflow" > runs/test-jax.log 2>&1 & \
	jax=$$!; \
	$(BIN)/python -m pytest -q -n 2 --dist loadfile; tf=$$?; \
	wait $$jax; j=$$?; \
	echo "--- the same library on JAX, without TensorFlow (the tests not marked tensorflow):"; cat runs/test-jax.log; \
	exit $$(( tf || j ))

test-tf: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-jax: setup-jax
	KERAS_BACKEND=jax $(JAX_BIN)/python -m pytest -q -p no:cacheprovider -m "not tensorflow"

clean:
	rm -rf $(VENV) $(JAX_VENV) runs *.egg-info
