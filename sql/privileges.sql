--
-- privileges: what a role other than the owner may do (cast_vote, results,
-- the pure functions) and may not do (read or write any table, call the
-- administration and key functions); the owner's direct writes keep the
-- counters right; secrets never change and rotate without touching the
-- contests that already exist.
--
\set VERBOSITY terse
\set R 'success, error_code, http_status, vote_count, vote_id IS NOT NULL AS has_vote_id, retry_at, replayed'

SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_vg_voter;
RESET client_min_messages;
CREATE ROLE regress_vg_voter NOLOGIN;

SELECT vote_guard.create_contest('privileges') AS c \gset
SELECT vote_guard.add_entry(:c, 1, 'one'), vote_guard.add_entry(:c, 2, 'two');

--
-- the catalog: who may execute what
--
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_vg_voter', p.oid, 'EXECUTE') AS voter_may_execute,
       p.prosecdef AS security_definer,
       p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'vote_guard'::regnamespace
 ORDER BY p.oid::regprocedure::text;

SELECT c.oid::regclass AS relation,
       ARRAY(SELECT priv
               FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE',
                                 'REFERENCES', 'TRIGGER']) AS priv
              WHERE c.relkind <> 'S' AND has_table_privilege('regress_vg_voter', c.oid, priv)
             UNION ALL
             SELECT priv
               FROM unnest(ARRAY['USAGE', 'SELECT', 'UPDATE']) AS priv
              WHERE c.relkind = 'S' AND has_sequence_privilege('regress_vg_voter', c.oid, priv)
            ) AS voter_privileges
  FROM pg_class c
 WHERE c.relnamespace = 'vote_guard'::regnamespace AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
 ORDER BY c.oid::regclass::text;

SELECT has_schema_privilege('regress_vg_voter', 'vote_guard', 'USAGE') AS schema_usage,
       has_schema_privilege('regress_vg_voter', 'vote_guard', 'CREATE') AS schema_create,
       has_type_privilege('regress_vg_voter', 'vote_guard.vote_result', 'USAGE') AS result_type_usage;

--
-- as the voter role
--
-- runs a statement, returns 'allowed' or the error's SQLSTATE and message
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'allowed';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ' ' || SQLERRM;
END
$$;

SET ROLE regress_vg_voter;
SELECT current_user;

-- may vote and read results
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.10', 'voter-1', 'voter1@example.com', 'req-voter-1');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.11', 'voter-2');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.10', 'voter-3');
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.10', 'voter-1', 'voter1@example.com', 'req-voter-1');
SELECT * FROM vote_guard.results(:c);
-- and use the pure functions
SELECT octet_length(vote_guard.hmac_sha256('data', 'key')) AS hmac_len,
       vote_guard.normalize_email(' Voter+x@GoogleMail.com') AS normalized;

-- may not read or write any table
SELECT t.tbl, o.op, pg_temp.try(format(o.stmt, t.tbl, t.col)) AS outcome
  FROM (VALUES (1, 'secrets', 'version'), (2, 'contests', 'id'), (3, 'entries', 'entry_id'),
               (4, 'votes', 'vote_id'), (5, 'counters', 'votes')) AS t(n, tbl, col),
       (VALUES (1, 'SELECT',   'SELECT * FROM vote_guard.%s WHERE %s IS NOT NULL'),
               (2, 'INSERT',   'INSERT INTO vote_guard.%s (%s) VALUES (DEFAULT)'),
               (3, 'UPDATE',   'UPDATE vote_guard.%s SET %2$s = %2$s'),
               (4, 'DELETE',   'DELETE FROM vote_guard.%s'),
               (5, 'TRUNCATE', 'TRUNCATE vote_guard.%s'),
               (6, 'LOCK',     'LOCK TABLE vote_guard.%s IN ACCESS EXCLUSIVE MODE')) AS o(n, op, stmt)
 ORDER BY t.n, o.n;

-- nor touch the sequences, alter the tables, or add objects to the schema
SELECT stmt, pg_temp.try(stmt) AS outcome
  FROM (VALUES
    ('SELECT nextval(''vote_guard.votes_vote_id_seq'')'),
    ('SELECT setval(''vote_guard.contests_id_seq'', 1000)'),
    ('ALTER TABLE vote_guard.votes DISABLE TRIGGER votes_counters'),
    ('DROP INDEX vote_guard.votes_ip_key_uniq'),
    ('CREATE TABLE vote_guard.votes_shadow (x int)'),
    ('CREATE FUNCTION vote_guard.now() RETURNS timestamptz LANGUAGE sql AS ''SELECT now()''')
  ) AS t(stmt);

-- may not call the administration, key and secret functions
SELECT vote_guard.ip_key(:c, '192.0.2.10');
SELECT vote_guard.email_key(:c, 'voter1@example.com');
SELECT vote_guard.create_contest('not mine');
SELECT vote_guard.add_entry(:c, 3, 'three');
SELECT vote_guard.close_contest(:c);
SELECT * FROM vote_guard.verify(:c);
SELECT vote_guard.rotate_secrets();
SELECT vote_guard.random_secret();
-- nor the trigger functions
SELECT vote_guard.votes_trigger();
SELECT vote_guard.secrets_insert_trigger();

RESET ROLE;
SELECT current_user = session_user AS back_to_owner;

-- nothing the voter tried changed the contest
SELECT name, closed_at IS NULL AS open FROM vote_guard.contests WHERE id = :c;
SELECT * FROM vote_guard.results(:c);
SELECT * FROM vote_guard.verify(:c);

--
-- the owner's direct writes go through the same triggers
--
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id)
VALUES (:c, 1, 'direct-1'), (:c, 2, 'direct-2'), (:c, 2, 'direct-3');
SELECT * FROM vote_guard.verify(:c);
-- moving a vote to another entry moves its count
UPDATE vote_guard.votes SET entry_id = 1 WHERE contest_id = :c AND user_id = 'direct-2';
SELECT * FROM vote_guard.verify(:c);
-- an update that keeps the entry keeps the count
UPDATE vote_guard.votes SET user_id = 'direct-2b' WHERE contest_id = :c AND user_id = 'direct-2';
SELECT * FROM vote_guard.verify(:c);
DELETE FROM vote_guard.votes WHERE contest_id = :c AND user_id = 'direct-3';
SELECT * FROM vote_guard.verify(:c);
SELECT * FROM vote_guard.results(:c);

-- direct rows are votes like any other
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.20', 'direct-1');
-- and a vote deleted by the owner frees its voter
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.21', 'direct-3');

-- the unique indexes hold for direct inserts too
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:c, 2, 'direct-1');
INSERT INTO vote_guard.votes (contest_id, entry_id, ip_key)
VALUES (:c, 2, vote_guard.ip_key(:c, '192.0.2.10'));
INSERT INTO vote_guard.votes (contest_id, entry_id, email_key)
VALUES (:c, 2, vote_guard.email_key(:c, 'Voter1+again@example.com'));
INSERT INTO vote_guard.votes (contest_id, entry_id, request_id) VALUES (:c, 2, 'req-voter-1');
-- an entry must exist, a vote cannot move to another contest, and the
-- limits of user_id and request_id hold
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:c, 99, 'direct-99');
SELECT vote_guard.create_contest('privileges other') AS c2 \gset
SELECT vote_guard.add_entry(:c2, 1);
UPDATE vote_guard.votes SET contest_id = :c2, entry_id = 1 WHERE contest_id = :c AND user_id = 'direct-1';
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:c, 2, '');
INSERT INTO vote_guard.votes (contest_id, entry_id, request_id) VALUES (:c, 2, repeat('r', 257));
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:c, 2, repeat('ü', 257));
-- 256 characters are fine, even as more bytes
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id, request_id)
VALUES (:c, 2, repeat('ü', 256), repeat('r', 256))
RETURNING length(user_id) AS user_len, octet_length(user_id) AS user_bytes, length(request_id) AS request_len;
DELETE FROM vote_guard.votes WHERE contest_id = :c AND user_id = repeat('ü', 256);
-- updates are held to the same limits; the error names the table and the rule
DO $$
DECLARE
    st text; tbl text; con text;
BEGIN
    UPDATE vote_guard.votes SET request_id = '' WHERE user_id = 'direct-1';
    RAISE NOTICE 'update allowed';
EXCEPTION WHEN check_violation THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, tbl = TABLE_NAME, con = CONSTRAINT_NAME;
    RAISE NOTICE '% on %: %', st, tbl, con;
END
$$;
SELECT * FROM vote_guard.verify(:c);

-- TRUNCATE empties the counters with the votes, and rolls back with them
BEGIN;
TRUNCATE vote_guard.votes;
SELECT * FROM vote_guard.verify(:c);
SELECT count(*) AS votes, coalesce(sum(votes), 0) AS counted
  FROM vote_guard.votes, (SELECT sum(votes) AS votes FROM vote_guard.counters) k;
ROLLBACK;
SELECT * FROM vote_guard.verify(:c);
SELECT bool_and(v.drift = 0) AS no_drift_anywhere
  FROM vote_guard.contests ct, LATERAL vote_guard.verify(ct.id) v;

--
-- secrets: never changed, rotated by adding a version
--
UPDATE vote_guard.secrets SET created_at = created_at;
UPDATE vote_guard.secrets SET ip_secret = vote_guard.random_secret() WHERE version = 1;
-- a version a contest uses cannot be deleted
DELETE FROM vote_guard.secrets WHERE version = 1;
SELECT version, octet_length(ip_secret) AS ip_len FROM vote_guard.secrets ORDER BY version;

-- a contest's keys are HMACs under keys derived from its secret version:
-- HMAC(secret, label || contest_id as 8 bytes big-endian), truncated to
-- their first 16 bytes.  The derivation is part of the stored data:
-- changing it would orphan every stored key.
CREATE TEMP VIEW derived AS
SELECT ct.id, ct.secret_version, s.version,
       substring(vote_guard.hmac_sha256('\x3420c000020a'::bytea,    -- '4', /32, 192.0.2.10
           vote_guard.hmac_sha256('vote_guard/ip/v1'::bytea || int8send(ct.id), s.ip_secret)) FROM 1 FOR 16)
         = vote_guard.ip_key(ct.id, '192.0.2.10') AS ip_key_matches,
       substring(vote_guard.hmac_sha256(convert_to('voter1@example.com', 'UTF8'),
           vote_guard.hmac_sha256('vote_guard/email/v1'::bytea || int8send(ct.id), s.email_secret)) FROM 1 FOR 16)
         = vote_guard.email_key(ct.id, 'Voter1@Example.com') AS email_key_matches
  FROM vote_guard.contests ct, vote_guard.secrets s;

SELECT secret_version, version, ip_key_matches, email_key_matches
  FROM derived WHERE id = :c ORDER BY version;

CREATE TEMP TABLE keys_before AS
SELECT vote_guard.ip_key(:c, '192.0.2.10') AS ip4,
       vote_guard.ip_key(:c, '2001:db8::10') AS ip6,
       vote_guard.email_key(:c, 'voter1@example.com') AS email;

SELECT vote_guard.rotate_secrets() AS new_version;
SELECT version, octet_length(ip_secret) AS ip_len, octet_length(email_secret) AS email_len,
       ip_secret <> email_secret AS independent
  FROM vote_guard.secrets ORDER BY version;
SELECT count(DISTINCT ip_secret) AS ip_secrets, count(DISTINCT email_secret) AS email_secrets
  FROM vote_guard.secrets;

-- new contests use the new version, the old contest keeps its own
SELECT vote_guard.create_contest('privileges after rotation') AS c3 \gset
SELECT vote_guard.add_entry(:c3, 1);
SELECT id = :c3 AS new_contest, secret_version FROM vote_guard.contests
 WHERE id IN (:c, :c3) ORDER BY id;
SELECT id = :c3 AS new_contest, secret_version, version, ip_key_matches, email_key_matches
  FROM derived WHERE id IN (:c, :c3) ORDER BY id, version;

-- the old contest's keys did not change: its voters are still recognised
SELECT k.ip4 = vote_guard.ip_key(:c, '192.0.2.10') AS ip4_unchanged,
       k.ip6 = vote_guard.ip_key(:c, '2001:db8::10') AS ip6_unchanged,
       k.email = vote_guard.email_key(:c, 'voter1@example.com') AS email_unchanged
  FROM keys_before k;
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.10', 'voter-9', 'voter9@example.com');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.99', 'voter-9', 'Voter1@example.com');
-- while the new contest takes the same voter once
SELECT :R FROM vote_guard.cast_vote(:c3, 1, '192.0.2.10', 'voter-1', 'voter1@example.com');
SELECT :R FROM vote_guard.cast_vote(:c3, 1, '192.0.2.10', 'voter-1', 'voter1@example.com');
SELECT k.ip4 <> vote_guard.ip_key(:c3, '192.0.2.10') AS keys_differ_across_contests
  FROM keys_before k;

-- the new secret version cannot be changed either
UPDATE vote_guard.secrets SET email_secret = vote_guard.random_secret() WHERE version = 2;

DROP VIEW derived;
DROP TABLE keys_before;
DROP FUNCTION pg_temp.try(text);
DROP ROLE regress_vg_voter;
