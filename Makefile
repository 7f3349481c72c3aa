# sereval: one command sets up a fresh machine and runs the demo, one sets it up and runs the tests.
#   make demo    # venv + install + `sereval reproduce` (the offline demo, CPU, a few minutes)
#   make test    # venv + install + sync/clean checks + notebook tests + pytest
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel of torch that this project is tested with. On a GPU machine: make setup TORCH='torch'
TORCH  ?= torch==2.13.0

.PHONY: setup demo test check ffmpeg docs readme

setup: $(VENV)/.installed

$(VENV)/.installed: settings.ini setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

ffmpeg:
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -q ffmpeg >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q ffmpeg >/dev/null)); \
	  else echo "note: ffmpeg not found; .m4a/.mp4/.avi clips (MEAD, MELD, eNTERFACE) cannot be decoded and their tests skip"; fi; }

demo: setup
	$(BIN)/sereval reproduce

check: setup
	PATH="$(abspath $(BIN)):$$PATH" scripts/check_sync.sh

# Two notebooks run at once on two cores: one thread each, so torch does not oversubscribe the machine.
test: setup ffmpeg check
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev_test --n_workers 2
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q tests

readme: setup
	$(BIN)/python scripts/make_readme.py

# The documentation site (needs Quarto, https://quarto.org): nbdev processes the notebooks into _proc/,
# then Quarto renders them with _quarto.yml into _docs/.
docs: setup
	$(BIN)/python -c "from nbdev.serve import proc_nbs; proc_nbs()"
	cp _quarto.yml _proc/_quarto.yml
	cd _proc && quarto render
