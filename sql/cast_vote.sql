--
-- cast_vote: every result code of the contract that 1.0 produces, collision
-- priority, dedupe_on subsets, replays by request_id, counts, and that a
-- rejected or rolled-back call leaves nothing behind.
--
\set VERBOSITY terse
-- the columns of vote_guard.vote_result, with vote_id reduced to "present"
-- (ids come from an identity and are not printed)
\set R 'success, error_code, http_status, vote_count, vote_id IS NOT NULL AS has_vote_id, retry_at, replayed'

-- everything cast_vote could write, to prove that a call wrote nothing
CREATE TEMP VIEW state AS
SELECT (SELECT count(*) FROM vote_guard.votes) AS votes,
       (SELECT md5(coalesce(string_agg(v::text, ';' ORDER BY v.contest_id, v.vote_id), ''))
          FROM vote_guard.votes v) AS votes_md5,
       (SELECT count(*) FROM vote_guard.counters) AS counter_rows,
       (SELECT md5(coalesce(string_agg(k::text, ';' ORDER BY k.contest_id, k.entry_id, k.slot), ''))
          FROM vote_guard.counters k) AS counters_md5;

SELECT vote_guard.create_contest('cast_vote main') AS c \gset
SELECT vote_guard.add_entry(:c, 1, 'alpha'), vote_guard.add_entry(:c, 2, 'beta'),
       vote_guard.add_entry(:c, 3, 'gamma');

--
-- ok: the count is the entry's count after the call
--
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', 'alice', 'alice@example.com', 'req-alice');
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.2', 'bob', 'bob@example.com');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '2001:db8:0:1::10', 'carol', 'carol@gmail.com', 'req-carol');
-- one vector is enough: user only, e-mail only, address only
SELECT :R FROM vote_guard.cast_vote(:c, 3, NULL, 'dave');
SELECT :R FROM vote_guard.cast_vote(:c, 3, email => 'erin@example.com');
SELECT :R FROM vote_guard.cast_vote(:c, 3, '198.51.100.9');
-- named arguments of the contract
SELECT :R FROM vote_guard.cast_vote(contest_id => :c, entry_id => 2, voter_ip => '198.51.100.10',
                                    user_id => 'frank', email => 'frank@example.com',
                                    request_id => 'req-frank');

SELECT * FROM vote_guard.results(:c);

--
-- duplicates: 409, vote_count is the requested entry's count, nothing written
--
CREATE TEMP TABLE before AS SELECT * FROM state;

SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.1', 'zed', 'zed@example.com');
-- the same address written as IPv4-mapped IPv6
SELECT :R FROM vote_guard.cast_vote(:c, 2, '::ffff:192.0.2.1', 'zed', 'zed@example.com');
-- another address in carol's /64
SELECT :R FROM vote_guard.cast_vote(:c, 1, '2001:db8:0:1:abcd::99', 'zed', 'zed@example.com');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.50', 'alice', 'zed@example.com');
SELECT :R FROM vote_guard.cast_vote(:c, 3, NULL, 'dave');
-- e-mails collide after normalisation
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.50', 'zed', ' Alice+second@EXAMPLE.com');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.50', 'zed', 'C.a.r.o.l@googlemail.com');

-- priority when several vectors collide: ip, then user, then email
-- (bob's address, alice's user, carol's e-mail: three different votes)
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.2', 'alice', 'carol@gmail.com');
-- (new address, alice's user, carol's e-mail)
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.51', 'alice', 'carol@gmail.com');
-- (new address, dave's user, erin's e-mail)
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.52', 'dave', 'erin@example.com');
-- (the address-only voter's address, erin's e-mail)
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.9', NULL, 'erin@example.com');
-- (all three of alice's own vote)
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', 'alice', 'alice@example.com');
-- (new address, new user, alice's e-mail)
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.53', 'zed', 'alice@example.com');

SELECT s::text = b::text AS nothing_written FROM state s, before b;
DROP TABLE before;

--
-- replays by request_id: ok, replayed, the original vote_id, nothing written
--
SELECT vote_id AS alice_vote FROM vote_guard.votes
 WHERE contest_id = :c AND request_id = 'req-alice' \gset
CREATE TEMP TABLE before AS SELECT * FROM state;

SELECT :R, vote_id = :alice_vote AS same_vote
  FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', 'alice', 'alice@example.com', 'req-alice');
-- the same request_id with other arguments is still the original vote
-- (vote_count is the count of the entry it was cast for)
SELECT :R, vote_id = :alice_vote AS same_vote
  FROM vote_guard.cast_vote(:c, 2, '203.0.113.1', 'somebody', 'somebody@example.com', 'req-alice');
-- a retry that would now be rejected is a replay too
SELECT :R, vote_id = :alice_vote AS same_vote
  FROM vote_guard.cast_vote(:c, 99, '192.0.2.1', 'alice', NULL, 'req-alice');
SELECT :R, vote_id = :alice_vote AS same_vote
  FROM vote_guard.cast_vote(:c, 1, NULL, NULL, NULL, 'req-alice');

-- a request_id of a rejected call is not remembered: still a duplicate
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', NULL, NULL, 'req-dup');
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', NULL, NULL, 'req-dup');

SELECT s::text = b::text AS nothing_written FROM state s, before b;
DROP TABLE before;

-- request_ids belong to a contest: the same one elsewhere is a new vote
SELECT vote_guard.create_contest('cast_vote other') AS c2 \gset
SELECT vote_guard.add_entry(:c2, 1);
SELECT :R FROM vote_guard.cast_vote(:c2, 1, '192.0.2.1', 'alice', 'alice@example.com', 'req-alice');
SELECT :R FROM vote_guard.cast_vote(:c2, 1, '192.0.2.1', 'alice', 'alice@example.com', 'req-alice');
SELECT count(*) AS votes_with_req_alice FROM vote_guard.votes WHERE request_id = 'req-alice'
   AND contest_id IN (:c, :c2);

--
-- the other codes: contest_not_found, entry_not_found, contest_not_open,
-- contest_closed, login_required, invalid_input; nothing written
--
SELECT vote_guard.create_contest('cast_vote future', opens_at => now() + interval '1 day') AS cf \gset
SELECT vote_guard.add_entry(:cf, 1);
SELECT vote_guard.create_contest('cast_vote past', opens_at => now() - interval '2 days',
                                 closes_at => now() - interval '1 day') AS cp \gset
SELECT vote_guard.add_entry(:cp, 1);
SELECT vote_guard.create_contest('cast_vote login', require_user => true) AS cl \gset
SELECT vote_guard.add_entry(:cl, 1);
SELECT vote_guard.create_contest('cast_vote user only', dedupe_on => '{user}') AS cu \gset
SELECT vote_guard.add_entry(:cu, 1);

CREATE TEMP TABLE before AS SELECT * FROM state;

SELECT :R FROM vote_guard.cast_vote(9223372036854775807, 1, '192.0.2.99', 'nobody');
SELECT :R FROM vote_guard.cast_vote(:c, 99, '192.0.2.99', 'nobody');
SELECT :R FROM vote_guard.cast_vote(:cf, 1, '192.0.2.99', 'nobody');
SELECT :R FROM vote_guard.cast_vote(:cp, 1, '192.0.2.99', 'nobody');
SELECT :R FROM vote_guard.cast_vote(:cl, 1, '192.0.2.99', NULL, 'nobody@example.com');
-- no identity at all
SELECT :R FROM vote_guard.cast_vote(:c, 1);
SELECT :R FROM vote_guard.cast_vote(:c, 1, NULL, NULL, NULL, 'req-nobody');
-- identity given, but none of the vectors the contest enforces
SELECT :R FROM vote_guard.cast_vote(:cu, 1, '192.0.2.99', NULL, 'nobody@example.com');

-- which check comes first
-- contest_not_found before invalid_input (no identity)
SELECT :R FROM vote_guard.cast_vote(9223372036854775807, 1);
-- contest_not_open before entry_not_found
SELECT :R FROM vote_guard.cast_vote(:cf, 99, '192.0.2.99');
-- contest_closed before login_required and entry_not_found
SELECT :R FROM vote_guard.cast_vote(:cp, 99);
-- login_required before invalid_input and entry_not_found
SELECT :R FROM vote_guard.cast_vote(:cl, 99);
-- invalid_input (no identity) before entry_not_found
SELECT :R FROM vote_guard.cast_vote(:c, 99);
-- entry_not_found before duplicate_ip
SELECT :R FROM vote_guard.cast_vote(:c, 99, '192.0.2.1');

SELECT s::text = b::text AS nothing_written FROM state s, before b;
DROP TABLE before;

-- login_required is lifted by a user_id
SELECT :R FROM vote_guard.cast_vote(:cl, 1, '192.0.2.99', 'someone');

--
-- contest_closed by close_contest, and replays after the close
--
SELECT vote_guard.create_contest('cast_vote closing') AS cc \gset
SELECT vote_guard.add_entry(:cc, 1), vote_guard.add_entry(:cc, 2);
SELECT :R FROM vote_guard.cast_vote(:cc, 1, '192.0.2.1', 'alice', NULL, 'req-cc-alice');
SELECT :R FROM vote_guard.cast_vote(:cc, 1, '192.0.2.2', 'bob', NULL, 'req-cc-bob');
SELECT vote_id AS cc_alice FROM vote_guard.votes
 WHERE contest_id = :cc AND request_id = 'req-cc-alice' \gset
SELECT vote_guard.close_contest(:cc) IS NOT NULL AS closed;

CREATE TEMP TABLE before AS SELECT * FROM state;
SELECT :R FROM vote_guard.cast_vote(:cc, 2, '192.0.2.3', 'carol');
SELECT :R FROM vote_guard.cast_vote(:cc, 2, '192.0.2.3', 'carol', NULL, 'req-cc-carol');
SELECT :R FROM vote_guard.cast_vote(:cc, 99, '192.0.2.3', 'carol');
-- a duplicate after the close is contest_closed
SELECT :R FROM vote_guard.cast_vote(:cc, 1, '192.0.2.1', 'alice');
-- the retry of a vote counted before the close is replayed
SELECT :R, vote_id = :cc_alice AS same_vote
  FROM vote_guard.cast_vote(:cc, 1, '192.0.2.1', 'alice', NULL, 'req-cc-alice');
SELECT s::text = b::text AS nothing_written FROM state s, before b;
DROP TABLE before;

SELECT * FROM vote_guard.results(:cc);

-- a replay also works once closes_at has passed (the owner moves the window)
UPDATE vote_guard.contests
   SET opens_at = now() - interval '2 days', closes_at = now() - interval '1 day'
 WHERE id = :c2;
SELECT :R FROM vote_guard.cast_vote(:c2, 1, '192.0.2.77', 'late');
SELECT :R FROM vote_guard.cast_vote(:c2, 1, '192.0.2.1', 'alice', 'alice@example.com', 'req-alice');

--
-- dedupe_on subsets: a vector that is not enforced is not stored and does
-- not block
--
-- user only (:cu)
SELECT vote_guard.add_entry(:cu, 2);
SELECT :R FROM vote_guard.cast_vote(:cu, 1, '192.0.2.1', 'u1', 'same@example.com');
SELECT :R FROM vote_guard.cast_vote(:cu, 2, '192.0.2.1', 'u2', 'same@example.com');
SELECT :R FROM vote_guard.cast_vote(:cu, 2, '192.0.2.7', 'u1');
SELECT user_id, ip_key IS NULL AS no_ip_key, email_key IS NULL AS no_email_key
  FROM vote_guard.votes WHERE contest_id = :cu ORDER BY user_id;

-- address only
SELECT vote_guard.create_contest('cast_vote ip only', dedupe_on => '{ip}') AS ci \gset
SELECT vote_guard.add_entry(:ci, 1);
SELECT :R FROM vote_guard.cast_vote(:ci, 1, '192.0.2.1', 'u1', 'same@example.com');
SELECT :R FROM vote_guard.cast_vote(:ci, 1, '192.0.2.2', 'u1', 'same@example.com');
SELECT :R FROM vote_guard.cast_vote(:ci, 1, '::ffff:192.0.2.2', 'u3');
SELECT :R FROM vote_guard.cast_vote(:ci, 1, NULL, 'u4', 'other@example.com');
SELECT ip_key IS NOT NULL AS has_ip_key, user_id, email_key IS NULL AS no_email_key
  FROM vote_guard.votes WHERE contest_id = :ci ORDER BY vote_id;

-- e-mail only
SELECT vote_guard.create_contest('cast_vote email only', dedupe_on => '{email}') AS ce \gset
SELECT vote_guard.add_entry(:ce, 1);
SELECT :R FROM vote_guard.cast_vote(:ce, 1, '192.0.2.1', 'u1', 'one@example.com');
SELECT :R FROM vote_guard.cast_vote(:ce, 1, '192.0.2.1', 'u1', 'two@example.com');
SELECT :R FROM vote_guard.cast_vote(:ce, 1, '192.0.2.9', 'u9', 'ONE+x@example.com');
SELECT :R FROM vote_guard.cast_vote(:ce, 1, '192.0.2.9', 'u9');
SELECT ip_key IS NULL AS no_ip_key, user_id IS NULL AS no_user, email_key IS NOT NULL AS has_email_key
  FROM vote_guard.votes WHERE contest_id = :ce ORDER BY vote_id;

-- address and user: the e-mail is not stored, priority stays ip, user
SELECT vote_guard.create_contest('cast_vote ip and user', dedupe_on => '{user,ip}') AS cb \gset
SELECT vote_guard.add_entry(:cb, 1);
SELECT :R FROM vote_guard.cast_vote(:cb, 1, '192.0.2.1', 'u1', 'same@example.com');
SELECT :R FROM vote_guard.cast_vote(:cb, 1, '192.0.2.2', 'u2', 'same@example.com');
SELECT :R FROM vote_guard.cast_vote(:cb, 1, '192.0.2.2', 'u1', 'same@example.com');
SELECT :R FROM vote_guard.cast_vote(:cb, 1, '192.0.2.3', 'u1');
SELECT count(*) AS votes, count(email_key) AS email_keys
  FROM vote_guard.votes WHERE contest_id = :cb;

--
-- transactions: a rolled-back or failed call leaves nothing behind
--
SELECT votes FROM vote_guard.results(:c) WHERE entry_id = 2;
CREATE TEMP TABLE before AS SELECT * FROM state;

BEGIN;
SELECT :R FROM vote_guard.cast_vote(:c, 2, '203.0.113.10', 'tx1');
-- the transaction sees its own vote
SELECT :R FROM vote_guard.cast_vote(:c, 2, '203.0.113.10', 'tx1');
SELECT votes FROM vote_guard.results(:c) WHERE entry_id = 2;
ROLLBACK;

BEGIN;
SELECT :R FROM vote_guard.cast_vote(:c, 2, '203.0.113.10', 'tx1');
SELECT 1 / 0;
ROLLBACK;

-- an error later in the same statement
SELECT (vote_guard.cast_vote(:c, 2, '203.0.113.10', 'tx1')).success, 1 / 0;

SELECT s::text = b::text AS nothing_written FROM state s, before b;
DROP TABLE before;
SELECT votes FROM vote_guard.results(:c) WHERE entry_id = 2;

-- the voter of the rolled-back calls was never counted: may vote now
SELECT :R FROM vote_guard.cast_vote(:c, 2, '203.0.113.10', 'tx1');

-- rolling back to a savepoint drops the vote and its count
BEGIN;
SAVEPOINT s1;
SELECT :R FROM vote_guard.cast_vote(:c, 3, '203.0.113.11', 'tx2');
ROLLBACK TO SAVEPOINT s1;
SELECT :R FROM vote_guard.cast_vote(:c, 3, '203.0.113.11', 'tx2');
COMMIT;

--
-- entries a backend has seen are remembered; a removal or a rollback of
-- the entry's creation is still seen
--
SELECT vote_guard.create_contest('entry cache') AS cx \gset
SELECT vote_guard.add_entry(:cx, e) FROM generate_series(1, 2) e;
SELECT :R FROM vote_guard.cast_vote(:cx, 1, '198.51.100.60');
-- a duplicate: entry 2 is looked up (and remembered), no vote is written
SELECT :R FROM vote_guard.cast_vote(:cx, 2, '198.51.100.60');
DELETE FROM vote_guard.entries WHERE contest_id = :cx AND entry_id = 2;
SELECT :R FROM vote_guard.cast_vote(:cx, 2, '198.51.100.61');
-- an entry added in a transaction that rolls back
BEGIN;
SELECT vote_guard.add_entry(:cx, 3);
SELECT :R FROM vote_guard.cast_vote(:cx, 3, '198.51.100.62');
ROLLBACK;
SELECT :R FROM vote_guard.cast_vote(:cx, 3, '198.51.100.63');

--
-- counters changed by hand (an extra index): cast_vote moves them through
-- SQL, which keeps every index; the index scan finds the newest count
--
SELECT vote_guard.add_entry(:cx, 4);
CREATE INDEX counters_votes_extra ON vote_guard.counters (contest_id, entry_id, votes);
SELECT :R FROM vote_guard.cast_vote(:cx, 4, '198.51.100.70');
SELECT :R FROM vote_guard.cast_vote(:cx, 4, '198.51.100.71');
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT votes FROM vote_guard.counters WHERE contest_id = :cx AND entry_id = 4 AND votes = 2;
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX vote_guard.counters_votes_extra;
SELECT :R FROM vote_guard.cast_vote(:cx, 4, '198.51.100.72');
SELECT * FROM vote_guard.verify(:cx) WHERE entry_id = 4;

--
-- votes changed by hand: cast_vote writes a vote without a plan only while
-- the table is as created; what the owner added still applies
--
SELECT vote_guard.add_entry(:cx, 5);
-- a CHECK constraint is checked
ALTER TABLE vote_guard.votes ADD CONSTRAINT votes_not_entry_5 CHECK (entry_id <> 5);
SELECT :R FROM vote_guard.cast_vote(:cx, 5, '198.51.100.80');
ALTER TABLE vote_guard.votes DROP CONSTRAINT votes_not_entry_5;
SELECT :R FROM vote_guard.cast_vote(:cx, 5, '198.51.100.80');
-- an insert trigger of the owner's fires
CREATE FUNCTION pg_temp.vote_seen() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RAISE NOTICE 'vote for entry % seen', NEW.entry_id; RETURN NEW; END$$;
BEGIN;
CREATE TRIGGER votes_seen AFTER INSERT ON vote_guard.votes
    FOR EACH ROW EXECUTE FUNCTION pg_temp.vote_seen();
SELECT :R FROM vote_guard.cast_vote(:cx, 5, '198.51.100.81');
ROLLBACK;
-- a column added with a default gets it
BEGIN;
ALTER TABLE vote_guard.votes ADD COLUMN channel text;
ALTER TABLE vote_guard.votes ALTER COLUMN channel SET DEFAULT 'web';
SELECT :R FROM vote_guard.cast_vote(:cx, 5, '198.51.100.82');
SELECT entry_id, channel FROM vote_guard.votes
 WHERE contest_id = :cx AND entry_id = 5 ORDER BY vote_id;
ROLLBACK;
-- another default for created_at is taken
BEGIN;
ALTER TABLE vote_guard.votes ALTER COLUMN created_at SET DEFAULT '2001-02-03 04:05:06+00';
SELECT :R FROM vote_guard.cast_vote(:cx, 5, '198.51.100.83');
SELECT created_at = '2001-02-03 04:05:06+00' AS default_taken FROM vote_guard.votes
 WHERE contest_id = :cx AND entry_id = 5 ORDER BY vote_id DESC LIMIT 1;
ROLLBACK;
-- and as created again: the vote's time is the calling statement's
CREATE FUNCTION pg_temp.vote_time(bigint, bigint) RETURNS timestamptz
    LANGUAGE sql VOLATILE
    AS 'SELECT created_at FROM vote_guard.votes WHERE contest_id = $1 AND vote_id = $2';
BEGIN;
SELECT pg_sleep(0.01);
SELECT r.success, pg_temp.vote_time(:cx, r.vote_id) = statement_timestamp() AS statement_time
  FROM vote_guard.cast_vote(:cx, 5, '198.51.100.84') r;
COMMIT;
-- a read-only transaction cannot vote
BEGIN READ ONLY;
SELECT :R FROM vote_guard.cast_vote(:cx, 5, '198.51.100.85');
ROLLBACK;
SELECT * FROM vote_guard.verify(:cx) WHERE entry_id = 5;

--
-- counts: results() agrees with the vote rows, verify() finds no drift
--
SELECT * FROM vote_guard.results(:c);
SELECT entry_id, count(*) AS vote_rows FROM vote_guard.votes
 WHERE contest_id = :c GROUP BY entry_id ORDER BY entry_id;
SELECT * FROM vote_guard.verify(:c);
SELECT ct.name, v.entry_id, v.counted, v.actual, v.drift
  FROM vote_guard.contests ct, LATERAL vote_guard.verify(ct.id) v
 WHERE ct.id IN (:c2, :cf, :cp, :cl, :cu, :cc, :ci, :ce, :cb, :cx)
 ORDER BY ct.id, v.entry_id;

DROP VIEW state;
