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

-- TRUNCATE votes empties the counters beside every shard
TRUNCATE vote_guard.votes;
SELECT * FROM vote_guard.results(:c1);
SELECT * FROM vote_guard.verify(:c1);

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
