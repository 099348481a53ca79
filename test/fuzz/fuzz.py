#!/usr/bin/python3
"""vote_guard SQL-level fuzzer.

Calls every function of vote_guard with random and adversarial arguments in
every position, as the owner and as a role without grants, under READ
COMMITTED, REPEATABLE READ and SERIALIZABLE, over contests that cover every
policy and extreme settings; each transaction commits or rolls back at
random.  Then it asserts:

  - the server did not restart, and no call failed with XX000 (or any
    SQLSTATE of class XX);
  - every cast_vote / change_vote / retract_vote call answered a documented
    row or a documented SQLSTATE; every other call a documented SQLSTATE;
  - success, http_status, vote_count, vote_id, retry_at and replayed agree
    with error_code;
  - verify() shows drift 0 for every contest;
  - no stored vote breaks its contest's policy (per vector and window at most
    votes_per_voter votes, at most per_entry_limit per entry, cooldowns).

It prints calls, answers by code, errors by SQLSTATE, one "test ... ok" or
"test ... FAILED" line per assertion (test/run-all.sh counts them), and for
each failure a one-line reproducer: the seed, the call number and the SQL.

Connects with the libpq environment (PGHOST, PGPORT, PGUSER) as a superuser,
works in its own database (dropped and created again).

Environment: VG_FUZZ_SEED (default 20261130), VG_FUZZ_CALLS (20000),
VG_FUZZ_DB (vote_guard_fuzz).  A longer run:
    VG_FUZZ_SEED=$RANDOM VG_FUZZ_CALLS=300000 /usr/bin/python3 test/fuzz/fuzz.py
"""
import collections
import os
import random
import sys
import time

import psycopg

SEED = int(os.environ.get("VG_FUZZ_SEED", "20261130"))
CALLS = int(os.environ.get("VG_FUZZ_CALLS", "20000"))
DB = os.environ.get("VG_FUZZ_DB", "vote_guard_fuzz")
ANON = "vg_fuzz_nobody"

rng = random.Random(SEED)

# -- the contract ------------------------------------------------------------

HTTP = {
    "ok": 200, "duplicate_ip": 409, "duplicate_user": 409, "duplicate_email": 409,
    "limit_reached": 429, "cooldown": 429, "contest_not_found": 404,
    "entry_not_found": 404, "contest_not_open": 403, "contest_closed": 403,
    "login_required": 401, "invalid_input": 400, "change_not_allowed": 403,
    "vote_not_found": 404, "entry_full": 409, "contest_full": 409,
}
# rejected before the entry was looked at: no vote_count
NO_COUNT = {"contest_not_found", "contest_not_open", "contest_closed",
            "login_required", "invalid_input", "change_not_allowed",
            "vote_not_found", "entry_not_found"}
# SQLSTATEs a function may raise (documented); serialization failures and
# deadlocks are documented for every vote function
VOTE_ERRORS = {"40001", "40P01"}
ADMIN_ERRORS = {
    "create_contest": {"22023"},
    "add_entry": {"22023", "42704", "23505"},
    "close_contest": {"42704"},
    "rotate_secrets": set(),
    "verify": set(),
    "ip_key": {"22023", "42704"},
    "email_key": {"42704"},
    "set_entry_capacity": {"22023", "42704"},
    "set_contest_capacity": {"22023", "42704"},
}
PRIVATE = set(ADMIN_ERRORS)      # revoked from PUBLIC: 42501 as the anon role

# -- argument generators -------------------------------------------------------

# capacities (1.1): none, small enough to fill, a debt after lowering, bad
CAPACITIES = [None, None, 0, 1, 2, 5, 50, 2**62, -1]


def lit(v, typ):
    """An SQL literal of type typ for v (None: NULL)."""
    if v is None:
        return "NULL::" + typ
    if isinstance(v, bool):
        return ("true" if v else "false") + "::" + typ
    if isinstance(v, int):
        return "(%d)::%s" % (v, typ)
    if isinstance(v, list):
        return "'" + v[0].replace("'", "''") + "'::" + typ
    return "'" + str(v).replace("'", "''") + "'::" + typ


BIGINTS = [0, -1, 1, 2, 3, 5, 2**63 - 1, -2**63, 2**31, 10**12]
INTS = [0, -1, 1, 2, 3, 24, 32, 33, 48, 64, 128, 129, 1000, 1001, 2**31 - 1, -2**31]
INETS = ["192.0.2.1", "192.0.2.2", "198.51.100.7", "10.0.0.0/8", "0.0.0.0",
         "255.255.255.255", "::", "::1", "::ffff:192.0.2.1", "2001:db8::1",
         "2001:db8::2", "2001:db8:0:1::1", "fe80::1", "2001:db8::/32",
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "192.0.2.1/32", "::ffff:0.0.0.0"]
TEXTS = ["", " ", "u-1", "u-2", "User", "a" * 256, "a" * 257, "é" * 256, "é" * 257,
         "'; DROP TABLE vote_guard.votes; --", "\\", "%s", "\t", "💥" * 64,
         "x\u0301" * 100, "NULL", "u-" + "9" * 40]
EMAILS = ["Ann.Lee+polls@gmail.com", "annlee@googlemail.com", "a@b", "@", "a@",
          "@b", "a@@b", "a b@c.d", "A@B.C", "x" * 243 + "@example.com",
          "x" * 244 + "@example.com", "\u00e9@\u00e9.fr", "a+@gmail.com",
          "+@gmail.com", "...@gmail.com", " ann@example.com ", "ann@example.com.",
          "ann@[192.0.2.1]", "\"a b\"@example.com", "a@b@c", ""]
TIMES = ["now", "-infinity", "infinity", "4714-11-24 00:00:00+00 BC",
         "294276-12-31 23:59:59.999999+00", "2000-01-01 00:00:00+00",
         "2026-01-01 00:00:00+00", "1931-12-13 20:45:52+00",
         "2068-01-19 03:14:08+00", "2100-01-01 00:00:00+00"]
INTERVALS = ["1 second", "1 microsecond", "0", "-1 day", "1 day", "1 mon",
             "100 years", "100 years 1 microsecond", "178000000 years",
             "6000000 years -2147483648 days -300392424 hours",
             "106751992 days -2562047788:00:54.775807", "1 day -86399 seconds",
             "10 minutes", "7 days", "-178000000 years"]
ARRAYS = ["{ip,user,email}", "{ip}", "{user}", "{email}", "{}", "{ip,ip}",
          "{{ip},{user}}", "{{{user}}}", "{ip,NULL}", "{IP}", "{phone}",
          "[0:1]={user,ip}", "{NULL}", "{user,email}"]
BYTEAS = ["\\x", "\\x00", "\\x" + "ab" * 64, "\\x" + "00" * 1000, "key"]


def maybe_null(gen, p=0.1):
    return None if rng.random() < p else gen()


class World:
    def __init__(self):
        self.contests = []       # ids
        self.created = []        # made by the fuzz (the ones it closes)
        self.request_ids = []

    def contest_id(self):
        r = rng.random()
        if r < 0.85 and self.contests:
            return rng.choice(self.contests)
        return rng.choice(BIGINTS + [max(self.contests or [0]) + 1])

    def entry_id(self):
        return rng.choice([1, 1, 2, 3, 4, 5, 6, 2**63 - 1, 0, -1, -2**63])

    def inet(self):
        if rng.random() < 0.6:
            return "192.0.2.%d" % rng.randint(0, 40) if rng.random() < 0.5 else \
                "2001:db8:%x::%x" % (rng.randint(0, 8), rng.randint(0, 8))
        return rng.choice(INETS)

    def user(self):
        if rng.random() < 0.85:
            return "u-%d" % rng.randint(0, 60)
        return rng.choice(TEXTS)

    def email(self):
        if rng.random() < 0.6:
            return "%s%s@%s" % (rng.choice(["ann", "Ann.Lee", "bob", "b.o.b"]),
                                rng.choice(["", "+x", "+polls"]),
                                rng.choice(["gmail.com", "example.com", "GoogleMail.com"]))
        return rng.choice(EMAILS)

    def request_id(self):
        if self.request_ids and rng.random() < 0.3:
            return rng.choice(self.request_ids)
        r = rng.choice(["req-%d" % rng.randint(0, 10**6)] * 3 + TEXTS)
        self.request_ids.append(r)
        del self.request_ids[:-200]
        return r

    def time(self):
        t = rng.choice(TIMES)
        if t == "now":
            return None, "now() + (%d * interval '1 second')" % rng.randint(-10**6, 10**6)
        return t, None


def time_lit(w):
    t, expr = w.time()
    if expr is not None:
        return expr
    return lit(t, "timestamptz")


def gen_call(w):
    """(function name, SQL) of a random call."""
    fn = rng.choices(
        ["cast_vote", "change_vote", "retract_vote", "results", "verify",
         "create_contest", "add_entry", "close_contest", "rotate_secrets",
         "ip_key", "email_key", "hmac_sha256", "normalize_email", "window_number",
         "set_entry_capacity", "set_contest_capacity"],
        weights=[50, 8, 6, 3, 2, 4, 3, 1, 0.2, 3, 3, 2, 3, 3, 1, 1])[0]
    if fn == "cast_vote":
        args = [lit(maybe_null(w.contest_id, 0.03), "bigint"),
                lit(maybe_null(w.entry_id, 0.03), "bigint"),
                lit(maybe_null(w.inet, 0.3), "inet"),
                lit(maybe_null(w.user, 0.3), "text"),
                lit(maybe_null(w.email, 0.7), "text"),
                lit(maybe_null(w.request_id, 0.6), "text")]
        sql = "SELECT * FROM vote_guard.cast_vote(%s)" % ", ".join(args)
    elif fn == "change_vote":
        args = [lit(maybe_null(w.contest_id, 0.03), "bigint"),
                lit(maybe_null(w.entry_id, 0.03), "bigint"),
                lit(maybe_null(w.user, 0.1), "text"),
                lit(maybe_null(w.entry_id, 0.6), "bigint")]
        sql = "SELECT * FROM vote_guard.change_vote(%s)" % ", ".join(args)
    elif fn == "retract_vote":
        args = [lit(maybe_null(w.contest_id, 0.03), "bigint"),
                lit(maybe_null(w.user, 0.1), "text"),
                lit(maybe_null(w.entry_id, 0.6), "bigint")]
        sql = "SELECT * FROM vote_guard.retract_vote(%s)" % ", ".join(args)
    elif fn == "close_contest":
        c = rng.choice(w.created) if w.created and rng.random() < 0.9 else w.contest_id()
        sql = "SELECT * FROM vote_guard.close_contest(%s)" % lit(c, "bigint")
    elif fn in ("results", "verify"):
        sql = "SELECT * FROM vote_guard.%s(%s)" % (fn, lit(maybe_null(w.contest_id), "bigint"))
    elif fn == "rotate_secrets":
        sql = "SELECT vote_guard.rotate_secrets()"
    elif fn == "add_entry":
        sql = "SELECT vote_guard.add_entry(%s, %s, %s, %s)" % (
            lit(maybe_null(w.contest_id), "bigint"),
            lit(rng.choice([rng.randint(1, 8), 0, -5, 2**63 - 1, None]), "bigint"),
            lit(maybe_null(lambda: rng.choice(TEXTS), 0.5), "text"),
            lit(rng.choice(CAPACITIES), "bigint"))
    elif fn == "set_entry_capacity":
        sql = "SELECT vote_guard.set_entry_capacity(%s, %s, %s)" % (
            lit(maybe_null(w.contest_id), "bigint"), lit(maybe_null(w.entry_id), "bigint"),
            lit(rng.choice(CAPACITIES), "bigint"))
    elif fn == "set_contest_capacity":
        sql = "SELECT vote_guard.set_contest_capacity(%s, %s)" % (
            lit(maybe_null(w.contest_id), "bigint"), lit(rng.choice(CAPACITIES), "bigint"))
    elif fn == "create_contest":
        named = []
        opts = {
            "name": lambda: lit(rng.choice(["fuzz", "fuzz", "", None]), "text"),
            "opens_at": lambda: time_lit(w),
            "closes_at": lambda: rng.choice([lit(None, "timestamptz"), time_lit(w)]),
            "dedupe_on": lambda: lit(maybe_null(lambda: rng.choice(ARRAYS), 0.05), "text[]"),
            "ipv4_prefix": lambda: lit(maybe_null(lambda: rng.choice(INTS), 0.05), "int"),
            "ipv6_prefix": lambda: lit(maybe_null(lambda: rng.choice(INTS), 0.05), "int"),
            "require_user": lambda: lit(rng.choice([True, False, None]), "boolean"),
            "votes_per_voter": lambda: lit(maybe_null(lambda: rng.choice(INTS), 0.05), "int"),
            "per_entry_limit": lambda: lit(maybe_null(lambda: rng.choice(INTS), 0.05), "int"),
            "vote_window": lambda: lit(maybe_null(lambda: rng.choice(INTERVALS), 0.5), "interval"),
            "cooldown": lambda: lit(maybe_null(lambda: rng.choice(INTERVALS), 0.5), "interval"),
            "allow_change": lambda: lit(rng.choice([True, False, None]), "boolean"),
            "capacity": lambda: lit(rng.choice(CAPACITIES), "bigint"),
        }
        for k, g in opts.items():
            if k == "name" or rng.random() < 0.35:
                named.append("%s => %s" % (k, g()))
        sql = "SELECT vote_guard.create_contest(%s)" % ", ".join(named)
    elif fn == "ip_key":
        sql = "SELECT vote_guard.ip_key(%s, %s)" % (lit(maybe_null(w.contest_id), "bigint"),
                                                     lit(maybe_null(w.inet), "inet"))
    elif fn == "email_key":
        sql = "SELECT vote_guard.email_key(%s, %s)" % (lit(maybe_null(w.contest_id), "bigint"),
                                                        lit(maybe_null(w.email), "text"))
    elif fn == "hmac_sha256":
        sql = "SELECT vote_guard.hmac_sha256(%s, %s)" % (
            lit(maybe_null(lambda: rng.choice(BYTEAS)), "bytea"),
            lit(maybe_null(lambda: rng.choice(BYTEAS)), "bytea"))
    elif fn == "normalize_email":
        sql = "SELECT vote_guard.normalize_email(%s)" % lit(maybe_null(w.email), "text")
    else:
        sql = "SELECT vote_guard.window_number(%s, %s, %s)" % (
            time_lit(w), lit(maybe_null(lambda: rng.choice(INTERVALS)), "interval"), time_lit(w))
    return fn, sql


# -- the contests ----------------------------------------------------------------

CONTESTS = [
    "'fuzz default'",
    "'fuzz ip only', dedupe_on => '{ip}', ipv4_prefix => 1, ipv6_prefix => 128",
    "'fuzz user only', dedupe_on => '{user}', require_user => true",
    "'fuzz email', dedupe_on => '{email,user}'",
    "'fuzz approval', votes_per_voter => 3, per_entry_limit => 2",
    "'fuzz likes', votes_per_voter => 20, per_entry_limit => 20, vote_window => '1 day', cooldown => '10 minutes'",
    "'fuzz second windows', dedupe_on => '{user,ip}', vote_window => '1 second', votes_per_voter => 2",
    "'fuzz long cooldown', cooldown => '100 years', votes_per_voter => 1000, per_entry_limit => 1000",
    "'fuzz change', dedupe_on => '{user}', allow_change => true, votes_per_voter => 2",
    "'fuzz change windows', dedupe_on => '{user,email}', allow_change => true, vote_window => '1 hour'",
    "'fuzz old', opens_at => '4714-11-24 00:00:00+00 BC', vote_window => '100 years'",
    "'fuzz last window', opens_at => now() - interval '2147483647 seconds', vote_window => '1 second'",
    "'fuzz future', opens_at => '294276-01-01 00:00:00+00', vote_window => '1 second'",
    "'fuzz closing', closes_at => now() + interval '5 seconds'",
    "'fuzz odd window', vote_window => '6000000 years -2147483648 days -300392424 hours', votes_per_voter => 2, per_entry_limit => 2",
]


def setup(admin):
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS %s" % DB)
        cur.execute("CREATE DATABASE %s" % DB)
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ANON,))
        if cur.fetchone() is None:
            cur.execute("CREATE ROLE %s NOLOGIN" % ANON)
    conn = psycopg.connect(dbname=DB, autocommit=True)
    w = World()
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION vote_guard")
        for args in CONTESTS:
            cur.execute("SELECT vote_guard.create_contest(%s)" % args)
            c = cur.fetchone()[0]
            w.contests.append(c)
            for e in (1, 2, 3, 4, 5, 2**63 - 1):
                cur.execute("SELECT vote_guard.add_entry(%s, %s)", (c, e))
        # an open-ended contest whose windows have run out (create_contest
        # refuses one; the owner can write it)
        cur.execute("INSERT INTO vote_guard.contests (name, opens_at, vote_window, secret_version)"
                    " VALUES ('fuzz exhausted', now() - interval '80 years', '1 second', 1)"
                    " RETURNING id")
        c = cur.fetchone()[0]
        w.contests.append(c)
        cur.execute("SELECT vote_guard.add_entry(%s, 1)", (c,))
        cur.execute("SELECT vote_guard.create_contest('fuzz closed')")
        c = cur.fetchone()[0]
        cur.execute("SELECT vote_guard.add_entry(%s, 1)", (c,))
        cur.execute("SELECT vote_guard.close_contest(%s)", (c,))
        w.contests.append(c)
        cur.execute("SELECT pg_postmaster_start_time()")
        start = cur.fetchone()[0]
    return conn, w, start


# -- the run ---------------------------------------------------------------------

LEVELS = ["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]


def check_row(fn, row, cols):
    """Problems with a vote_result row, as a list of strings."""
    r = dict(zip(cols, row))
    code = r["error_code"]
    bad = []
    if code not in HTTP:
        return ["undocumented error_code %r" % code]
    if fn == "cast_vote" and code in ("change_not_allowed", "vote_not_found"):
        bad.append("cast_vote answered %s" % code)
    if r["http_status"] != HTTP[code]:
        bad.append("http_status %s for %s" % (r["http_status"], code))
    if r["success"] != (code == "ok"):
        bad.append("success %s for %s" % (r["success"], code))
    if code == "ok" and (r["vote_id"] is None or r["vote_count"] is None
                         or r["vote_count"] < (0 if fn == "retract_vote" else 1)):
        bad.append("ok without vote_id or vote_count (%s, %s)" % (r["vote_id"], r["vote_count"]))
    if code != "ok" and r["replayed"]:
        bad.append("replayed without ok")
    if r["replayed"] is None:
        bad.append("replayed is null")
    if r["retry_at"] is not None and code not in ("limit_reached", "cooldown"):
        bad.append("retry_at for %s" % code)
    if code == "cooldown" and r["retry_at"] is None:
        bad.append("cooldown without retry_at")
    if code in NO_COUNT and code != "entry_not_found" and r["vote_count"] is not None \
            and not r["replayed"]:
        bad.append("vote_count for %s" % code)
    return bad


def main():
    t0 = time.time()
    admin = psycopg.connect(dbname=os.environ.get("PGDATABASE", "postgres"), autocommit=True)
    conn, w, start = setup(admin)
    answers = collections.Counter()
    errors = collections.Counter()
    failures = []
    calls = 0
    txn = 0

    def fail(what, call_no, sql, role, level):
        failures.append(what)
        if len(failures) <= 20:
            print("# FAIL: %s\n#   reproduce: VG_FUZZ_SEED=%d VG_FUZZ_CALLS=%d /usr/bin/python3 test/fuzz/fuzz.py"
                  "  # call %d as %s, %s: %s" % (what, SEED, CALLS, call_no, role, level, sql))

    while calls < CALLS:
        txn += 1
        role = ANON if rng.random() < 0.3 else "owner"
        level = rng.choice(LEVELS)
        with conn.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL " + level)
            if role == ANON:
                cur.execute("SET LOCAL ROLE " + ANON)
            for _ in range(rng.randint(1, 4)):
                if calls >= CALLS:
                    break
                calls += 1
                fn, sql = gen_call(w)
                cur.execute("SAVEPOINT call")
                try:
                    cur.execute(sql)
                    rows = cur.fetchall()
                    cols = [d.name for d in cur.description]
                    cur.execute("RELEASE SAVEPOINT call")
                except psycopg.Error as e:
                    state = e.sqlstate or "?????"
                    errors[(fn, state)] += 1
                    if state is None or state.startswith("XX") or state == "?????":
                        fail("%s raised %s: %s" % (fn, state, str(e).splitlines()[0]),
                             calls, sql, role, level)
                    elif fn in ("cast_vote", "change_vote", "retract_vote"):
                        if state not in VOTE_ERRORS:
                            fail("%s raised undocumented %s: %s" % (fn, state, str(e).splitlines()[0]),
                                 calls, sql, role, level)
                    elif fn in ADMIN_ERRORS:
                        ok = ADMIN_ERRORS[fn] | ({"42501"} if role == ANON else set())
                        if state not in ok:
                            fail("%s raised undocumented %s: %s" % (fn, state, str(e).splitlines()[0]),
                                 calls, sql, role, level)
                    else:
                        fail("%s raised %s: %s" % (fn, state, str(e).splitlines()[0]),
                             calls, sql, role, level)
                    if conn.closed or conn.broken:
                        fail("connection lost", calls, sql, role, level)
                        return report(answers, errors, failures, calls, t0, None, None)
                    cur.execute("ROLLBACK TO SAVEPOINT call")
                    continue
                if fn in ("cast_vote", "change_vote", "retract_vote"):
                    for row in rows:
                        answers[(fn, row[cols.index("error_code")])] += 1
                        for problem in check_row(fn, row, cols):
                            fail("%s: %s" % (fn, problem), calls, sql, role, level)
                elif fn == "create_contest" and role == "owner" and rows and rows[0][0]:
                    w.contests.append(rows[0][0])
                    w.created.append(rows[0][0])
                    answers[(fn, "created")] += 1
                else:
                    answers[(fn, "returned")] += 1
            end = "COMMIT" if rng.random() < 0.8 else "ROLLBACK"
            try:
                cur.execute(end)
            except psycopg.Error as e:
                errors[(end, e.sqlstate)] += 1
                if e.sqlstate not in VOTE_ERRORS:
                    fail("%s raised %s: %s" % (end, e.sqlstate, str(e).splitlines()[0]),
                         calls, end, role, level)
    return report(answers, errors, failures, calls, t0, conn, start)


POLICY_QUERY = """
WITH v AS (
  SELECT v.*, c.votes_per_voter, c.per_entry_limit, c.cooldown
    FROM vote_guard.votes v JOIN vote_guard.contests c ON c.id = v.contest_id),
vec AS (
  SELECT contest_id, 'ip' AS vec, ip_key::text AS k, window_no, entry_id, created_at,
         votes_per_voter, per_entry_limit, cooldown FROM v WHERE ip_key IS NOT NULL
  UNION ALL
  SELECT contest_id, 'user', user_id, window_no, entry_id, created_at,
         votes_per_voter, per_entry_limit, cooldown FROM v WHERE user_id IS NOT NULL
  UNION ALL
  SELECT contest_id, 'email', email_key::text, window_no, entry_id, created_at,
         votes_per_voter, per_entry_limit, cooldown FROM v WHERE email_key IS NOT NULL)
SELECT 'votes_per_voter', count(*) FROM (
  SELECT 1 FROM vec GROUP BY contest_id, vec, k, window_no, votes_per_voter
  HAVING count(*) > votes_per_voter) x
UNION ALL
SELECT 'per_entry_limit', count(*) FROM (
  SELECT 1 FROM vec GROUP BY contest_id, vec, k, window_no, entry_id, per_entry_limit
  HAVING count(*) > per_entry_limit) x
UNION ALL
SELECT 'cooldown', count(*) FROM (
  SELECT created_at - lag(created_at) OVER (PARTITION BY contest_id, vec, k ORDER BY created_at)
         AS gap, cooldown
    FROM vec WHERE cooldown IS NOT NULL) x
 WHERE gap < cooldown
"""


def report(answers, errors, failures, calls, t0, conn, start):
    tests = []

    def test(name, ok, detail=""):
        tests.append(ok)
        print("test %-40s ... %s%s" % (name, "ok" if ok else "FAILED",
                                       "" if ok or not detail else "  (%s)" % detail))

    print("# fuzz: seed %d, %d calls in %.1f s (VG_FUZZ_SEED=%d VG_FUZZ_CALLS=%d to repeat)"
          % (SEED, calls, time.time() - t0, SEED, calls))
    print("answers by code:")
    for (fn, code), n in sorted(answers.items()):
        print("  %-16s %-20s %7d" % (fn, code, n))
    print("errors by SQLSTATE:")
    for (fn, state), n in sorted(errors.items()):
        print("  %-16s %-20s %7d" % (fn, state, n))

    alive = conn is not None and not conn.closed
    restarted = True
    drift = policy = None
    if alive:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_postmaster_start_time()")
            restarted = cur.fetchone()[0] != start
            cur.execute("SELECT count(*) FROM vote_guard.contests c,"
                        " LATERAL vote_guard.verify(c.id) v WHERE v.drift <> 0")
            drift = cur.fetchone()[0]
            cur.execute(POLICY_QUERY)
            policy = dict(cur.fetchall())
    undocumented = [f for f in failures if "undocumented" in f or "raised" in f]
    rows_bad = [f for f in failures if f not in undocumented]
    test("fuzz: no server restart", alive and not restarted)
    test("fuzz: no XX000 (class XX)", not any(" XX" in f for f in failures))
    test("fuzz: only documented SQLSTATEs", not undocumented, "%d" % len(undocumented))
    test("fuzz: vote rows agree with error_code", not rows_bad, "%d" % len(rows_bad))
    test("fuzz: verify() drift 0 on every contest", drift == 0, "%s entries" % drift)
    test("fuzz: no vote breaks its contest's policy",
         policy is not None and not any(policy.values()), str(policy))
    print("# fuzz: %d failures" % len(failures))
    return 0 if all(tests) else 1


if __name__ == "__main__":
    sys.exit(main())
