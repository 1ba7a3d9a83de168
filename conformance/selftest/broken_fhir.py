"""A tiny FHIR server that is wrong on purpose: it serves a real FHIR server's answers (it forwards every
request to an upstream, e.g. ``hisgw serve --demo``) and breaks them by rule.

Breakages (``--break``, repeatable):

- ``wrong-codes``: 410 Gone becomes 404, 412 Precondition Failed becomes 409 (deleted reads and stale
  ``If-Match`` answered with the wrong status; the OperationOutcome stays);
- ``bare-errors``: a 404 comes back as ``text/plain`` "Not Found" without an OperationOutcome.

Run: ``python -m conformance.selftest.broken_fhir --upstream URL --port N --break wrong-codes``.
"""

from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


def make_handler(client: httpx.Client, breaks: set[str]) -> type[BaseHTTPRequestHandler]:

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            r = client.request(self.command, self.path, headers=headers, content=body)
            status, content = r.status_code, r.content
            out_headers = {k: v for k, v in r.headers.items() if k.lower() not in HOP}
            if "wrong-codes" in breaks and status in (410, 412):
                status = {410: 404, 412: 409}[status]
            if "bare-errors" in breaks and status == 404:
                content = b"Not Found"
                out_headers = {"Content-Type": "text/plain"}
            self.send_response(status)
            for k, v in out_headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

    return Handler


class BrokenFhirServer:
    """The server on 127.0.0.1 in a thread (``start`` / ``stop``); ``base_url`` is its FHIR base."""

    def __init__(self, upstream: str, breaks: set[str], port: int = 0):
        self.client = httpx.Client(base_url=upstream.rstrip("/"), timeout=60)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(self.client, breaks))
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> BrokenFhirServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument(
        "--break", dest="breaks", action="append", choices=["wrong-codes", "bare-errors"], default=[]
    )
    args = ap.parse_args()
    s = BrokenFhirServer(args.upstream, set(args.breaks), args.port)
    print(f"listening on {s.base_url}", flush=True)
    s.server.serve_forever()


if __name__ == "__main__":
    main()
