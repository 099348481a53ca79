--
-- search_path: a caller's search_path, settings and objects cannot change
-- what cast_vote does.  A non-owner role fills a schema and pg_temp with
-- look-alikes of vote_guard's tables and functions, operators that always
-- say "equal", and puts them first; cast_vote must still give the right
-- codes and counts and never touch them.
--
\set VERBOSITY terse
\set R 'success, error_code, http_status, vote_count, vote_id IS NOT NULL AS has_vote_id, retry_at, replayed'

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_vg_attacker;
RESET client_min_messages;
CREATE ROLE regress_vg_attacker NOLOGIN;
CREATE SCHEMA regress_hostile AUTHORIZATION regress_vg_attacker;

-- the contests (cast_vote is not called before the hostile objects exist,
-- so its plans are first made with them in place)
SELECT vote_guard.create_contest('search_path') AS c \gset
SELECT vote_guard.add_entry(:c, 1, 'one'), vote_guard.add_entry(:c, 2, 'two');
SELECT vote_guard.create_contest('search_path login', require_user => true) AS cl \gset
SELECT vote_guard.add_entry(:cl, 1);

SET ROLE regress_vg_attacker;

-- every hostile function that runs leaves a row here
CREATE TABLE regress_hostile.called (what text);
GRANT ALL ON regress_hostile.called TO PUBLIC;

CREATE FUNCTION regress_hostile.eq_int8(bigint, bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN INSERT INTO regress_hostile.called VALUES ('= bigint'); RETURN true; END $$;
CREATE FUNCTION regress_hostile.eq_int4(integer, integer) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN INSERT INTO regress_hostile.called VALUES ('= integer'); RETURN true; END $$;
CREATE FUNCTION regress_hostile.eq_text(text, text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN INSERT INTO regress_hostile.called VALUES ('= text'); RETURN true; END $$;
CREATE FUNCTION regress_hostile.eq_bytea(bytea, bytea) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN INSERT INTO regress_hostile.called VALUES ('= bytea'); RETURN true; END $$;
CREATE FUNCTION regress_hostile.plus_int8(bigint, bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN INSERT INTO regress_hostile.called VALUES ('+ bigint'); RETURN 1000; END $$;
CREATE FUNCTION regress_hostile.lt_tstz(timestamptz, timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN INSERT INTO regress_hostile.called VALUES ('< timestamptz'); RETURN true; END $$;

CREATE OPERATOR regress_hostile.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_hostile.eq_int8);
CREATE OPERATOR regress_hostile.= (LEFTARG = integer, RIGHTARG = integer, FUNCTION = regress_hostile.eq_int4);
CREATE OPERATOR regress_hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_hostile.eq_text);
CREATE OPERATOR regress_hostile.= (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = regress_hostile.eq_bytea);
CREATE OPERATOR regress_hostile.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_hostile.plus_int8);
CREATE OPERATOR regress_hostile.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = regress_hostile.lt_tstz);

-- functions and aggregates named like the ones vote_guard uses
CREATE FUNCTION regress_hostile.now() RETURNS timestamptz
LANGUAGE plpgsql AS $$
BEGIN INSERT INTO regress_hostile.called VALUES ('now()'); RETURN '2000-01-01'; END $$;
CREATE FUNCTION regress_hostile.length(text) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN INSERT INTO regress_hostile.called VALUES ('length()'); RETURN 1; END $$;
CREATE FUNCTION regress_hostile.sum_step(bigint, bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN INSERT INTO regress_hostile.called VALUES ('sum()'); RETURN 1000; END $$;
CREATE AGGREGATE regress_hostile.sum(bigint) (SFUNC = regress_hostile.sum_step, STYPE = bigint);
CREATE AGGREGATE regress_hostile.count(*) (SFUNC = int8inc, STYPE = bigint, INITCOND = '1000');
CREATE FUNCTION regress_hostile.cast_vote(contest_id bigint, entry_id bigint,
    voter_ip inet DEFAULT NULL, user_id text DEFAULT NULL, email text DEFAULT NULL,
    request_id text DEFAULT NULL)
RETURNS vote_guard.vote_result
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO regress_hostile.called VALUES ('cast_vote()');
    RETURN ROW(true, 'ok', 200, 1000, 1000, NULL, false)::vote_guard.vote_result;
END $$;

-- look-alike tables, with rows that would change every answer if read:
-- the contest closed and requiring a login, the entries missing, a vote
-- for every voter, huge counters, a known secret
CREATE TABLE regress_hostile.contests (id bigint, name text, opens_at timestamptz,
    closes_at timestamptz, closed_at timestamptz, dedupe_on text[], ipv4_prefix int,
    ipv6_prefix int, require_user boolean, secret_version int);
CREATE TABLE regress_hostile.entries (contest_id bigint, entry_id bigint, label text);
CREATE TABLE regress_hostile.votes (contest_id bigint, vote_id bigint, entry_id bigint,
    ip_key bytea, user_id text, email_key bytea, request_id text, created_at timestamptz);
CREATE TABLE regress_hostile.counters (contest_id bigint, entry_id bigint, slot int, votes bigint);
CREATE TABLE regress_hostile.secrets (version int, ip_secret bytea, email_secret bytea);
INSERT INTO regress_hostile.contests
VALUES (:c, 'fake', '2000-01-01', '2000-01-02', '2000-01-02', '{}', 1, 1, true, 1);
INSERT INTO regress_hostile.entries VALUES (:c, 99, 'fake');
INSERT INTO regress_hostile.votes VALUES (:c, 1, 1, NULL, 'sp-user-1', NULL, 'req-sp-1', NULL);
INSERT INTO regress_hostile.counters VALUES (:c, 1, 0, 1000), (:c, 2, 0, 1000);
INSERT INTO regress_hostile.secrets VALUES (1, '\x00', '\x00');

-- the same in pg_temp
CREATE TEMP TABLE contests AS SELECT * FROM regress_hostile.contests;
CREATE TEMP TABLE entries AS SELECT * FROM regress_hostile.entries;
CREATE TEMP TABLE votes AS SELECT * FROM regress_hostile.votes;
CREATE TEMP TABLE counters AS SELECT * FROM regress_hostile.counters;
CREATE TEMP TABLE secrets AS SELECT * FROM regress_hostile.secrets;

-- hostile objects first, pg_temp before everything, pg_catalog late
SET search_path = pg_temp, regress_hostile, vote_guard, pg_catalog;
-- and odd settings
SET transform_null_equals = on;
SET datestyle = 'SQL, DMY';
SET timezone = 'Pacific/Chatham';
SET intervalstyle = 'sql_standard';
SET enable_indexscan = off;
SET enable_indexonlyscan = off;
SET enable_bitmapscan = off;
SET enable_seqscan = off;
SET plan_cache_mode = force_generic_plan;
SET default_transaction_isolation = 'serializable';
SET standard_conforming_strings = off;
SET escape_string_warning = off;
SET bytea_output = 'escape';
SET array_nulls = off;
SET extra_float_digits = 3;
SET work_mem = '64kB';
SET synchronous_commit = off;
SHOW search_path;

-- the hostile operators are live for unqualified SQL of this role
SELECT 1::bigint = 2::bigint AS hostile_equals_is_live;
TRUNCATE regress_hostile.called;

-- ok, and duplicates of each kind
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', 'sp-user-1', 'sp1@example.com', 'req-sp-1');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.2', 'sp-user-2', 'sp2@example.com', 'req-sp-2');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '::ffff:192.0.2.1', 'sp-user-3', 'sp3@example.com');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.3', 'sp-user-1', 'sp3@example.com');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.3', 'sp-user-3', 'SP1+x@example.com');
-- a replay
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', 'sp-user-1', 'sp1@example.com', 'req-sp-1');
-- the other codes
SELECT :R FROM vote_guard.cast_vote(:c, 99, '192.0.2.4', 'sp-user-4');
SELECT :R FROM vote_guard.cast_vote(9223372036854775807, 1, '192.0.2.4', 'sp-user-4');
SELECT :R FROM vote_guard.cast_vote(:cl, 1, '192.0.2.4');
SELECT :R FROM vote_guard.cast_vote(:c, 1);
SELECT :R FROM vote_guard.cast_vote(:c, 1, '10.0.0.0/8', 'sp-user-4');
SELECT :R FROM vote_guard.cast_vote(:c, 1, NULL, 'sp-user-4', 'not an e-mail');
-- under each isolation level
SET default_transaction_isolation = 'repeatable read';
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.5', 'sp-user-5');
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.5', 'sp-user-6');
SET default_transaction_isolation = 'read committed';
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.6', 'sp-user-6');
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.7', 'sp-user-6');
SET default_transaction_isolation = 'serializable';
SELECT * FROM vote_guard.results(:c);

-- the owner closes the contest without leaving this search_path and these
-- settings; administration functions are immune as well
RESET ROLE;
SELECT vote_guard.close_contest(:c) IS NOT NULL AS closed;
SELECT vote_id AS sp1_vote FROM vote_guard.votes
 WHERE contest_id OPERATOR(pg_catalog.=) :c
   AND request_id OPERATOR(pg_catalog.=) 'req-sp-1' \gset
SET ROLE regress_vg_attacker;
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.8', 'sp-user-8');
-- replays after the close return the original vote
SELECT :R, vote_id OPERATOR(pg_catalog.=) :sp1_vote AS same_vote
  FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', 'sp-user-1', 'sp1@example.com', 'req-sp-1');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.2', 'sp-user-2', 'sp2@example.com', 'req-sp-2');

-- no hostile object was used or changed
SELECT what FROM regress_hostile.called;
SELECT (SELECT pg_catalog.count(*) FROM pg_temp.votes) AS temp_votes,
       (SELECT pg_catalog.count(*) FROM pg_temp.counters) AS temp_counters,
       (SELECT pg_catalog.count(*) FROM regress_hostile.votes) AS hostile_votes,
       (SELECT pg_catalog.sum(votes) FROM regress_hostile.counters) AS hostile_counted;

RESET ROLE;
RESET ALL;
SELECT count(*) AS hostile_calls FROM regress_hostile.called;

-- the counts as the owner sees them with an ordinary search_path
SELECT * FROM vote_guard.results(:c);
SELECT * FROM vote_guard.verify(:c);
SELECT user_id, entry_id, request_id FROM vote_guard.votes
 WHERE contest_id = :c ORDER BY user_id;

--
-- the owner's own writes under the hostile search_path go through the
-- triggers unchanged
--
SET search_path = pg_temp, regress_hostile, vote_guard, pg_catalog;
SET enable_indexscan = off;
SET plan_cache_mode = force_generic_plan;
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:cl, 1, 'sp-direct-1');
UPDATE vote_guard.votes SET user_id = 'sp-direct-2' WHERE contest_id OPERATOR(pg_catalog.=) :cl;
RESET ALL;
SELECT * FROM vote_guard.verify(:cl);
SELECT count(*) AS hostile_calls FROM regress_hostile.called;

--
-- settings only a superuser can change must not change what cast_vote does
-- either: with session_replication_role = replica the vote is still counted
--
SET session_replication_role = replica;
SELECT :R FROM vote_guard.cast_vote(:cl, 1, '192.0.2.9', 'sp-user-9');
RESET session_replication_role;
SELECT * FROM vote_guard.verify(:cl);

-- clean up
DISCARD TEMP;
SET client_min_messages = warning;
DROP OWNED BY regress_vg_attacker;
RESET client_min_messages;
DROP ROLE regress_vg_attacker;
SELECT count(*) AS leftover_schemas FROM pg_namespace WHERE nspname = 'regress_hostile';
