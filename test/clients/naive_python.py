#!/usr/bin/python3
"""examples/python with one of the settings that lose votes, to show that
they do (run.sh).  The example itself uses none of them.

    naive_python.py no-commit | prepare-default | prepare-0

no-commit: what README's first psycopg snippet did: connect, execute, close,
never commit (psycopg's default is not autocommit): every vote is answered
and then rolled back.
prepare-default, prepare-0: psycopg's prepare_threshold left at its default
(5: a statement run 5 times on a connection is prepared) or 0 (prepared at
once) through PgBouncer in transaction mode.
"""

import contextlib
import os
import sys

import psycopg

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "examples", "python"))
import server  # noqa: E402 (after the path is set)


class ConnectionPerRequest:
    """A connection per request, closed without a commit."""

    @contextlib.contextmanager
    def connection(self):
        conn = psycopg.connect("")
        try:
            yield conn
        finally:
            conn.close()

    def close(self):
        pass


mode = sys.argv[1]
if mode == "no-commit":
    pool = ConnectionPerRequest()
elif mode == "prepare-default":
    pool = server.make_pool(prepare_threshold=5)
elif mode == "prepare-0":
    pool = server.make_pool(prepare_threshold=0)
else:
    sys.exit(f"unknown mode {mode}")
server.main(pool)
