# Every target sets itself up: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PROTOS := $(shell find proto -name '*.proto')
GENERATED := firebreak/api/.generated

.PHONY: run test lint gen bench chaos fuzz lock clean

run: $(GENERATED)
	$(BIN)/firebreak run

test: $(GENERATED)
	$(BIN)/pytest -q

lint: $(GENERATED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

gen: $(GENERATED)

# Starts a private platform on free ports and measures it; see "Benchmark" in README.md.
# e.g. make bench BENCH_ARGS='--quick'   or   make bench BENCH_ARGS='--postgres'
bench: $(GENERATED)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Faults under load against a private platform; `python -m chaos --help` lists them.
# e.g. make chaos CHAOS_ARGS='--scale-out'   or   make chaos CHAOS_ARGS='--rate 50 --faults kill:intake'
chaos: $(GENERATED)
	$(BIN)/python -m chaos $(CHAOS_ARGS)

# schemathesis against a platform of its own (SQLite), with many more examples per operation
# than `make test` runs; see "Fuzzing" in README.md. e.g. make fuzz FUZZ_EXAMPLES=1000
FUZZ_EXAMPLES ?= 200
fuzz: $(GENERATED)
	FIREBREAK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/test_fuzz_api.py

# The image's dependencies, pinned with their hashes (the Dockerfile installs nothing else):
# after any change to pyproject.toml's dependencies. The build stage's tools follow the runtime's.
lock: $(INSTALLED)
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url \
		--output-file=requirements/image.txt pyproject.toml
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --no-emit-index-url --allow-unsafe \
		--output-file=requirements/image-build.txt requirements/image-build.in

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# Generated code lives only in the work tree (see .gitignore); it is never edited by hand.
$(GENERATED): $(PROTOS) $(INSTALLED)
	rm -rf firebreak/api
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	touch $@

clean:
	rm -rf $(VENV) var firebreak/api
