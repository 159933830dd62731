# The two commands a new user needs (each sets up .venv the first time):
#   make run    start the dashboard on http://127.0.0.1:8501 (local DuckDB file, packaged models)
#   make test   run the test suite (first installs Debian's chromium for the browser tests when it
#               can: as root or with passwordless sudo; otherwise says once what to run, and they skip)
.PHONY: run test setup lint format bench samples

export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export TOKENIZERS_PARALLELISM=false

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/tladvisor serve

test: setup
	@bash scripts/setup.sh --browser
	.venv/bin/python -m pytest $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

samples: setup
	.venv/bin/python scripts/build_samples.py

# make bench RAY=HOST:PORT runs the sweep step on that Ray cluster (bench/sweep.py)
bench: setup
	.venv/bin/python bench/run_all.py $(if $(RAY),--ray $(RAY))
