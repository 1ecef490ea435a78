# Two entry points for a fresh machine (see README):
#   make demo   install everything, run noisy + DeepFilterNet3 on the demo suite, write the leaderboard
#   make test   install everything the tests need and run the whole test suite (slow tests included)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test bench bench-scale bench-official clean browser

install: $(STAMP)

$(STAMP): pyproject.toml Makefile constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -c constraints.txt -e '.[all,test]'
	# upstream code that pip cannot install beside urgentbench (nisqa pins torch 2.2.1; resemblyzer asks for
	# the source-only webrtcvad; denoiser for torchaudio; espnet for another torch): pinned release files,
	# imported at run time
	for a in resemblyzer-0.1.4 nisqa-code denoiser-0.1.5 espnet-202511; do $(BIN)/urgentbench assets fetch $$a || exit 1; done
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/urgentbench run --system noisy,deepfilternet3 --suite demo --jobs 2
	$(BIN)/urgentbench leaderboard --suite demo --format md,csv,json,html
	$(BIN)/urgentbench table --suite demo --format latex --ci --reference noisy -o leaderboards/demo/table.tex
	$(BIN)/urgentbench table --suite demo --format markdown --ci --reference noisy -o leaderboards/demo/table.md

test: $(STAMP) browser
	$(BIN)/python -m pytest -q tests

# Debian's chromium for the HTML leaderboard's browser test (never `playwright install`)
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; }

bench: $(STAMP)
	$(BIN)/python benchmarks/score_suite.py --suite demo --jobs 2

# issue 8: (a) vs URGENT's one-script-per-metric scheme, (b) harness overhead, (c) parallel efficiency, (d) WER batching
bench-scale: $(STAMP)
	$(BIN)/python benchmarks/scale.py --suite demo --jobs 2

# issue 19: the official URGENT 2025 scripts (from ../shared/reference, in a cached numpy-1.26 side venv)
# against urgentbench score on the same files, interleaved; BENCH_ARGS="--reps 1 --limit 4" for a quick run
bench-official: $(STAMP)
	$(BIN)/python benchmarks/vs_official.py --jobs 2 $(BENCH_ARGS)

clean:
	rm -rf $(VENV) results
