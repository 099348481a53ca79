--
-- admin: create_contest, add_entry, close_contest, results and verify;
-- argument errors with their SQLSTATEs
--
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

--
-- create_contest: defaults
--
SELECT vote_guard.create_contest('admin defaults') AS c \gset
SELECT name, opens_at <= now() AS open_now, closes_at, closed_at, dedupe_on,
       ipv4_prefix, ipv6_prefix, require_user,
       secret_version = (SELECT max(version) FROM vote_guard.secrets) AS latest_secret
  FROM vote_guard.contests WHERE id = :c;

-- every option, dedupe_on is sorted and deduplicated
SELECT vote_guard.create_contest('admin options',
           opens_at => '2030-01-01 00:00:00+00', closes_at => '2030-02-01 00:00:00+00',
           dedupe_on => '{email,ip,ip}', ipv4_prefix => 24, ipv6_prefix => 48,
           require_user => true) AS co \gset
SELECT name, opens_at, closes_at, dedupe_on, ipv4_prefix, ipv6_prefix, require_user
  FROM vote_guard.contests WHERE id = :co;

-- the prefix bounds are accepted
SELECT vote_guard.create_contest('admin bounds low', ipv4_prefix => 1, ipv6_prefix => 1) IS NOT NULL AS created;
SELECT vote_guard.create_contest('admin bounds high', ipv4_prefix => 32, ipv6_prefix => 128) IS NOT NULL AS created;

--
-- create_contest: argument errors (22023 invalid_parameter_value); none
-- creates a contest
--
SELECT count(*) AS contests_before FROM vote_guard.contests \gset
SELECT vote_guard.create_contest('');
\echo :SQLSTATE
SELECT vote_guard.create_contest(NULL);
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', opens_at => NULL);
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', opens_at => '2030-01-01 00:00:00+00',
                                 closes_at => '2030-01-01 00:00:00+00');
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', opens_at => '2030-01-02 00:00:00+00',
                                 closes_at => '2030-01-01 00:00:00+00');
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', dedupe_on => '{}');
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', dedupe_on => NULL);
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', dedupe_on => '{ip,phone}');
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', dedupe_on => '{IP}');
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', dedupe_on => '{ip,NULL}');
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', ipv4_prefix => 0);
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', ipv4_prefix => 33);
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', ipv4_prefix => NULL);
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', ipv6_prefix => 0);
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', ipv6_prefix => 129);
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', ipv6_prefix => NULL);
\echo :SQLSTATE
SELECT vote_guard.create_contest('admin bad', require_user => NULL);
\echo :SQLSTATE
SELECT count(*) - :contests_before AS contests_created FROM vote_guard.contests;

--
-- add_entry
--
SELECT vote_guard.add_entry(:c, 10, 'ten');
SELECT vote_guard.add_entry(:c, 20, NULL);
SELECT vote_guard.add_entry(:c, 30);
SELECT vote_guard.add_entry(:c, 9223372036854775807, 'largest');
-- the same entry_id in another contest is another entry
SELECT vote_guard.add_entry(:co, 10, 'ten elsewhere');
SELECT contest_id = :c AS in_c, entry_id, label FROM vote_guard.entries
 WHERE contest_id IN (:c, :co) ORDER BY contest_id, entry_id;

-- errors
SELECT vote_guard.add_entry(9223372036854775807, 1, 'no contest');
\echo :SQLSTATE
SELECT vote_guard.add_entry(NULL, 1, 'no contest');
\echo :SQLSTATE
-- (the message names the contest id, which depends on the files run before)
\set VERBOSITY sqlstate
SELECT vote_guard.add_entry(:c, 10, 'ten again');
\set VERBOSITY default
SELECT vote_guard.add_entry(:c, 0, 'zero');
\echo :SQLSTATE
SELECT vote_guard.add_entry(:c, -1, 'negative');
\echo :SQLSTATE
SELECT vote_guard.add_entry(:c, NULL, 'null');
\echo :SQLSTATE
-- the failed calls changed nothing
SELECT entry_id, label FROM vote_guard.entries WHERE contest_id = :c ORDER BY entry_id;

--
-- results: by votes descending, then entry_id; entries without votes at 0
--
SELECT vote_guard.add_entry(:c, 5, 'five');
SELECT success FROM vote_guard.cast_vote(:c, 30, '192.0.2.1');
SELECT success FROM vote_guard.cast_vote(:c, 30, '192.0.2.2');
SELECT success FROM vote_guard.cast_vote(:c, 20, '192.0.2.3');
SELECT success FROM vote_guard.cast_vote(:c, 10, '192.0.2.4');
SELECT success FROM vote_guard.cast_vote(:c, 9223372036854775807, '192.0.2.5');
SELECT * FROM vote_guard.results(:c);
SELECT * FROM vote_guard.verify(:c);
-- a contest whose entries have no votes; one without entries and no
-- contest at all have no rows
SELECT * FROM vote_guard.results(:co);
SELECT vote_guard.create_contest('admin empty') AS ce \gset
SELECT * FROM vote_guard.results(:ce);
SELECT * FROM vote_guard.verify(:ce);
SELECT * FROM vote_guard.results(9223372036854775807);
SELECT * FROM vote_guard.verify(9223372036854775807);
SELECT * FROM vote_guard.results(NULL);

--
-- close_contest
--
SELECT vote_guard.close_contest(9223372036854775807);
\echo :SQLSTATE
SELECT vote_guard.close_contest(NULL);
\echo :SQLSTATE
SELECT vote_guard.close_contest(:c) AS closed_at \gset
SELECT closed_at = :'closed_at' AS closed_at_returned, closed_at <= now() AS in_the_past
  FROM vote_guard.contests WHERE id = :c;
-- closing again keeps the first closing time
SELECT vote_guard.close_contest(:c) = :'closed_at' AS same_closing_time;
SELECT closed_at = :'closed_at' AS unchanged FROM vote_guard.contests WHERE id = :c;
-- a closed contest answers contest_closed and still has its results
SELECT success, error_code, http_status FROM vote_guard.cast_vote(:c, 10, '192.0.2.9');
SELECT * FROM vote_guard.results(:c);

--
-- dropping and re-creating the extension in the same session: the cached
-- plans and derived keys of the old installation are not reused
--
CREATE TEMP TABLE old_keys AS
SELECT :c AS contest_id, vote_guard.ip_key(:c, '192.0.2.1') AS ip_key,
       vote_guard.email_key(:c, 'voter@example.com') AS email_key;
-- (it holds contests: the drop is confirmed for its transaction, see drop_guard)
SET client_min_messages = warning;
BEGIN;
SET LOCAL vote_guard.allow_drop = on;
DROP EXTENSION vote_guard CASCADE;
COMMIT;
RESET client_min_messages;
CREATE EXTENSION vote_guard;
-- contest ids start again, so the new contest may have an old contest's id
SELECT setval('vote_guard.contests_id_seq', :c, false) = :c AS id_reset;
SELECT vote_guard.create_contest('admin after re-create') = :c AS same_id;
SELECT vote_guard.add_entry(:c, 1, 'one');
SELECT vote_guard.ip_key(:c, '192.0.2.1') <> ip_key AS new_ip_key,
       vote_guard.email_key(:c, 'voter@example.com') <> email_key AS new_email_key
  FROM old_keys;
SELECT success, error_code, vote_count FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', 'u1', 'voter@example.com');
SELECT success, error_code, vote_count FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', 'u2');
SELECT v.ip_key = vote_guard.ip_key(:c, '192.0.2.1') AS stored_key_is_new_key
  FROM vote_guard.votes v WHERE v.contest_id = :c;
SELECT * FROM vote_guard.verify(:c);
DROP TABLE old_keys;

--
-- an entry with votes stays (its votes are deleted first); one without goes
--
SELECT vote_guard.create_contest('admin entries') AS ce \gset
SELECT vote_guard.add_entry(:ce, 1), vote_guard.add_entry(:ce, 2);
SELECT error_code FROM vote_guard.cast_vote(:ce, 1, '192.0.2.200');
\set VERBOSITY sqlstate
DELETE FROM vote_guard.entries WHERE contest_id = :ce AND entry_id = 1;
UPDATE vote_guard.entries SET entry_id = 3 WHERE contest_id = :ce AND entry_id = 1;
\set VERBOSITY default
UPDATE vote_guard.entries SET label = 'relabelled' WHERE contest_id = :ce AND entry_id = 1;
DELETE FROM vote_guard.entries WHERE contest_id = :ce AND entry_id = 2;
SELECT entry_id, label, votes FROM vote_guard.results(:ce);
DELETE FROM vote_guard.votes WHERE contest_id = :ce;
DELETE FROM vote_guard.entries WHERE contest_id = :ce AND entry_id = 1;
SELECT count(*) AS entries_left FROM vote_guard.entries WHERE contest_id = :ce;
SELECT count(*) AS counter_rows_left FROM vote_guard.counters WHERE contest_id = :ce;

--
-- distribute() is for a Citus coordinator: without Citus, an error with the
-- way there, and nothing changed
--
SELECT vote_guard.distribute();
\set VERBOSITY sqlstate
SELECT vote_guard.distribute();
\set VERBOSITY default
SELECT count(*) AS votes_truncate_trigger FROM pg_trigger
 WHERE tgrelid = 'vote_guard.votes'::regclass AND tgname = 'votes_truncate'
   AND tgfoid = 'vote_guard.votes_trigger()'::regprocedure;
SELECT min_value, max_value FROM pg_sequences
 WHERE schemaname = 'vote_guard' AND sequencename = 'votes_vote_id_seq';
