"""``python -m gateway.mllp --port N --db URL``: run the MLLP listener until SIGTERM/SIGINT.

Prints ``listening on HOST:PORT`` on standard output once the socket is bound (``--port 0`` picks a free
port). TLS with ``--tls-cert``/``--tls-key``; ``--tls-client-ca`` requires client certificates of that
CA. ``HISGW_MLLP_TEST_DELAY_AFTER_STORE`` (seconds) is a test hook: the listener sleeps between storing a
message and acknowledging it, so a test can kill it in that window.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys

from gateway.mllp.server import MllpServer
from gateway.mllp.store import MessageStore
from mappings.hl7v2.er7 import CHARSETS, MAX_MESSAGE_BYTES


def server_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    """A TLS server context (TLS 1.2+); with ``client_ca`` the client must present a certificate of it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.load_verify_locations(client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m gateway.mllp", description="HL7 v2 MLLP listener of his-gateway"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", default="sqlite:///hisgw-mllp.db", help="SQLAlchemy URL of the message store")
    p.add_argument("--max-frame", type=int, default=MAX_MESSAGE_BYTES)
    p.add_argument("--idle-timeout", type=float, default=60.0)
    p.add_argument("--max-connections", type=int, default=200)
    p.add_argument("--max-per-peer", type=int, default=50, help="connections from one address at once")
    p.add_argument(
        "--first-frame-timeout", type=float, default=10.0, help="seconds a new connection has for a frame"
    )
    p.add_argument(
        "--default-charset",
        default="",
        choices=[c for c in CHARSETS if c],
        help="charset for senders that leave MSH-18 empty (default: ASCII, as the standard says)",
    )
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--tls-client-ca")
    return p.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    ctx = server_context(args.tls_cert, args.tls_key, args.tls_client_ca) if args.tls_cert else None
    store = MessageStore(args.db)
    server = MllpServer(
        store,
        max_frame=args.max_frame,
        idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
        max_per_peer=args.max_per_peer,
        first_frame_timeout=args.first_frame_timeout,
        ssl=ctx,
        default_charset=args.default_charset,
        after_store_delay=float(os.environ.get("HISGW_MLLP_TEST_DELAY_AFTER_STORE", "0") or 0),
    )
    host, port = await server.start(args.host, args.port)
    print(f"listening on {host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.close()
    store.close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=os.environ.get("HISGW_LOG_LEVEL", "WARNING"),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    asyncio.run(_run(_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
