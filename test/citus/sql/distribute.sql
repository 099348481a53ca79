--
-- vote_guard on Citus, through the coordinator: 1 coordinator + 2 workers
-- (test/citus/cluster.sh), database "regression" with citus on every node.
--
SET citus.shard_count = 4;
SELECT pg_catalog.count(*) AS workers FROM pg_catalog.pg_dist_node WHERE groupid > 0;

-- CREATE EXTENSION on the coordinator is propagated: every node runs the
-- install script and generates secrets of its own
CREATE EXTENSION vote_guard;
SELECT pg_catalog.count(DISTINCT result) AS distinct_secrets
  FROM pg_catalog.run_command_on_all_nodes(
       $$SELECT pg_catalog.encode(ip_secret, 'hex') FROM vote_guard.secrets$$);

-- distribute() is the coordinator's: on a worker, an error and a hint
SELECT nodename AS worker_host, nodeport AS worker_port
  FROM pg_catalog.pg_dist_node WHERE groupid = 1 \gset
\set coordinator_port :PORT
\c regression - :worker_host :worker_port
SELECT vote_guard.distribute();
\c regression - :worker_host :coordinator_port
SET citus.shard_count = 4;

SELECT vote_guard.distribute();
-- idempotent
SELECT vote_guard.distribute();

-- a contest's rows live together: four tables in one co-location group by
-- contest, the secrets one reference table
SELECT logicalrelid, partmethod, repmodel,
       pg_catalog.column_to_column_name(logicalrelid, partkey) AS distributed_by,
       colocationid = (SELECT colocationid FROM pg_catalog.pg_dist_partition
                        WHERE logicalrelid = 'vote_guard.contests'::regclass) AS with_contests
  FROM pg_catalog.pg_dist_partition
 WHERE logicalrelid::text LIKE 'vote_guard.%'
 ORDER BY 1::text;
SELECT pg_catalog.count(*) AS shards_of_each
  FROM pg_catalog.pg_dist_shard WHERE logicalrelid = 'vote_guard.votes'::regclass;

-- the vote functions are delegated by contest_id
SELECT o.objid::regprocedure AS function,
       (pg_catalog.string_to_array(o.distribution_argument_index::text, ','))[1] AS argument,
       o.colocationid = (SELECT colocationid FROM pg_catalog.pg_dist_partition
                          WHERE logicalrelid = 'vote_guard.contests'::regclass) AS with_contests,
       o.force_delegation
  FROM pg_catalog.pg_dist_object o
 WHERE o.classid = 'pg_catalog.pg_proc'::regclass AND o.distribution_argument_index IS NOT NULL
 ORDER BY 1::text;

-- one set of secrets: the coordinator's, on every node
SELECT pg_catalog.count(DISTINCT result) AS distinct_secrets,
       pg_catalog.count(*) AS nodes, pg_catalog.bool_and(success) AS ok
  FROM pg_catalog.run_command_on_all_nodes(
       $$SELECT pg_catalog.string_agg(version || ':' || pg_catalog.encode(ip_secret, 'hex')
                || pg_catalog.encode(email_secret, 'hex'), ',' ORDER BY version)
           FROM vote_guard.secrets$$);

-- vote ids and contest ids from a range per node group (2^48 each)
SELECT nodeid, result
  FROM pg_catalog.run_command_on_all_nodes(
       $$SELECT pg_catalog.format('votes %s..%s, contests %s..%s',
                v.min_value, v.max_value, c.min_value, c.max_value)
           FROM pg_catalog.pg_sequences v, pg_catalog.pg_sequences c
          WHERE v.schemaname = 'vote_guard' AND v.sequencename = 'votes_vote_id_seq'
            AND c.schemaname = 'vote_guard' AND c.sequencename = 'contests_id_seq'$$)
 ORDER BY nodeid;

-- the admin functions through the coordinator
SELECT vote_guard.create_contest('first') AS c1 \gset
SELECT vote_guard.create_contest('second', dedupe_on => '{user}') AS c2 \gset
SELECT vote_guard.add_entry(:c1, 1, 'one'), vote_guard.add_entry(:c1, 2, 'two'),
       vote_guard.add_entry(:c2, 1, 'uno');
\set VERBOSITY terse
SELECT vote_guard.add_entry(:c1, 1, 'again');
SELECT vote_guard.add_entry(12345, 1, 'nowhere');
\set VERBOSITY default
SELECT id, name, dedupe_on, secret_version FROM vote_guard.contests ORDER BY id;

-- each contest lives on one node; contests 1 and 2 on different workers
SELECT c.id, p.groupid
  FROM vote_guard.contests c
  JOIN pg_catalog.pg_dist_placement p
    ON p.shardid = pg_catalog.get_shard_id_for_distribution_column('vote_guard.contests', c.id)
 ORDER BY c.id;

-- counters, written here by hand: results() and verify() read the
-- contest's shards
INSERT INTO vote_guard.counters (contest_id, entry_id, slot, votes)
VALUES (:c1, 1, 0, 3), (:c1, 1, 5, 2), (:c1, 2, 0, 1);
SELECT * FROM vote_guard.results(:c1);
SELECT * FROM vote_guard.verify(:c1);
SELECT * FROM vote_guard.results(:c2);
SELECT * FROM vote_guard.results(12345);

-- results() runs whole on the contest's worker
SET citus.log_remote_commands = on;
\set VERBOSITY terse
SELECT * FROM vote_guard.results(:c2);
RESET citus.log_remote_commands;
\set VERBOSITY default

-- votes through the coordinator: each call runs whole on its contest's
-- worker, where the fast paths open the contest's shards
SELECT vote_guard.create_contest('votes') AS cv \gset
SELECT vote_guard.create_contest('logins', require_user => true, allow_change => true,
                                 dedupe_on => '{user}') AS cl \gset
SELECT vote_guard.add_entry(:cv, 1, 'one'), vote_guard.add_entry(:cv, 2, 'two'),
       vote_guard.add_entry(:cl, 1, 'one'), vote_guard.add_entry(:cl, 2, 'two');
\set R 'success, error_code, http_status, vote_count, vote_id > 0 AS has_vote_id, replayed'
SELECT :R FROM vote_guard.cast_vote(:cv, 1, '192.0.2.1', 'alice', 'alice@example.org', 'req-a');
SELECT :R FROM vote_guard.cast_vote(:cv, 1, '192.0.2.1', 'alice', 'alice@example.org', 'req-a');
SELECT :R FROM vote_guard.cast_vote(:cv, 2, '192.0.2.1');
SELECT :R FROM vote_guard.cast_vote(:cv, 2, '192.0.2.2', 'alice');
SELECT :R FROM vote_guard.cast_vote(:cv, 2, '192.0.2.3', 'bob', 'Alice+x@Example.org');
SELECT :R FROM vote_guard.cast_vote(:cv, 2, '192.0.2.4', 'carol');
SELECT :R FROM vote_guard.cast_vote(:cv, 3, '192.0.2.5');
SELECT :R FROM vote_guard.cast_vote(:cv, 1);
SELECT :R FROM vote_guard.cast_vote(:cv, 1, '192.0.2.6', '');
SELECT :R FROM vote_guard.cast_vote(12345, 1, '192.0.2.7');
SELECT :R FROM vote_guard.cast_vote(:cl, 1, '192.0.2.8');
SELECT :R FROM vote_guard.cast_vote(:cl, 1, NULL, 'dave');
SELECT :R FROM vote_guard.change_vote(:cl, 2, 'dave');
SELECT :R FROM vote_guard.retract_vote(:cl, 'dave');
SELECT :R FROM vote_guard.cast_vote(:cl, 2, NULL, 'erin');

-- the call is sent whole to the worker
SET citus.log_remote_commands = on;
\set VERBOSITY terse
SELECT :R FROM vote_guard.cast_vote(:cv, 1, '192.0.2.9');
RESET citus.log_remote_commands;
\set VERBOSITY default

-- one transaction, two contests on two workers
SELECT pg_catalog.count(DISTINCT p.groupid) AS workers
  FROM pg_catalog.pg_dist_placement p
 WHERE p.shardid IN (pg_catalog.get_shard_id_for_distribution_column('vote_guard.contests', :c1),
                     pg_catalog.get_shard_id_for_distribution_column('vote_guard.contests', :cl));
BEGIN;
SELECT :R FROM vote_guard.cast_vote(:c1, 2, '192.0.2.10');
SELECT :R FROM vote_guard.cast_vote(:cl, 1, NULL, 'frank');
COMMIT;
BEGIN;
SELECT :R FROM vote_guard.cast_vote(:c1, 2, '192.0.2.11');
SELECT :R FROM vote_guard.cast_vote(:cl, 1, NULL, 'grace');
ROLLBACK;
SELECT entry_id, actual FROM vote_guard.verify(:c1);

-- vote ids come from the range of the worker that wrote them
SELECT v.contest_id, p.groupid,
       pg_catalog.bool_and(v.vote_id >> 48 = p.groupid) AS ids_of_its_worker,
       pg_catalog.count(*) AS votes
  FROM vote_guard.votes v
  JOIN pg_catalog.pg_dist_placement p
    ON p.shardid = pg_catalog.get_shard_id_for_distribution_column('vote_guard.votes', v.contest_id)
 WHERE v.contest_id IN (:cv, :cl, :c1)
 GROUP BY 1, 2 ORDER BY 1;

-- counts: results() sums equal the vote rows, verify() finds no drift
SELECT * FROM vote_guard.results(:cv);
SELECT * FROM vote_guard.verify(:cv);
SELECT * FROM vote_guard.results(:cl);
SELECT * FROM vote_guard.verify(:cl);
SELECT r.entry_id, r.votes, (SELECT pg_catalog.count(*) FROM vote_guard.votes v
                              WHERE v.contest_id = :cv AND v.entry_id = r.entry_id) AS rows
  FROM vote_guard.results(:cv) r ORDER BY 1;

-- a call Citus does not send to the worker would write on the coordinator,
-- where the contest's shards are not: an error, nothing written
\set VERBOSITY terse
SELECT (vote_guard.cast_vote(:cv, 1, '192.0.2.12')).error_code FROM pg_catalog.generate_series(1, 1);
\set VERBOSITY default

-- close_contest, then a vote on the same connection, and on a connection
-- (the coordinator's, to the worker) whose backend has the contest cached
SELECT :R FROM vote_guard.cast_vote(:cl, 2, NULL, 'heidi');
\setenv VG_CONTEST :cl
\setenv PGHOST :worker_host
\setenv PGPORT :coordinator_port
\! psql -X -q -d regression -c "SELECT vote_guard.close_contest($VG_CONTEST) IS NOT NULL AS closed_by_another_session"
SELECT :R FROM vote_guard.cast_vote(:cl, 2, NULL, 'ivan');
SELECT :R FROM vote_guard.change_vote(:cl, 1, 'erin');
SELECT vote_guard.close_contest(:cv) IS NOT NULL AS closed;
SELECT :R FROM vote_guard.cast_vote(:cv, 2, '192.0.2.13');

-- through a worker: a call for a contest on the other worker is sent there
\c regression - :worker_host :worker_port
SELECT vote_guard.create_contest('made on a worker') >> 48 AS id_range_of_group;
SELECT id AS cw FROM vote_guard.contests WHERE name = 'made on a worker' \gset
SELECT vote_guard.add_entry(:cw, 1, 'one');
SELECT :R FROM vote_guard.cast_vote(:cw, 1, '192.0.2.14');
SELECT :R FROM vote_guard.cast_vote(:cw, 1, '192.0.2.14');
SELECT :R FROM vote_guard.cast_vote(:cv, 1, '192.0.2.15');
SELECT * FROM vote_guard.verify(:cw);
\c regression - :worker_host :coordinator_port

-- the owner's own writes through the coordinator: the triggers on the
-- shards keep the policy, the entries and the counters
SELECT vote_guard.create_contest('owner writes', dedupe_on => '{user}') AS co \gset
SELECT vote_guard.add_entry(:co, 1), vote_guard.add_entry(:co, 2), vote_guard.add_entry(:co, 3);
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:co, 1, 'u1');
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:co, 1, 'u2'), (:co, 2, 'u3');
\set VERBOSITY sqlstate
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:co, 2, 'u1');
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:co, 9, 'u9');
DELETE FROM vote_guard.entries WHERE contest_id = :co AND entry_id = 1;
\set VERBOSITY default
UPDATE vote_guard.votes SET entry_id = 2 WHERE contest_id = :co AND user_id = 'u1';
DELETE FROM vote_guard.votes WHERE contest_id = :co AND user_id = 'u2';
DELETE FROM vote_guard.entries WHERE contest_id = :co AND entry_id = 3;
SELECT * FROM vote_guard.verify(:co);
SELECT :R FROM vote_guard.cast_vote(:co, 3, NULL, 'u7');
SELECT :R FROM vote_guard.cast_vote(:co, 1, NULL, 'u3');

-- limited claims (1.1): the places are in the contest's shards of counters
-- and contest_counters, on its worker
SELECT vote_guard.create_contest('seats', dedupe_on => '{user}', allow_change => true,
                                 capacity => 3) AS cs \gset
SELECT vote_guard.add_entry(:cs, 1, capacity => 2), vote_guard.add_entry(:cs, 2);
SELECT :R FROM vote_guard.cast_vote(:cs, 1, NULL, 's1');
SELECT :R FROM vote_guard.cast_vote(:cs, 1, NULL, 's2');
SELECT :R FROM vote_guard.cast_vote(:cs, 1, NULL, 's3');
SELECT :R FROM vote_guard.cast_vote(:cs, 2, NULL, 's3');
SELECT :R FROM vote_guard.cast_vote(:cs, 2, NULL, 's4');
SELECT :R FROM vote_guard.retract_vote(:cs, 's1');
SELECT :R FROM vote_guard.change_vote(:cs, 1, 's3');
SELECT :R FROM vote_guard.change_vote(:cs, 1, 's2');
SELECT vote_guard.set_entry_capacity(:cs, 1, 3) AS counted;
SELECT vote_guard.set_contest_capacity(:cs, 4) AS counted;
SELECT :R FROM vote_guard.cast_vote(:cs, 1, NULL, 's4');
SELECT :R FROM vote_guard.cast_vote(:cs, 2, NULL, 's5');
\set VERBOSITY sqlstate
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:cs, 2, 's6');
\set VERBOSITY default
SELECT * FROM vote_guard.verify(:cs);
SELECT pg_catalog.sum(allot) AS contest_places FROM vote_guard.contest_counters WHERE contest_id = :cs;

-- TRUNCATE votes empties the counters beside every shard
TRUNCATE vote_guard.votes;
SELECT * FROM vote_guard.results(:c1);
SELECT * FROM vote_guard.verify(:c1);
SELECT * FROM vote_guard.results(:cv);
SELECT * FROM vote_guard.verify(:cv);
SELECT pg_catalog.count(*) AS counter_rows FROM vote_guard.counters;
-- and the contest's places beside every shard: a limited contest that was
-- full takes votes again, up to its capacity
SELECT pg_catalog.count(*) AS contest_counter_rows FROM vote_guard.contest_counters;
SELECT :R FROM vote_guard.cast_vote(:cs, 2, NULL, 't1');
SELECT :R FROM vote_guard.cast_vote(:cs, 2, NULL, 't2');
SELECT :R FROM vote_guard.cast_vote(:cs, 2, NULL, 't3');
SELECT :R FROM vote_guard.cast_vote(:cs, 2, NULL, 't4');
SELECT :R FROM vote_guard.cast_vote(:cs, 2, NULL, 't5');
SELECT * FROM vote_guard.verify(:cs);

-- close_contest: once, and again keeps the first time
SELECT vote_guard.close_contest(:c1) AS closed_at \gset
SELECT vote_guard.close_contest(:c1) = :'closed_at'::timestamptz AS same_time;
SELECT id, closed_at IS NOT NULL AS closed FROM vote_guard.contests ORDER BY id;
\set VERBOSITY terse
SELECT vote_guard.close_contest(12345);
\set VERBOSITY default

-- rotate_secrets: a new version, the same on every node; new contests use it
SELECT vote_guard.rotate_secrets();
SELECT pg_catalog.count(DISTINCT result) AS distinct_secrets,
       pg_catalog.min(result) LIKE '1:%,2:%' AS two_versions
  FROM pg_catalog.run_command_on_all_nodes(
       $$SELECT pg_catalog.string_agg(version || ':' || pg_catalog.encode(ip_secret, 'hex')
                || pg_catalog.encode(email_secret, 'hex'), ',' ORDER BY version)
           FROM vote_guard.secrets$$);
SELECT vote_guard.create_contest('third') AS c3 \gset
SELECT secret_version FROM vote_guard.contests WHERE id = :c3;
