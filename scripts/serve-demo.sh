#!/usr/bin/env bash
# The README's start command: on a fresh machine (Python 3.11+ and pip) installs uv if missing, creates
# the environment from uv.lock and starts `hisgw serve --demo` on the embedded SQLite database, with the
# MLLP listener (and, where installed, the delivery worker) beside the FHIR API. Extra arguments go to
# `hisgw serve` (e.g. --port 8081). State (database, demo client keys) is kept in ./var of the directory
# it is started from; the README starts it from the checkout.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
source "$ROOT/scripts/_uv.sh"
"${UV[@]}" sync --frozen --quiet --project "$ROOT"
exec "${UV[@]}" run --frozen --no-sync --project "$ROOT" hisgw serve --demo "$@"
