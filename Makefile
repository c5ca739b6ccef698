# The two commands a new machine needs (see README):
#   make demo   install into .venv and run the whole job on the demo project
#   make test   install into .venv and run every check and test
# and, for the installers (packaging/README.md):
#   make package       build the Linux .deb and .tar.gz into dist/
#   make package-test  build them, install the .deb into a scratch root and test it there
# Every install takes the versions CI tested from constraints.txt; `make constraints`
# refreshes them (README, "For developers").
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# cluster (Ray) is in the default so that CI runs the --ray tests; the installers do not
# carry it (packaging/linnaeus.spec excludes it).
EXTRAS ?= cpu,dev,cluster
STAMP  := $(VENV)/.installed
# The tested versions (pip constraints: they pin what is installed, and install nothing
# by themselves). CONSTRAINTS= installs the newest versions pyproject allows instead.
CONSTRAINTS ?= constraints.txt
PIN := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))
PACKAGE_STAMP := $(VENV)/.installed-package
# A "strict" editable install links the sources into a real linnaeus/ folder
# (build/__editable__.*), which import-linter needs to see the package.
EDITABLE := --config-settings editable_mode=strict

.PHONY: install demo test lint bench clean package package-test constraints

$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIN) $(EDITABLE) -e ".[$(EXTRAS)]"
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
	$(BIN)/python -m pip install --quiet $(PIN) $(EDITABLE) -e ".[$(EXTRAS),package]"
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

# Refresh constraints.txt: upgrade .venv to the newest versions pyproject allows for the
# CPU build, the tests and the installer, and pin them. For EXTRAS=gpu, tensorflow is
# pinned to the release of the tested tensorflow-cpu (same code, same dependencies);
# onnxruntime-gpu is left free, as its releases trail onnxruntime's, and the GPU
# extra must still resolve under the pins (the dry run). Then run
# `make test package-test` on this .venv before committing the file.
constraints:
	@case "$(EXTRAS)" in *gpu*) echo "make constraints pins the CPU build: run it without EXTRAS=gpu"; exit 1;; esac
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --upgrade --upgrade-strategy eager $(EDITABLE) -e ".[cpu,dev,cluster,package]"
	{ echo "# The versions CI tested (make test, make package-test) on Linux x86_64, CPython $$($(BIN)/python -c 'import platform; print(platform.python_version())')."; \
	  echo "# make install, make package and the installer builds install these; \`make constraints\` refreshes them."; \
	  $(BIN)/python -m pip freeze --exclude-editable --exclude linnaeus; \
	  $(BIN)/python -m pip freeze | sed -n 's/^tensorflow[-_]cpu==/tensorflow==/p'; \
	} > $(CONSTRAINTS).new
	$(BIN)/python -m pip install --quiet --dry-run --ignore-installed -c $(CONSTRAINTS).new ".[gpu,dev]"
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	touch $(STAMP) $(PACKAGE_STAMP)

bench: $(STAMP)
	$(BIN)/python bench/bench_import.py

clean:
	rm -rf $(VENV) build dist *.egg-info demo-project demo-project-images
