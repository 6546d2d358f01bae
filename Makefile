# The two commands of the README:
#   make run   - set up and run the relay locally: emulator + Azurite + samples through every trigger
#   make test  - set up and run every test (what CI runs)
.PHONY: run test setup lint serve bench

setup:
	@bash scripts/bootstrap.sh

run: setup
	@.venv/bin/python -m devtools.run_local

# make serve SERVE_ARGS="--port 7072" keeps 7071 free for `func start` (README: Running under func start)
serve: setup
	@.venv/bin/python -m devtools.run_local --serve $(SERVE_ARGS)

test: setup
	@bash scripts/test.sh

lint: setup
	@.venv/bin/ruff check .

bench: setup
	@.venv/bin/python -m bench
