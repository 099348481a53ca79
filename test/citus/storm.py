#!/usr/bin/python3
"""Vote storms through a Citus cluster, each followed by the full checks.

    storm.py SOCKET_DIR COORDINATOR_PORT SCENARIO...

Run by test/citus/run.sh after the pg_regress and isolation schedules
(vote_guard is distributed by then; the cluster has two workers and a spare
server on COORDINATOR_PORT + 3 that is not a node yet).  Each scenario prints
one pg_regress-style line for run-all.sh.

Scenarios:
  move   12 clients vote in one contest while its shard group moves between
         the workers twice (citus_move_shard_placement, block_writes).
  storm  64 clients, a third each on the coordinator and on each worker, vote
         in four contests (one in each shard group, two on each worker) at once; half the calls are
         voters of a shared pool, so the same IP, user or mailbox arrives
         through several nodes at the same moment.
  grow   the same storm while the spare server joins (citus_add_node),
         vote_guard.distribute() runs again (the new node's id ranges), and
         citus_rebalance_start() moves shard groups onto it (default
         transfer mode: logical replication), waited for with
         citus_rebalance_wait().

The checks, per contest: every call answered ok has its vote row (by the
vote_id it returned) and there is no other row; no IP key, user or e-mail key
has two votes (every contest has the default policy: one vote per voter
vector); results() sums to the rows; verify() finds no drift.  Across the
cluster: vote ids are unique.  A call may be refused only with a duplicate_*
code, or, while a shard group moves, with "is not on this node" (the vote
waited for the move; the client retries).  grow also checks that the new node
holds shard groups and that its votes carry its own id range."""
import random
import sys
import threading
import time

import psycopg

host, port = sys.argv[1], int(sys.argv[2])
scenarios = sys.argv[3:] or ["move", "storm", "grow"]
workers = [port + 1, port + 2]
spare = port + 3
MOVED = "is not on this node"
failures = 0


def connect(p):
    return psycopg.connect(host=host, port=p, dbname="regression", autocommit=True)


coord = connect(port)


def one(sql, args=()):
    return coord.execute(sql, args).fetchone()[0]


def node_of(contest):
    """The port of the worker holding the contest's shard group."""
    return one("SELECT n.nodeport FROM pg_catalog.pg_dist_placement p"
               " JOIN pg_catalog.pg_dist_node n USING (groupid)"
               " WHERE p.shardid = pg_catalog.get_shard_id_for_distribution_column("
               "'vote_guard.contests', %s)", (contest,))


def contests_per_shard(name):
    """A contest with two entries in each shard group (four: citus.shard_count
    when distribute() ran), so that every worker has some and any move or
    rebalance takes some along."""
    shards = one("SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_shard"
                 " WHERE logicalrelid = 'vote_guard.contests'::regclass")
    by_shard = {}
    made = 0
    while len(by_shard) < shards:
        made += 1
        assert made < 100, "contests do not spread over the shards"
        c = one("SELECT vote_guard.create_contest(%s)", ("%s %d" % (name, made),))
        shard = one("SELECT pg_catalog.get_shard_id_for_distribution_column("
                    "'vote_guard.contests', %s)", (c,))
        if shard not in by_shard:
            coord.execute("SELECT vote_guard.add_entry(%s, 1), vote_guard.add_entry(%s, 2)",
                          (c, c))
            by_shard[shard] = c
    contests = sorted(by_shard.values())
    assert {node_of(c) for c in contests} == set(workers), "a worker holds no shard"
    return contests


class Storm:
    """clients threads, client i on node ports[i % len(ports)], each calling
    cast_vote for a random contest until stop is set."""

    def __init__(self, contests, clients, ports, shared_pool):
        self.contests = contests
        self.clients = clients
        self.ports = ports
        self.pool = shared_pool
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.calls = 0
        self.ok = {c: [] for c in contests}      # contest -> vote ids answered ok
        self.refused = {}
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(clients)]
        self.seconds = 0

    def voter(self, rnd, i, k):
        if self.pool == 0 or k % 2 == 0:
            # a voter of its own
            return ("10.%d.%d.%d" % (i, (k >> 8) & 255, k & 255),
                    "c%d-%d" % (i, k), "c%d-%d@example.org" % (i, k))
        # the shared pool: each vector drawn on its own, so a call may collide
        # on one vector only; some arrive in another spelling of the mailbox
        a, b, m = (rnd.randrange(self.pool) for _ in range(3))
        email = ("P%d+%d@Example.org" % (m, k)) if k % 3 == 0 else ("p%d@example.org" % m)
        return ("192.168.%d.%d" % (a >> 8, a & 255), "p%d" % b if k % 5 else None, email)

    def client(self, i):
        rnd = random.Random(i)
        p = self.ports[i % len(self.ports)]
        conn = connect(p)
        k = 0
        while not self.stop.is_set():
            k += 1
            contest = rnd.choice(self.contests)
            ip, user, email = self.voter(rnd, i, k)
            try:
                code, vote_id = conn.execute(
                    "SELECT error_code, vote_id FROM vote_guard.cast_vote(%s, %s, %s::inet, %s, %s)",
                    (contest, 1 + k % 2, ip, user, email)).fetchone()
            except psycopg.Error as e:
                code, vote_id = "error: " + str(e).splitlines()[0], None
                if conn.closed or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn = connect(p)
            with self.lock:
                self.calls += 1
                if code == "ok":
                    self.ok[contest].append(vote_id)
                else:
                    self.refused[code] = self.refused.get(code, 0) + 1

    running = []

    def start(self):
        Storm.running.append(self)
        self.started = time.time()
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()
        self.seconds = time.time() - self.started


def check(name, storm, moves_allowed, extra_ok=True, extra=""):
    """The checks of every scenario; prints the summary and the test line."""
    global failures
    problems = []
    rows_total = ok_total = 0
    for c in storm.contests:
        ids = storm.ok[c]
        rows, found, dups = coord.execute(
            "SELECT (SELECT pg_catalog.count(*) FROM vote_guard.votes WHERE contest_id = %(c)s),"
            "       (SELECT pg_catalog.count(*) FROM vote_guard.votes"
            "         WHERE contest_id = %(c)s AND vote_id = ANY (%(ids)s)),"
            "       (SELECT pg_catalog.count(*) FROM (SELECT ip_key FROM vote_guard.votes"
            "         WHERE contest_id = %(c)s AND ip_key IS NOT NULL"
            "         GROUP BY ip_key HAVING pg_catalog.count(*) > 1) d)"
            "     + (SELECT pg_catalog.count(*) FROM (SELECT user_id FROM vote_guard.votes"
            "         WHERE contest_id = %(c)s AND user_id IS NOT NULL"
            "         GROUP BY user_id HAVING pg_catalog.count(*) > 1) d)"
            "     + (SELECT pg_catalog.count(*) FROM (SELECT email_key FROM vote_guard.votes"
            "         WHERE contest_id = %(c)s AND email_key IS NOT NULL"
            "         GROUP BY email_key HAVING pg_catalog.count(*) > 1) d)",
            {"c": c, "ids": ids}).fetchone()
        # each function in a statement of its own: Citus then runs it whole
        summed = one("SELECT pg_catalog.sum(votes) FROM vote_guard.results(%s)", (c,))
        drift = one("SELECT pg_catalog.max(pg_catalog.abs(drift)) FROM vote_guard.verify(%s)", (c,))
        rows_total += rows
        ok_total += len(ids)
        if not (rows == found == len(ids) == summed and drift == 0 and dups == 0 and ids):
            problems.append("contest %d: %d ok, %d with their row, %d rows, results() sum %s,"
                            " drift %s, duplicated voter keys %d"
                            % (c, len(ids), found, rows, summed, drift, dups))
    unique = one("SELECT pg_catalog.count(*) = pg_catalog.count(DISTINCT vote_id)"
                 " FROM vote_guard.votes")
    if not unique:
        problems.append("vote ids repeat across the cluster")
    unexpected = {code: n for code, n in storm.refused.items()
                  if not code.startswith("duplicate_") and not (moves_allowed and MOVED in code)}
    if unexpected:
        problems.append("unexpected answers %s" % unexpected)
    if not extra_ok:
        problems.append("not as expected: %s" % extra)
    print("# %s: %d clients, %d calls in %.1f s, %d ok, %d vote rows in %d contests,"
          " refused %s%s" % (name, storm.clients, storm.calls, storm.seconds, ok_total,
                             rows_total, len(storm.contests), dict(sorted(storm.refused.items())),
                             (", " + extra) if extra else ""))
    for p in problems:
        print("# %s: %s" % (name, p))
    print("test %-28s ... %s" % (name, "FAILED" if problems else "ok"))
    if problems:
        failures += 1


def move():
    contest = contests_per_shard("move storm")[0]
    storm = Storm([contest], 12, [port] + workers, 0)
    storm.start()
    shard = one("SELECT pg_catalog.get_shard_id_for_distribution_column("
                "'vote_guard.contests', %s)", (contest,))
    moves = []
    for _ in range(2):
        time.sleep(1)
        src = node_of(contest)
        dst = workers[0] if src == workers[1] else workers[1]
        coord.execute("SELECT pg_catalog.citus_move_shard_placement(%s, %s, %s, %s, %s,"
                      " shard_transfer_mode => 'block_writes')", (shard, host, src, host, dst))
        moves.append((src - port, dst - port))
    time.sleep(1)
    storm.finish()
    check("move_storm", storm, True, len(moves) == 2, "moves %s" % moves)


def storm64():
    storm = Storm(contests_per_shard("storm"), 64, [port] + workers, 500)
    storm.start()
    time.sleep(6)
    storm.finish()
    check("storm_64", storm, False)


def grow():
    storm = Storm(contests_per_shard("grow"), 64, [port] + workers, 500)
    storm.start()
    time.sleep(1)
    steps = []
    t = time.time()
    coord.execute("SELECT pg_catalog.citus_add_node(%s, %s)", (host, spare))
    steps.append("node added %.1f s" % (time.time() - t))
    t = time.time()
    coord.execute("SELECT vote_guard.distribute()")
    steps.append("distribute() %.1f s" % (time.time() - t))
    t = time.time()
    coord.execute("SELECT pg_catalog.citus_rebalance_start()")
    try:
        # a move whose catch-up never ends blocks the contest's writes: bounded
        coord.execute("SET statement_timeout = '120s'")
        coord.execute("SELECT pg_catalog.citus_rebalance_wait()")
    except psycopg.errors.QueryCanceled:
        coord.execute("SELECT pg_catalog.citus_rebalance_stop()")
        storm.finish()
        raise RuntimeError("the rebalance did not end in 120 s (stopped)")
    finally:
        coord.execute("RESET statement_timeout")
    steps.append("rebalance %.1f s" % (time.time() - t))
    time.sleep(1)   # votes on the new node
    storm.finish()
    group = one("SELECT groupid FROM pg_catalog.pg_dist_node WHERE nodeport = %s", (spare,))
    moved = [c for c in storm.contests if node_of(c) == spare]
    own_range = one("SELECT pg_catalog.count(*) FROM vote_guard.votes"
                    " WHERE contest_id = ANY (%s) AND vote_id >> 48 = %s", (moved, group))
    status = one("SELECT state FROM pg_catalog.citus_rebalance_status()")
    good = bool(moved) and own_range > 0 and status == "finished"
    check("grow_rebalance_storm", storm, True, good,
          "%s; rebalance %s, contests now on the new node %d, their votes in its id range %d"
          % (", ".join(steps), status, len(moved), own_range))


for s in scenarios:
    try:
        {"move": move, "storm": storm64, "grow": grow}[s]()
    except Exception as e:   # the scenario failed before its checks
        for storm in Storm.running:
            storm.stop.set()
        name = {"move": "move_storm", "storm": "storm_64", "grow": "grow_rebalance_storm"}[s]
        print("# %s: %s" % (name, str(e).splitlines()[0] if str(e) else repr(e)))
        print("test %-28s ... FAILED" % name)
        failures += 1
sys.exit(1 if failures else 0)
