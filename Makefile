# The two commands a new machine needs (see README):
#   make demo   install into .venv and run the whole job on the demo project
#   make test   install into .venv and run every check and test
# and, for the installers (packaging/README.md):
#   make package       build the Linux .deb and .tar.gz into dist/
#   make package-test  build them, install the .deb into a scratch root and test it there
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= cpu,dev
STAMP  := $(VENV)/.installed
PACKAGE_STAMP := $(VENV)/.installed-package
# A "strict" editable install links the sources into a real linnaeus/ folder
# (build/__editable__.*), which import-linter needs to see the package.
EDITABLE := --config-settings editable_mode=strict
# ImageNet backbone weights on disk, if the shared folder beside the checkout has
# them (developers and CI); elsewhere Linnaeus looks in its data folder and the
# Keras cache, and trains from scratch when none are found.
export LINNAEUS_WEIGHTS ?= $(abspath $(wildcard ../shared/weights))

.PHONY: install demo test lint bench clean package package-test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(EDITABLE) -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/linnaeus demo --project demo-project

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pip install --quiet --no-deps $(EDITABLE) -e .  # links new modules too
	$(BIN)/lint-imports --no-cache

test: lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# PyInstaller freezes whatever this venv holds: EXTRAS=gpu,dev VENV=.venv-gpu for the GPU build.
$(PACKAGE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet $(EDITABLE) -e ".[$(EXTRAS),package]"
	touch $(PACKAGE_STAMP)

package: $(PACKAGE_STAMP)
	packaging/linux/system-packages.sh $$(grep -v '^#' packaging/linux/build-packages.txt)
	$(BIN)/python -m pip install --quiet --no-deps $(EDITABLE) -e .  # links new modules too
	PYTHON=$(BIN)/python packaging/build-linux.sh

# strace watches what the installed app writes; the system has what the .deb declares, as
# on a user's machine. As root (CI) whatever is missing is installed.
package-test: package
	packaging/linux/system-packages.sh strace desktop-file-utils
	packaging/linux/system-packages.sh --deb-relations $$(ls dist/linnaeus_*.deb)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -m package tests/packaging

bench: $(STAMP)
	$(BIN)/python bench/bench_import.py

clean:
	rm -rf $(VENV) build dist *.egg-info demo-project demo-project-images
