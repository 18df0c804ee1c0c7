# The two set-up commands of the README: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, pinned, so that monai does not pull a CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --disable-pip-version-check -q "torch==2.13.0"
	$(BIN)/pip install --disable-pip-version-check -q -e ".[test]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/tclearn demo

# The dashboard's browser test drives Debian's Chromium (Playwright's own browser download is not
# reachable from a closed network): installed here when missing and apt-get is there (CI: root, fresh Debian).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
			|| { echo "could not install chromium with apt-get (the dashboard's browser test needs it)"; exit 1; }; \
	else echo "chromium not installed and no apt-get as root: the dashboard's browser test will skip"; fi

# Lint and types first (configured in pyproject.toml): mypy is strict for ledger, consensus, member, quality.
test: $(STAMP) | $(CHROMIUM)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	@# pytest prints an assertion's whole message in its summary when CI is set; one line per failure keeps
	@# the failing tests' names in the last lines of a CI log
	env -u CI -u BUILD_NUMBER $(BIN)/python -m pytest -n 2 -p no:cacheprovider -r fE tests

bench: $(STAMP)
	$(BIN)/python bench/ledger.py

clean:
	rm -rf $(VENV) tclearn-demo
