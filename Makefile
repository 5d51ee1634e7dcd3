# eiegen: every target is a thin wrapper over a Python CLI (each has --help).
# First use creates and fills .venv (python3 + venv, a C++ compiler, make and perl are enough).

MODEL  ?= alexnet_fc
CONFIG ?= eie64
SEED   ?= 0
WAVES  ?= 0
PARAM  ?= pes
VALUES ?= 1,2,4,8,16,32,64,128,256
CHECK_RTL ?= 0
N         ?= 1000
SCHEDULER ?=
PYTEST_ARGS ?=
DENSITY ?=
BITS    ?=
BALANCE ?=
PAD_AWARE ?=
# your own inputs x (and optional labels y) for sim, report and compress: DATA=file.npz
DATA    ?=
# compiler options every command that compiles takes (DENSITY=0.1 or one per layer
# 0.08,0.09,0.26, BALANCE=1: ESE's load-balance-aware pruning, PAD_AWARE=1: padding-aware pruning)
OPTS = $(if $(DENSITY),--density $(DENSITY),) $(if $(BALANCE),--balance,) \
       $(if $(PAD_AWARE),--pad-aware,)

# WAVES: yes/no in any of the spellings cocotb accepts; it is a make variable only (the
# simulation decides waves by --waves, not by a WAVES left in the environment)
unexport WAVES
WAVES_LC  = $(shell printf '%s' '$(WAVES)' | tr 'A-Z' 'a-z')
WAVES_YES = 1|yes|y|on|true|enable
WAVES_NO  = 0|no|n|off|false|disable|''

PYTHON3 ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.eiegen-installed

.PHONY: all compile compress cycles verilog sim report synth sweep regress test test-fast bench lint clean venv help

help:
	@echo "make sim MODEL=alexnet_fc [CONFIG=eie64] [SEED=0] [WAVES=1]  compile, generate, simulate"
	@echo "                           (compile, sim, cycles, compress also take DENSITY=0.1 or one per"
	@echo "                           layer 0.08,0.09,0.26, BALANCE=1 PAD_AWARE=1; sim, report and"
	@echo "                           compress DATA=file.npz: your inputs x, labels y, accuracy printed)"
	@echo "make compile MODEL=...     compile a model into memory images + manifest"
	@echo "make verilog CONFIG=...    generate eie_top.v for a preset or JSON config"
	@echo "make compress MODEL=... [DENSITY=0.08,0.09,0.26] [BITS=4] [BALANCE=1]  Deep Compression"
	@echo "                           with retraining (LSTMs too); accuracy of every stage, RTL included"
	@echo "make cycles MODEL=... [CONFIG=ese] [PAD_AWARE=1]  cycle model without the RTL (LSTMs: the ESE"
	@echo "                           schedule beside ESE's time per frame)"
	@echo "make report MODEL=...      write report.md/html for a simulated model"
	@echo "make sweep MODEL=... PARAM=pes|queue_depth|weight_bits|rel_index_bits VALUES=1,2,4,...,256"
	@echo "                           [CHECK_RTL=K]  design-space sweep on the cycle model"
	@echo "make synth CONFIG=...      Yosys: Xilinx LUT/FF/BRAM/DSP, iCE40 Fmax, logic for the area model"
	@echo "make regress [N=1000] [SEED=0] [SCHEDULER=tcp://host:8786|file]  constrained-random"
	@echo "                           regression farm on Dask (local cluster by default)"
	@echo "make test | test-fast      full test suite | without slow tests"
	@echo "make bench                 benchmarks recorded in the README"
	@echo "make lint | clean"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

compile: $(STAMP)
	$(PY) -m compiler --model "$(MODEL)" --config "$(CONFIG)" --seed $(SEED) $(OPTS)

compress: $(STAMP)
	$(PY) -m sim.studies.compress --model "$(MODEL)" --config "$(CONFIG)" --seed $(SEED) \
		$(if $(BITS),--bits $(BITS),) $(OPTS) $(if $(DATA),--data "$(DATA)",)

cycles: $(STAMP)
	$(PY) -m sim.studies.cycles --model "$(MODEL)" --config "$(CONFIG)" --seed $(SEED) $(OPTS)

verilog: $(STAMP)
	$(PY) -m hw --config "$(CONFIG)"

sim: $(STAMP)
	@case "$(WAVES_LC)" in $(WAVES_YES)|$(WAVES_NO)) ;; *) echo "make sim: error: WAVES=$(WAVES)" \
		"is not a yes/no value; use WAVES=1 (or yes, on, true) or WAVES=0" >&2; exit 2;; esac
	$(PY) -m sim --model "$(MODEL)" --config "$(CONFIG)" --seed $(SEED) $(OPTS) \
		$(if $(filter $(subst |, ,$(WAVES_YES)),$(WAVES_LC)),--waves,) \
		$(if $(SCHEDULER),--scheduler $(SCHEDULER),) $(if $(DATA),--data "$(DATA)",)

regress: $(STAMP)
	$(PY) -m sim.regress --n $(N) --seed $(SEED) $(if $(SCHEDULER),--scheduler $(SCHEDULER),)

sweep: $(STAMP)
	$(PY) -m sim.studies.sweep --model "$(MODEL)" --config "$(CONFIG)" --seed $(SEED) --param $(PARAM) \
		--values $(VALUES) --check-rtl $(CHECK_RTL) $(if $(SCHEDULER),--scheduler $(SCHEDULER),)

synth: $(STAMP)
	$(PY) -m sim.estimates.synth --config "$(CONFIG)"

report: $(STAMP)
	$(PY) -m sim.studies.report --model "$(MODEL)" --config "$(CONFIG)" --seed $(SEED) \
		$(if $(DATA),--data "$(DATA)",)

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m ruff check hw sim compiler models tests bench

clean:
	rm -rf build .pytest_cache .ruff_cache
