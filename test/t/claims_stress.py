#!/usr/bin/python3
# vote_guard: the client side of test/t/008_claims_stress.pl.
#
# One scenario per run, on a fresh contest it creates: 64 clients (threads,
# one connection each) hammer one entry (or a contest) with a capacity for a
# few seconds, mixing accepted votes that are rolled back, retracts and
# changes away and back; a monitor samples the committed count meanwhile.
# Then, with the clients stopped, new voters fill what is left until the
# answer is full.  Printed as "key value" lines for the TAP test to check:
#
#   max_seen      the most committed votes the monitor saw
#   over_answer   answers "ok" whose vote_count was above the capacity
#   final         the votes that stay after the fill
#   capacity      the capacity
#   drift         entries whose counters disagree with the votes (verify())
#   errors        errors other than the scenario's expected ones
#   calls, ok, full, rolled_back, retracted, changed   figures
#
#   /usr/bin/python3 claims_stress.py --host H --port P --scenario entry|contest|owner
#       --capacity N [--clients 64] [--seconds 3] [--seed 1]
#
# Needs psycopg 3 (Debian: python3-psycopg) and Debian's /usr/bin/python3.
import argparse
import collections
import random
import threading
import time

import psycopg

p = argparse.ArgumentParser()
p.add_argument('--host', required=True)
p.add_argument('--port', type=int, required=True)
p.add_argument('--dbname', default='postgres')
p.add_argument('--scenario', choices=['entry', 'contest', 'owner'], required=True)
p.add_argument('--capacity', type=int, required=True)
p.add_argument('--clients', type=int, default=64)
p.add_argument('--seconds', type=float, default=3)
p.add_argument('--seed', type=int, default=1)
args = p.parse_args()


def connect():
    return psycopg.connect(host=args.host, port=args.port, dbname=args.dbname,
                           autocommit=True)


admin = connect()
cap = args.capacity
if args.scenario == 'contest':
    cid = admin.execute(
        "SELECT vote_guard.create_contest(%s, dedupe_on => '{user}', allow_change => true,"
        " capacity => %s)", ('claims stress contest %d' % cap, cap)).fetchone()[0]
    for e in range(1, 6):
        admin.execute("SELECT vote_guard.add_entry(%s, %s)", (cid, e))
    hot = list(range(1, 6))
    spare = None
else:
    cid = admin.execute(
        "SELECT vote_guard.create_contest(%s, dedupe_on => '{user}', allow_change => true)",
        ('claims stress %s %d' % (args.scenario, cap),)).fetchone()[0]
    admin.execute("SELECT vote_guard.add_entry(%s, 1, capacity => %s)", (cid, cap))
    admin.execute("SELECT vote_guard.add_entry(%s, 2)", (cid,))
    hot = [1]
    spare = 2


def committed(conn):
    """Votes that count against the capacity, as committed now."""
    if args.scenario == 'contest':
        q = "SELECT count(*) FROM vote_guard.votes WHERE contest_id = %s"
    else:
        q = "SELECT count(*) FROM vote_guard.votes WHERE contest_id = %s AND entry_id = 1"
    return conn.execute(q, (cid,)).fetchone()[0]


stats = collections.Counter()
lock = threading.Lock()
errors = []
stop = time.time() + args.seconds
max_seen = [0]
expected_errors = {'entry': set(), 'contest': set(), 'owner': {'23514', '23505'}}[args.scenario]


def count(key, n=1):
    with lock:
        stats[key] += n


def client(n):
    rnd = random.Random(args.seed * 1000 + n)
    conn = connect()
    users = ['c%d-u%d' % (n, i) for i in range(200)]
    mine = []                       # users of this client with a vote that stays
    while time.time() < stop:
        try:
            r = rnd.random()
            if args.scenario == 'owner':
                u = rnd.choice(users)
                e = rnd.choice(hot)
                with conn.transaction() as tx:
                    if r < 0.15 and mine:
                        v = mine.pop(rnd.randrange(len(mine)))
                        conn.execute("DELETE FROM vote_guard.votes WHERE contest_id = %s"
                                      " AND user_id = %s", (cid, v))
                        count('retracted')
                        continue
                    conn.execute("INSERT INTO vote_guard.votes (contest_id, entry_id, user_id)"
                                 " VALUES (%s, %s, %s)", (cid, e, u))
                    count('calls')
                    count('ok')
                    if rnd.random() < 0.25:
                        count('rolled_back')
                        raise psycopg.Rollback(tx)
                    mine.append(u)
                continue
            if r < 0.1 and mine:
                u = mine.pop(rnd.randrange(len(mine)))
                row = conn.execute("SELECT error_code FROM vote_guard.retract_vote(%s, %s)",
                                   (cid, u)).fetchone()
                count('calls')
                if row[0] == 'ok':
                    count('retracted')
                else:
                    errors.append('retract %s' % row[0])
                continue
            if r < 0.2 and mine:
                # away to another entry and maybe back: a place freed and taken
                u = rnd.choice(mine)
                if spare is not None:
                    row = conn.execute("SELECT error_code FROM vote_guard.change_vote(%s, %s, %s)",
                                       (cid, spare, u)).fetchone()
                    count('calls')
                    if row[0] != 'ok':
                        errors.append('change away %s' % row[0])
                    row = conn.execute("SELECT error_code, vote_count FROM"
                                       " vote_guard.change_vote(%s, 1, %s)", (cid, u)).fetchone()
                    count('calls')
                    if row[0] == 'ok':
                        count('changed')
                        if row[1] > cap:
                            count('over_answer')
                    elif row[0] == 'entry_full':
                        mine.remove(u)      # stays in the spare entry
                        count('full')
                    else:
                        errors.append('change back %s' % row[0])
                else:
                    row = conn.execute("SELECT error_code FROM vote_guard.change_vote(%s, %s, %s)",
                                       (cid, rnd.choice(hot), u)).fetchone()
                    count('calls')
                    if row[0] != 'ok':
                        errors.append('change %s' % row[0])
                    count('changed')
                continue
            u = rnd.choice(users)
            e = rnd.choice(hot)
            with conn.transaction() as tx:
                row = conn.execute("SELECT error_code, vote_count FROM"
                                   " vote_guard.cast_vote(%s, %s, user_id => %s)",
                                   (cid, e, u)).fetchone()
                count('calls')
                if row[0] == 'ok':
                    count('ok')
                    if args.scenario != 'contest' and row[1] > cap:
                        count('over_answer')
                    if rnd.random() < 0.25:
                        count('rolled_back')
                        raise psycopg.Rollback(tx)
                    mine.append(u)
                elif row[0] in ('entry_full', 'contest_full'):
                    count('full')
                elif row[0] != 'duplicate_user':
                    errors.append('cast %s' % row[0])
        except psycopg.Error as ex:
            if ex.sqlstate in expected_errors:
                count('refused_%s' % ex.sqlstate)
            else:
                errors.append('%s %s' % (ex.sqlstate, str(ex).splitlines()[0]))
    conn.close()


def monitor():
    conn = connect()
    while time.time() < stop:
        c = committed(conn)
        max_seen[0] = max(max_seen[0], c)
        time.sleep(0.01)
    conn.close()


threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
threads.append(threading.Thread(target=monitor))
for t in threads:
    t.start()
for t in threads:
    t.join()
max_seen[0] = max(max_seen[0], committed(admin))

# fill what is left with new voters: the votes that stay must be the capacity
fill = 0
while True:
    fill += 1
    e = hot[fill % len(hot)]
    if args.scenario == 'owner':
        try:
            admin.execute("INSERT INTO vote_guard.votes (contest_id, entry_id, user_id)"
                          " VALUES (%s, %s, %s)", (cid, e, 'fill-%d' % fill))
        except psycopg.Error as ex:
            if ex.sqlstate != '23514':
                errors.append('fill %s' % ex.sqlstate)
            break
    else:
        row = admin.execute("SELECT error_code FROM vote_guard.cast_vote(%s, %s, user_id => %s)",
                            (cid, e, 'fill-%d' % fill)).fetchone()
        if row[0] != 'ok':
            if row[0] not in ('entry_full', 'contest_full'):
                errors.append('fill %s' % row[0])
            break
    if fill > cap + 10:
        break

print('capacity', cap)
print('max_seen', max_seen[0])
print('over_answer', stats['over_answer'])
print('final', committed(admin))
print('drift', admin.execute("SELECT count(*) FROM vote_guard.verify(%s) WHERE drift <> 0",
                             (cid,)).fetchone()[0])
print('errors', len(errors))
for e in sorted(set(errors))[:10]:
    print('# error', e)
for k in ('calls', 'ok', 'full', 'rolled_back', 'retracted', 'changed', 'refused_23514'):
    print(k, stats[k])
