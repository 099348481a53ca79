#!/usr/bin/python3
# vote_guard: the client side of test/t/007_fault_storm.pl.
#
# Many threads, each one client with its own connection (autocommit), call
# cast_vote (and, in an allow_change contest, change_vote and retract_vote)
# for random overlapping voters until a time or a call budget runs out, and
# write every answer they RECEIVED to a CSV log as soon as it arrives (one
# write per line), so that a fault injected at any moment leaves a log of
# answers that came back before it.  Every call gets one line, errors too:
# E<SQLSTATE> (E57014t: statement_timeout; Econn: the connection went away,
# outcome unknown).  After an error that leaves the connection unusable the
# client reconnects, with a short pause while the server is down.
#
#   /usr/bin/python3 fault_storm.py --host H --port P --phase NAME --log FILE \
#       --contest kind=ID ... [--clients 64] [--seconds 10] [--max-calls 100000]
#       [--seed 1] [--users 200] [--entries 5]
#
# kind is the contest's policy as the test created it; "change" contests get
# casts, moves and retractions, the others casts.  Clients n with n % 8 in
# 1, 2, 3 run with statement_timeout, lock_timeout or both.  The last line
# on stdout is a summary: calls and answers by code.
#
# Needs psycopg 3 (Debian: python3-psycopg) and Debian's /usr/bin/python3.
import argparse
import collections
import csv
import random
import sys
import threading
import time

import psycopg

p = argparse.ArgumentParser()
p.add_argument('--host', required=True)
p.add_argument('--port', type=int, required=True)
p.add_argument('--dbname', default='postgres')
p.add_argument('--phase', required=True)
p.add_argument('--log', required=True)
p.add_argument('--contest', action='append', required=True, help='kind=id')
p.add_argument('--clients', type=int, default=64)
p.add_argument('--seconds', type=float, default=10)
p.add_argument('--max-calls', type=int, default=100000)
p.add_argument('--seed', type=int, default=1)
p.add_argument('--users', type=int, default=200)
p.add_argument('--entries', type=int, default=5)
args = p.parse_args()

contests = []
for c in args.contest:
    kind, cid = c.split('=')
    contests.append((kind, int(cid)))


def voter(u):
    """User u: IP groups of 2 and 3 users, an e-mail shared (in two
    spellings) by users u and u + users/2: the voters of 004_policy_stress."""
    half = args.users // 2
    ip = '10.9.0.%d' % ((u - 1) * 2 // 5 + 1)
    if u <= half:
        email = 'm%d@example.com' % u
    else:
        email = 'M%d+t%d@Example.COM' % (u - half, u)
    return 'u%d' % u, ip, email


lock = threading.Lock()
logf = open(args.log, 'w', newline='', buffering=1)
log = csv.writer(logf, lineterminator='\n')
seq = 0
calls = 0
codes = collections.Counter()
stop_at = time.monotonic() + args.seconds


def record(client, op, cid, u, entry, old_entry, code, vote_id, replayed, rq):
    """One line per answer, written before the next call."""
    global seq
    with lock:
        seq += 1
        log.writerow([seq, args.phase, client, op, cid, u, entry,
                      '' if old_entry is None else old_entry, code,
                      '' if vote_id is None else vote_id,
                      '' if replayed is None else ('t' if replayed else 'f'),
                      rq or ''])
        logf.flush()
        codes[op + ' ' + code] += 1


def take_call():
    global calls
    with lock:
        if calls >= args.max_calls:
            return False
        calls += 1
        return True


CAST = ('SELECT error_code, vote_id, replayed FROM '
        'vote_guard.cast_vote(%s, %s, %s::inet, %s, %s, %s)')
CHANGE = ('SELECT error_code, vote_id, replayed FROM '
          'vote_guard.change_vote(%s, %s, %s, %s)')
RETRACT = ('SELECT error_code, vote_id, replayed FROM '
           'vote_guard.retract_vote(%s, %s, %s)')


def client(n):
    rng = random.Random(args.seed * 100003 + n)
    kind, cid = contests[n % len(contests)]
    opts = []
    if n % 8 in (1, 3):
        opts.append('-c statement_timeout=%dms' % rng.choice((20, 50, 100)))
    if n % 8 in (2, 3):
        opts.append('-c lock_timeout=%dms' % rng.choice((1, 5, 10)))
    conn = None
    while time.monotonic() < stop_at:
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(host=args.host, port=args.port,
                                       dbname=args.dbname, autocommit=True,
                                       application_name='vg_storm',
                                       connect_timeout=2,
                                       options=' '.join(opts))
            except psycopg.Error:
                conn = None
                time.sleep(0.05)
                continue
        if not take_call():
            break
        u = rng.randint(1, args.users)
        e = rng.randint(1, args.entries)
        user, ip, email = voter(u)
        r = rng.random()
        op, old, rq = 'cast', None, None
        if kind == 'change' and r >= 0.5:
            op = 'change' if r < 0.8 else 'retract'
            if rng.random() < 0.7:
                old = rng.randint(1, args.entries)
        elif rng.random() < 0.5:
            rq = 'r%s-%d-%d-%d' % (args.phase, cid, u, rng.randint(1, 20))
        try:
            if op == 'cast':
                cur = conn.execute(CAST, (cid, e, ip, user, email, rq))
            elif op == 'change':
                cur = conn.execute(CHANGE, (cid, e, user, old))
            else:
                cur = conn.execute(RETRACT, (cid, user, old))
            code, vote_id, replayed = cur.fetchone()
            record(n, op, cid, u, e if op != 'retract' else None, old, code,
                   vote_id, replayed, rq)
        except psycopg.Error as ex:
            st = getattr(ex, 'sqlstate', None)
            if st is None:
                code = 'Econn'
            elif st == '57014' and 'statement timeout' in str(ex):
                code = 'E57014t'
            else:
                code = 'E' + st
            record(n, op, cid, u, e if op != 'retract' else None, old, code,
                   None, None, rq)
            if conn.broken or conn.closed:
                try:
                    conn.close()
                except psycopg.Error:
                    pass
                conn = None
    if conn is not None:
        conn.close()


threads = [threading.Thread(target=client, args=(n,))
           for n in range(args.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
logf.close()
print('calls %d; %s' % (calls, ', '.join(
    '%s: %d' % kv for kv in sorted(codes.items()))))
sys.exit(0)
