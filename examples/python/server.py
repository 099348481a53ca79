#!/usr/bin/python3
"""vote_guard example: one vote endpoint on the standard library's http.server,
with psycopg 3 and a psycopg_pool connection pool.

    POST /contests/<contest>/entries/<entry>/vote
    optional JSON body {"user_id": "...", "email": "..."}, optional header Idempotency-Key

It calls vote_guard.cast_vote once and answers with the row's http_status and
a JSON body.  Settings come from the environment: PGHOST, PGPORT, PGDATABASE,
PGUSER, PGPASSWORD (read by libpq), HOST (default 127.0.0.1), PORT (default
8080), POOL_SIZE (default 10), TRUSTED_PROXIES (addresses or CIDR prefixes,
comma-separated, default none).

Debian 12: apt-get install python3-psycopg python3-psycopg-pool, then run it
with /usr/bin/python3.
"""

import ipaddress
import json
import math
import os
import re
import signal
import sys
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from psycopg_pool import ConnectionPool

CAST_VOTE = "SELECT * FROM vote_guard.cast_vote(%s, %s, %s, %s, %s, %s)"
MAX_BODY = 16 * 1024
MAX_BIGINT = 2**63 - 1
RETRIES = 3  # for 40001 and 40P01

# autocommit=True: each vote commits when cast_vote returns, before the
# answer is sent.  psycopg's default is a transaction that lasts until
# commit(): a connection closed without one rolls the vote back after the
# caller was told 200.  (The pool's `with pool.connection()` block commits at
# its end too; autocommit does not depend on using it so.)
# prepare_threshold=None: never server-side prepared statements, which
# PgBouncer in transaction mode (before 1.21, or without
# max_prepared_statements) sends to whichever server connection is free.
CONNECT_KWARGS = {"autocommit": True, "prepare_threshold": None}

ROUTE = re.compile(r"/contests/([^/]+)/entries/([^/]+)/vote")
ID = re.compile(r"[0-9]{1,19}")
HOP_BRACKETS = re.compile(r"\[([^\]]+)\](?::[0-9]{1,5})?")
HOP_V4_PORT = re.compile(r"([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+):[0-9]{1,5}")


def parse_id(text):
    """A positive bigint in decimal, or None."""
    if not ID.fullmatch(text):
        return None
    n = int(text)
    return n if 1 <= n <= MAX_BIGINT else None


def unmap(addr):
    """'::ffff:192.0.2.1' is 192.0.2.1."""
    if addr.version == 6 and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def parse_hop(hop):
    """One hop of X-Forwarded-For, maybe with a port ('192.0.2.1:5555',
    '[2001:db8::1]:443'); None when it is not an address."""
    m = HOP_BRACKETS.fullmatch(hop) or HOP_V4_PORT.fullmatch(hop)
    if m:
        hop = m.group(1)
    try:
        addr = ipaddress.ip_address(hop)
    except ValueError:
        return None
    if addr.version == 6 and addr.scope_id:
        return None
    return unmap(addr)


def proxy_list(spec):
    return [ipaddress.ip_network(item.strip(), strict=False)
            for item in (spec or "").split(",") if item.strip()]


def trusted(proxies, addr):
    return any(addr.version == net.version and addr in net for net in proxies)


def client_address(peer, forwarded_for, proxies):
    """The client's address: the socket's peer, unless that peer is a trusted
    proxy; then X-Forwarded-For is read from the right, and the first address
    that is not a trusted proxy is the client (the ones left of it are
    whatever the client chose to send).  None when a hop that must be read is
    malformed."""
    addr = unmap(ipaddress.ip_address(peer.split("%", 1)[0]))  # a link-local peer's zone
    if not trusted(proxies, addr) or not forwarded_for:
        return addr
    for hop in reversed([h.strip() for h in ",".join(forwarded_for).split(",")]):
        addr = parse_hop(hop)
        if addr is None or not trusted(proxies, addr):
            return addr
    return addr  # only proxies: the leftmost is the client


def make_pool(conninfo="", **overrides):
    size = int(os.environ.get("POOL_SIZE", "10"))
    kwargs = {**CONNECT_KWARGS, **overrides}
    return ConnectionPool(conninfo, min_size=size, max_size=size, kwargs=kwargs)


def cast_vote(pool, params):
    for attempt in range(1, RETRIES + 1):
        try:
            with pool.connection() as conn:
                return conn.execute(CAST_VOTE, params).fetchone()
        except (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected):
            # the vote was rolled back; running it again is safe (the same
            # request_id, if any)
            if attempt == RETRIES:
                raise
    return None


def invalid(detail):
    return 400, {"success": False, "error_code": "invalid_input", "vote_count": None,
                 "vote_id": None, "retry_at": None, "replayed": False, "detail": detail}, {}


def vote(pool, proxies, contest, entry, peer, forwarded_for, idempotency_key, body_text):
    """(status, body, headers) for one vote request."""
    contest_id, entry_id = parse_id(contest), parse_id(entry)
    if contest_id is None or entry_id is None:
        return invalid("contest and entry ids are positive integers")
    ip = client_address(peer, forwarded_for, proxies)
    if ip is None:
        return invalid("X-Forwarded-For holds something that is not an address")
    body = {}
    if body_text.strip():
        try:
            body = json.loads(body_text)
        except ValueError:
            return invalid("the body is not JSON")
    if (not isinstance(body, dict)
            or not isinstance(body.get("user_id"), (str, type(None)))
            or not isinstance(body.get("email"), (str, type(None)))):
        return invalid("the body is an object with optional strings user_id and email")
    # In an application, user_id is the user that it has authenticated, not
    # something the request states.
    (success, error_code, http_status, vote_count, vote_id, retry_at,
     replayed) = cast_vote(pool, (contest_id, entry_id, ip, body.get("user_id"),
                                  body.get("email"), idempotency_key))
    headers = {}
    if http_status == 429 and retry_at is not None:
        wait = (retry_at - datetime.now(timezone.utc)).total_seconds()
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return http_status, {
        "success": success, "error_code": error_code, "vote_count": vote_count,
        "vote_id": vote_id, "retry_at": retry_at.isoformat() if retry_at else None,
        "replayed": replayed}, headers


def make_handler(pool, proxies):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # the headers and the body are two writes: without TCP_NODELAY a
        # kept-alive connection waits for the client's delayed ACK (40 ms)
        disable_nagle_algorithm = True

        def answer(self, status, body, headers=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def route(self):
            m = ROUTE.fullmatch(self.path.split("?", 1)[0])
            if not m:
                self.answer(404, {"error_code": "not_found"})
            return m

        def do_GET(self):
            if self.route():
                self.answer(405, {"error_code": "method_not_allowed"}, {"Allow": "POST"})

        def do_POST(self):
            m = self.route()
            if not m:
                return
            if "Transfer-Encoding" in self.headers:  # a chunked body is not read here
                self.close_connection = True
                self.answer(411, {"error_code": "length_required"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY:
                self.close_connection = True
                self.answer(413, {"error_code": "body_too_large"})
                return
            text = self.rfile.read(length).decode("utf-8", "replace")
            try:
                status, body, headers = vote(
                    pool, proxies, m.group(1), m.group(2), self.client_address[0],
                    self.headers.get_all("X-Forwarded-For"),
                    self.headers.get("Idempotency-Key"), text)
            except Exception as err:  # noqa: BLE001 (one answer for any failure)
                code = getattr(getattr(err, "diag", None), "sqlstate", None) or ""
                # one write per line: threads print at the same time
                sys.stderr.write(f"vote failed: {code} {err}\n")
                sys.stderr.flush()
                status, body, headers = 500, {"error_code": "internal_error"}, {}
            self.answer(status, body, headers)

        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            pass  # one line per request is too much for a load test

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: a burst of new connections
    # beyond that waits for SYN retransmissions (1 s, 3 s, 7 s, ...)
    request_queue_size = 128


def main(pool=None):
    """Serve until SIGTERM or ^C.  pool: a ready pool (tests pass their own)."""
    pool = pool or make_pool()
    proxies = proxy_list(os.environ.get("TRUSTED_PROXIES"))
    host = os.environ.get("HOST", "127.0.0.1")
    server = Server((host, int(os.environ.get("PORT", "8080"))), make_handler(pool, proxies))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening on http://{host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
        pool.close()


if __name__ == "__main__":
    main()
