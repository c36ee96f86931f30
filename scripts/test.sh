#!/usr/bin/env bash
# Set up (system tools + .venv with test extras) and run every check: ruff, mypy --strict, pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -m "not network").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --system --test
export SLIMLINE_CACHE_DIR="${SLIMLINE_CACHE_DIR:-/tmp/slimline-test-cache}"
.venv/bin/ruff check src tests bench
.venv/bin/mypy src tests
.venv/bin/pytest -q "$@"
