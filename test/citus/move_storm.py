#!/usr/bin/python3
"""Votes through the coordinator and both workers while the contest's shards
move between the workers twice (citus_move_shard_placement, block_writes):
every call answered ok is a vote row afterwards, results() sums the rows,
verify() finds no drift, and a call refused during a move says why.

    move_storm.py SOCKET_DIR COORDINATOR_PORT

Run by test/citus/run.sh after the pg_regress schedule (vote_guard is
distributed by then).  Prints one pg_regress-style line for run-all.sh."""
import sys
import threading
import time

import psycopg

host, port = sys.argv[1], int(sys.argv[2])
ports = [port, port + 1, port + 2]


def connect(p):
    return psycopg.connect(host=host, port=p, dbname="regression", autocommit=True)


coord = connect(port)
contest = coord.execute("SELECT vote_guard.create_contest('move storm')").fetchone()[0]
coord.execute("SELECT vote_guard.add_entry(%s, 1), vote_guard.add_entry(%s, 2)",
              (contest, contest))
lock = threading.Lock()
counts = {"calls": 0, "ok": 0}
refused = {}
stop = threading.Event()


def voter(i):
    conn = connect(ports[i % 3])
    k = 0
    while not stop.is_set():
        k += 1
        ip = "10.%d.%d.%d" % (i, (k >> 8) & 255, k & 255)
        try:
            code = conn.execute(
                "SELECT error_code FROM vote_guard.cast_vote(%s, %s, %s::inet)",
                (contest, 1 + k % 2, ip)).fetchone()[0]
        except psycopg.Error as e:
            code = "error: " + str(e).splitlines()[0]
            conn = connect(ports[i % 3])
        with lock:
            counts["calls"] += 1
            if code == "ok":
                counts["ok"] += 1
            else:
                refused[code] = refused.get(code, 0) + 1


threads = [threading.Thread(target=voter, args=(i,)) for i in range(9)]
start = time.time()
for t in threads:
    t.start()
shard = coord.execute("SELECT pg_catalog.get_shard_id_for_distribution_column("
                      "'vote_guard.contests', %s)", (contest,)).fetchone()[0]
moves = []
for _ in range(2):
    time.sleep(1)
    src = coord.execute("SELECT n.nodeport FROM pg_catalog.pg_dist_placement p"
                        " JOIN pg_catalog.pg_dist_node n USING (groupid)"
                        " WHERE p.shardid = %s", (shard,)).fetchone()[0]
    dst = port + 1 if src == port + 2 else port + 2
    coord.execute("SELECT pg_catalog.citus_move_shard_placement(%s, %s, %s, %s, %s,"
                  " shard_transfer_mode => 'block_writes')", (shard, host, src, host, dst))
    moves.append((src - port, dst - port))
time.sleep(1)
stop.set()
for t in threads:
    t.join()
rows = coord.execute("SELECT pg_catalog.count(*) FROM vote_guard.votes WHERE contest_id = %s",
                     (contest,)).fetchone()[0]
summed = coord.execute("SELECT pg_catalog.sum(votes) FROM vote_guard.results(%s)",
                       (contest,)).fetchone()[0]
drift = coord.execute("SELECT pg_catalog.max(pg_catalog.abs(drift)) FROM vote_guard.verify(%s)",
                      (contest,)).fetchone()[0]
unexpected = {c: n for c, n in refused.items() if "is not on this node" not in c}
good = (counts["ok"] > 0 and rows == counts["ok"] and summed == rows and drift == 0
        and not unexpected and len(moves) == 2)
print("# move storm: %d calls in %.1f s, %d ok, %d vote rows, results() sum %s, drift %s,"
      " moves %s, refused %s" % (counts["calls"], time.time() - start, counts["ok"], rows,
                                 summed, drift, moves, refused))
print("test move_storm                   ... %s" % ("ok" if good else "FAILED"))
sys.exit(0 if good else 1)
