#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine that has only Python 3.11+ and pip:
# installs uv if missing, creates the project environment from uv.lock, runs pytest.
# The tests run in parallel (pytest-xdist, one worker per core; HISGW_TEST_WORKERS=N or 0 overrides it),
# and the 15 slowest are listed at the end.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -k medicom`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_uv.sh
source scripts/_system.sh
ensure_postgresql
ensure_chromium
"${UV[@]}" sync --frozen --quiet
exec "${UV[@]}" run --frozen --no-sync pytest -n "${HISGW_TEST_WORKERS:-auto}" --dist worksteal --durations=15 "$@"
