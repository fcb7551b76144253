# The two entry points of the README. Each creates its own virtual environment on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export OMP_WAIT_POLICY := PASSIVE

.PHONY: demo test install lint bench clean browser seeds pilot mechanisms

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0          # the CPU build; must come first
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/flame-bench compare baseline flame

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# The README's three-seed table, rebuilt from a clone: three comparisons, then their summary (means over seeds, pooled
# deltas, Bio FActScore per popularity bin). The comparison files under results/comparisons/ point into results/runs/,
# which only these commands recreate.
SEED_SYSTEMS := baseline flame flame_composite
seeds: $(STAMP)
	for s in 0 1 2; do $(BIN)/flame-bench compare $(SEED_SYSTEMS) --seed $$s --quiet || exit 1; done
	$(BIN)/flame-bench seeds $(SEED_SYSTEMS) --seed 0 --seed 1 --seed 2

# The pilot study (the paper's Table 1) over three seeds, from a clone (~20 min here, the pilot world built first).
pilot: $(STAMP)
	$(BIN)/flame-bench pilot --seed 0 --seed 1 --seed 2 --quiet

# The world's mechanism probes over three seeds on the mechanism world (~35 min here: its world 7.5, the probes 27):
# results/mechanisms.json.
mechanisms: $(STAMP)
	$(BIN)/flame-bench world mechanisms --seed 0 --seed 1 --seed 2 --quiet

# Headless Chromium for tests/test_html_report.py (Debian's package; CI runs this as root). Never fails: without
# apt-get or root the browser test skips, naming the install command.
browser:
	@if command -v chromium >/dev/null 2>&1; then echo "chromium: $$(command -v chromium)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "warning: apt-get could not install chromium; the HTML report's browser test will skip"; \
	else echo "note: chromium is not installed (apt-get install -y chromium as root); the browser test will skip"; fi

lint: $(STAMP)
	$(BIN)/ruff check flame_bench tests

clean:
	rm -rf $(VENV) results/worlds results/cache
