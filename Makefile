# The two commands of the README. Both create or reuse .venv through tools/install.sh.
.PHONY: demo test install lint

install:
	@tools/install.sh

demo: install
	@tools/demo.sh

test: install
	@.venv/bin/python -m pytest

lint: install
	@.venv/bin/ruff check .
