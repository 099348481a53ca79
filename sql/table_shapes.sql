--
-- table_shapes: the fast paths (the vote's row written without a plan, the
-- counter row updated in place) are taken only while votes and counters
-- are as vote_guard created them.  Whatever the owner adds that a planned
-- INSERT or UPDATE would enforce (CHECK constraints, also NOT VALID ones,
-- generated columns, rules, a publication that needs a replica identity,
-- privileges, row security) is enforced for these writes too, and the
-- counts stay right.  Each change is made in a transaction that rolls back,
-- so the next one starts from the table as created.
--
\set VERBOSITY terse
\set R 'success, error_code, http_status, vote_count'

SELECT vote_guard.create_contest('table shapes') AS c \gset
SELECT vote_guard.add_entry(:c, 1), vote_guard.add_entry(:c, 2);
-- eight votes for entry 1, one counter row (one voter at a time)
SELECT count(*) FILTER (WHERE r.success) AS accepted
  FROM generate_series(1, 8) g,
       vote_guard.cast_vote(:c, 1, ('198.51.100.' || g)::inet) r;
SELECT count(*) AS counter_rows, sum(votes) AS votes FROM vote_guard.counters WHERE contest_id = :c;

--
-- counters
--
-- a CHECK constraint, even NOT VALID, holds for the new row version
BEGIN;
ALTER TABLE vote_guard.counters ADD CONSTRAINT counters_below_9 CHECK (votes < 9) NOT VALID;
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.20');
ROLLBACK;
-- a stored generated column is computed for the new row version
BEGIN;
ALTER TABLE vote_guard.counters
    ADD COLUMN doubled bigint GENERATED ALWAYS AS (votes * 2) STORED;
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.21');
SELECT sum(votes) AS votes, sum(doubled) AS doubled
  FROM vote_guard.counters WHERE contest_id = :c AND entry_id = 1;
ROLLBACK;
-- a rule on the table
BEGIN;
CREATE RULE counters_no_update AS ON UPDATE TO vote_guard.counters DO INSTEAD NOTHING;
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.23');
ROLLBACK;
-- a publication of every table, and counters without a replica identity
BEGIN;
SET client_min_messages = error;
CREATE PUBLICATION regress_vg_all FOR ALL TABLES;
RESET client_min_messages;
ALTER TABLE vote_guard.counters REPLICA IDENTITY NOTHING;
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.24');
ROLLBACK;
-- an update trigger of the owner's fires
CREATE FUNCTION pg_temp.counter_seen() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RAISE NOTICE 'counter of entry % now %', NEW.entry_id, NEW.votes; RETURN NEW; END$$;
BEGIN;
CREATE TRIGGER counters_seen BEFORE UPDATE ON vote_guard.counters
    FOR EACH ROW EXECUTE FUNCTION pg_temp.counter_seen();
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.25');
ROLLBACK;

--
-- votes
--
-- a NOT VALID CHECK constraint holds for the new vote
BEGIN;
ALTER TABLE vote_guard.votes ADD CONSTRAINT votes_not_entry_2 CHECK (entry_id <> 2) NOT VALID;
SELECT :R FROM vote_guard.cast_vote(:c, 2, '198.51.100.30');
ROLLBACK;
-- a stored generated column is computed
BEGIN;
ALTER TABLE vote_guard.votes
    ADD COLUMN entry_twice bigint GENERATED ALWAYS AS (entry_id * 2) STORED;
SELECT :R FROM vote_guard.cast_vote(:c, 2, '198.51.100.31');
SELECT entry_twice FROM vote_guard.votes WHERE contest_id = :c AND entry_id = 2;
ROLLBACK;
-- a rule on the table
BEGIN;
CREATE RULE votes_no_insert AS ON INSERT TO vote_guard.votes DO INSTEAD NOTHING;
SELECT :R FROM vote_guard.cast_vote(:c, 2, '198.51.100.33');
ROLLBACK;

--
-- privileges and row security: a role that may insert votes writes them
-- directly; the counter moves only where that role may update counters and
-- row security lets it (the superuser that owns vote_guard bypasses both)
--
DROP ROLE IF EXISTS regress_vg_writer;
CREATE ROLE regress_vg_writer NOLOGIN;
GRANT USAGE ON SCHEMA vote_guard TO regress_vg_writer;
GRANT SELECT, INSERT ON vote_guard.votes TO regress_vg_writer;
GRANT SELECT ON vote_guard.contests, vote_guard.entries TO regress_vg_writer;
-- entry 1 has its counter row: the writer may not update it
SET ROLE regress_vg_writer;
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:c, 1, 'writer-1');
RESET ROLE;
GRANT SELECT, INSERT, UPDATE ON vote_guard.counters TO regress_vg_writer;
-- row security on counters without a policy for the writer
BEGIN;
ALTER TABLE vote_guard.counters ENABLE ROW LEVEL SECURITY;
SET ROLE regress_vg_writer;
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:c, 1, 'writer-1');
ROLLBACK;
-- both granted, no row security: the vote and its count
SET ROLE regress_vg_writer;
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:c, 1, 'writer-1');
RESET ROLE;
REVOKE ALL ON vote_guard.votes, vote_guard.counters, vote_guard.contests,
              vote_guard.entries FROM regress_vg_writer;
REVOKE ALL ON SCHEMA vote_guard FROM regress_vg_writer;
DROP ROLE regress_vg_writer;

-- as created again: the fast paths, and the counts right throughout
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.40');
SELECT :R FROM vote_guard.cast_vote(:c, 2, '198.51.100.41');
SELECT * FROM vote_guard.verify(:c);
