# The two quick-start commands: `make demo` and `make test`. Both set up .venv first.
# `make test` also checks the backend-neutral library on JAX, in .venv-jax: the package installed
# with its jax extra, so without TensorFlow, like a GPU machine's. Tests that need TensorFlow carry
# the `tensorflow` marker; the JAX run takes the others.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
JAX_VENV := .venv-jax
JAX_BIN := $(JAX_VENV)/bin
DOCS_VENV := .venv-docs
DOCS_BIN := $(DOCS_VENV)/bin
export TF_CPP_MIN_LOG_LEVEL ?= 2
export NO_MKDOCS_2_WARNING := 1

.PHONY: setup setup-jax demo test test-tf test-jax docs clean

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

$(DOCS_BIN)/mkdocs: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_BIN)/pip install -q --upgrade pip
	$(DOCS_BIN)/pip install -q -e ".[docs]"
	touch $@

setup: $(BIN)/kd-keras

setup-jax: $(JAX_BIN)/kd-keras

demo: setup
	$(BIN)/kd-keras reproduce --preset demo --data-dir synthetic --runs-dir runs/demo

# Both suites at once (the TensorFlow one in two workers), and the docs: about the time of the longest.
test: setup setup-jax $(DOCS_BIN)/mkdocs
	@mkdir -p runs; \
	KERAS_BACKEND=jax $(JAX_BIN)/python -m pytest -q -p no:cacheprovider -m "not tensorflow" > runs/test-jax.log 2>&1 & \
	jax=$$!; \
	$(DOCS_BIN)/mkdocs build --strict --quiet > runs/docs.log 2>&1 & \
	docs=$$!; \
	$(BIN)/python -m pytest -q -n 2 --dist loadfile; tf=$$?; \
	wait $$jax; j=$$?; \
	wait $$docs; d=$$?; \
	echo "--- the same library on JAX, without TensorFlow (the tests not marked tensorflow):"; cat runs/test-jax.log; \
	echo "--- the documentation site, mkdocs build --strict (exit code $$d):"; cat runs/docs.log; \
	exit $$(( tf || j || d ))

test-tf: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-jax: setup-jax
	KERAS_BACKEND=jax $(JAX_BIN)/python -m pytest -q -p no:cacheprovider -m "not tensorflow"

docs: $(DOCS_BIN)/mkdocs
	$(DOCS_BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) $(JAX_VENV) $(DOCS_VENV) runs site *.egg-info
