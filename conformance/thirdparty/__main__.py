"""``python -m conformance.thirdparty medplum [--port N]``: install (first use) and serve a third-party FHIR
server on 127.0.0.1 until interrupted."""

from __future__ import annotations

import argparse
import sys

from conformance.thirdparty import MedplumServer, Unavailable


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance.thirdparty")
    ap.add_argument("server", choices=["medplum"])
    ap.add_argument("--port", type=int, default=8103)
    args = ap.parse_args()
    try:
        server = MedplumServer(args.port).start()
    except Unavailable as exc:
        print(f"cannot start {args.server}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.server} FHIR server at {server.base_url} (Ctrl-C stops it)", flush=True)
    try:
        assert server.proc is not None
        server.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
