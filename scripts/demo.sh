#!/usr/bin/env bash
# Demo on a fresh machine: reads the real NHG professional summary (Nictiz test data), writes it in every
# HIS dialect built so far, validates each, and builds the professional summary. Output goes to ./var/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_uv.sh
"${UV[@]}" sync --frozen --quiet
PS=tests/data/external/nictiz-huisartswaarneming/QUPC_IN990002NL_01.hl7v3.xml
OUT=var/demo
mkdir -p "$OUT"
run() { echo "+ hisgw $*" >&2; "${UV[@]}" run --frozen --no-sync hisgw "$@"; }
# Read once: what the dossier does not hold is reported here (clinical leftovers as warnings, the envelope
# as one information line); every dialect is then written from that canonical dossier.
run convert "$PS" --from ps-hl7v3 --to canonical -o "$OUT/ps.canonical.json"
for f in $("${UV[@]}" run --frozen --no-sync hisgw formats --export --dossiers --writes --names); do  # every HIS dialect of dossiers
  run convert "$OUT/ps.canonical.json" --from canonical --to "$f" -o "$OUT/ps.$f"
  run validate "$OUT/ps.$f" --from "$f"
done
run summary "$OUT/ps.canonical.json" --from canonical --as-of 2017-06-21 --to omnihis -o "$OUT/summary.omnihis.json"
echo "demo output in $OUT/" >&2
ls -l "$OUT" >&2
