# Orchestra's recipes. `just --list` shows them.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Run the daemon in the foreground from this checkout (Ctrl-C stops it).
start:
    python -m orchestra daemon run

# The whole story on a scratch repository, with its own private daemon.
demo:
    python -m orchestra demo

# The test suite (what CI runs).
test *args:
    python -m pytest -q {{args}}

# Lint, format check and type check (and the C extension compiles without a warning).
check:
    ruff check .
    ruff format --check .
    mypy
    python -m pytest -q -n 0 tests/test_layers.py  # the import contract (docs/architecture.md)
    cc -fsyntax-only -Wall -Wextra -Wconversion -Werror -I"$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" orchestra/daemon/_forward.c

# Benchmarks against reference programs measured in the same run; each writes its row of
# bench/RESULTS.md (about five minutes in all).
bench:
    python bench/cli_latency.py
    python bench/start_overhead.py --rounds 15
    python bench/attach_throughput.py --mb 50 --rounds 3
    python bench/keystroke_latency.py --keys 1000
    python bench/keystroke_latency.py --keys 1000 --python-relay
    python bench/idle_cost.py --tasks 50 --seconds 30
    python bench/rpc_throughput.py --seconds 2 --clients 50
    python bench/scale.py --tasks 200 --rounds 15
    python bench/mcp_latency.py
    python bench/hook_latency.py
    python bench/terminal_model.py --mb 1 --rounds 2
    python bench/dashboard.py
    python bench/hostile_load.py --seconds 10
    python bench/remote.py
    cat bench/RESULTS.md

# Format the code and apply safe lint fixes.
fmt:
    ruff format .
    ruff check --fix .

# Make docs/dashboard.svg (the README's picture) on a scratch project with demo agents.
screenshot:
    python -m tests.ui.screenshot
