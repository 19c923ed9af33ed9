# Two commands for a fresh machine:
#   make demo   - venv, install, offline weights, ingest the demo corpus, one search
#   make test   - the whole test suite (real models, real photos from ../shared/faces, Chromium)
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
FACES  ?= $(abspath ../shared/faces)
CORPUS ?= $(FACES)/celeb
QUERY  ?= $(FACES)/bad-inputs/collected/resolution_ladder__obama-480p.jpg
DB     ?= lookalike.db

export LOOKALIKE_FACES ?= $(FACES)

.PHONY: demo test install browser bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=23,<24.1"
	$(BIN)/python -m pip install --quiet -e ".[test,analysis,ui,postgres]"
	touch $@

demo: install
	$(BIN)/lookalike models install
	$(BIN)/lookalike models install emotion-offline age-gender-dlib
	$(BIN)/lookalike ingest "$(CORPUS)" --db "$(DB)"
	$(BIN)/lookalike search "$(QUERY)" --db "$(DB)" -k 3

test: install browser
	$(BIN)/python -m pytest -q -ra

# the web app's browser tests drive Debian's Chromium (never a browser downloaded by playwright)
browser:
	@command -v chromium >/dev/null || { \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }

bench: install
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) lookalike.db lookalike.db-* indexes/*.faiss indexes/*.json
