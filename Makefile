# The two commands of the README. Each sets up .venv first (seconds when done).
PY := .venv/bin/python

.PHONY: setup demo test

setup:
	bash tools/setup_env.sh

# The main job: generate a small detection set, train SSD on it, evaluate, draw.
demo: setup
	$(PY) tools/quickstart.py

# The whole test suite.
test: setup
	$(PY) -m pytest tests
