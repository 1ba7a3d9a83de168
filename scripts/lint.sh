#!/usr/bin/env bash
# The quality gates, each at zero findings: ruff, ruff format, mypy, import-linter (contracts in
# pyproject.toml). Runs in the project environment from uv.lock, as scripts/test.sh does.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_uv.sh
"${UV[@]}" sync --frozen --quiet
run() { "${UV[@]}" run --frozen --no-sync "$@"; }
echo "== ruff check";          run ruff check .
echo "== ruff format --check"; run ruff format --check .
echo "== mypy";                run mypy formats adapters mappings gateway conformance
echo "== import-linter";       run lint-imports
