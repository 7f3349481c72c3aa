# sereval: one command sets up a fresh machine and runs the demo, one sets it up and runs the tests.
#   make demo    # venv + install + `sereval reproduce` (the offline demo, CPU, a few minutes)
#   make quick   # venv + install + the quick tier: pytest -m "not slow" and the notebooks' tests (a few minutes)
#   make test    # venv + install + sync/clean checks + notebook tests + every pytest test, slow ones included (CI)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel of torch that this project is tested with. On a GPU machine: make setup TORCH='torch'
TORCH  ?= torch==2.13.0

.PHONY: setup demo quick test bench gpu-check check ffmpeg chromium slurm espeak speech docs serve readme

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

# Headless Chromium for the site's browser checks (tests/test_site.py skips them without it).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)) \
	      || echo "note: chromium could not be installed; the site's browser checks skip"; \
	  else echo "note: chromium not found; the site's browser checks skip"; fi; }

# espeak-ng speaks a sentence for the test that the real Whisper tiny.en weights transcribe it (skipped without it).
espeak:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -q espeak-ng >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q espeak-ng >/dev/null)) \
	      || echo "note: espeak-ng could not be installed; the tiny.en transcription test skips"; \
	  else echo "note: espeak-ng not found; the tiny.en transcription test skips"; fi; }

# Real recorded speech for the tests (tests/test_real_speech.py skips without it): LibriVox utterances with their
# transcripts (pocketsphinx-testdata) and 8 kHz speech (codec2-examples).
SPEECH_PACKAGES := pocketsphinx-testdata codec2-examples
speech:
	@[ -d /usr/share/pocketsphinx/test/data/librivox ] && [ -d /usr/share/codec2/wav ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -q $(SPEECH_PACKAGES) >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q $(SPEECH_PACKAGES) >/dev/null)) \
	      || echo "note: $(SPEECH_PACKAGES) could not be installed; the real-speech tests skip"; \
	  else echo "note: $(SPEECH_PACKAGES) not found (root installs them); the real-speech tests skip"; fi; }

demo: setup
	$(BIN)/sereval reproduce

check: setup
	PATH="$(abspath $(BIN)):$$PATH" scripts/check_sync.sh

# Two notebooks run at once on two cores: one thread each, so torch does not oversubscribe the machine.
# Tests marked `slow` (full demo, papermill, doc processing, wheel build, subprocess kills) run in `make test` only.
# The quick tier leaves out the papermill notebooks (20_*, 21_*: a whole demo backbone each) besides nbdev's default skips.
THREADS := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
SLOW_NOTEBOOKS := ^[_.]|^2[0-9]_
# pytest on two workers (pytest-xdist), one single-threaded test each; `--dist loadfile` keeps every test file on one
# worker, so a module's fixture (a demo run, the Slurm cluster, the site build) is made once and its tests stay in order;
# --no-loadscope-reorder hands out the files in tests/conftest.py's order, the longest first, so both workers end together.
# -rs lists every skip with its reason. PYTEST_PARALLEL= (empty) runs them one at a time.
PYTEST_PARALLEL ?= -n 2 --dist loadfile --no-loadscope-reorder
quick: setup check
	$(THREADS) $(BIN)/nbdev_test --n_workers 2 --skip_file_re '$(SLOW_NOTEBOOKS)'
	$(THREADS) $(BIN)/python -m pytest $(PYTEST_PARALLEL) -q -rs -m "not slow" tests

test: setup ffmpeg chromium slurm espeak speech check
	$(THREADS) $(BIN)/nbdev_test --n_workers 2
	$(THREADS) $(BIN)/python -m pytest $(PYTEST_PARALLEL) -q -rs --durations=12 tests

# The benchmarks of this machine at their full size (minutes each; see nbs/16_bench.ipynb).
bench: setup
	$(BIN)/sereval bench store
	$(BIN)/sereval bench extract
	$(BIN)/sereval bench train

# A CUDA machine, offline, a few minutes: half-precision extraction with every reachable backbone, five seeds together and
# one alone, peak GPU memory, seed_cost_ratio and gemm_fraction as key=value lines (rates for `sereval reproduce --dry-run
# --rates gpu_rates.json`). Without CUDA: one line saying so, exit 0. Set up with TORCH='torch' for a CUDA build.
gpu-check: setup
	$(BIN)/sereval bench gpu --save gpu_rates.json

readme: setup
	$(BIN)/python scripts/make_readme.py

# The documentation site into _docs/: nbdev processes the notebooks into _proc/, then Quarto renders them with
# _quarto.yml when it is installed (the publishing build, .github/workflows/deploy.yaml), else pandoc from PyPI
# renders the same pages with the sidebar and titles of _quarto.yml (scripts/build_site.py says which build it did).
docs: setup
	$(THREADS) $(BIN)/python scripts/build_site.py

# Preview the built site (make docs first) at http://127.0.0.1:$(PORT)/ ; Ctrl-C stops it.
PORT ?= 8000
serve:
	@test -f _docs/index.html || { echo "no site in _docs/: run make docs first"; exit 1; }
	@echo "serving _docs/ at http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory _docs
docs-serve: serve

# Slurm and munge for the real single-node cluster of tests/test_slurm.py (it skips without them or without root).
slurm:
	@command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || (apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null)) \
	      || echo "note: slurm-wlm/munge could not be installed; the Slurm test skips"; \
	  else echo "note: slurm-wlm/munge not found (root installs them); the Slurm test skips"; fi; }
