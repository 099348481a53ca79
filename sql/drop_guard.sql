--
-- drop_guard: while vote_guard holds a contest, DROP EXTENSION vote_guard
-- (with or without CASCADE), DROP SCHEMA vote_guard and DROP OWNED BY its
-- owner are refused unless vote_guard.allow_drop is on, set for the
-- transaction with SET LOCAL.  An extension without contests drops freely.
-- Runs last: it drops and re-creates the extension, and leaves it installed.
--
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- (a query in a variable: a view would itself depend on the extension)
\set held 'SELECT (SELECT count(*) FROM vote_guard.contests) > 0 AS has_contests, (SELECT count(*) FROM vote_guard.votes) > 0 AS has_votes'
:held;

-- the earlier files left contests and votes: every form of the drop is refused
DROP EXTENSION vote_guard;
\echo :SQLSTATE
DROP EXTENSION vote_guard CASCADE;
\echo :SQLSTATE
DROP EXTENSION IF EXISTS plpgsql_no_such_extension, vote_guard CASCADE;
\echo :SQLSTATE
DROP SCHEMA vote_guard CASCADE;
\echo :SQLSTATE
DROP SCHEMA IF EXISTS regress_no_such_schema, vote_guard CASCADE;
\echo :SQLSTATE
:held;

-- the setting is off by default, and other drops are not concerned
SHOW vote_guard.allow_drop;
CREATE SCHEMA regress_other_schema;
DROP SCHEMA regress_other_schema;
DROP SCHEMA IF EXISTS regress_no_such_schema;
DROP EXTENSION IF EXISTS regress_no_such_extension;

-- SET LOCAL outside a transaction block has no effect: still refused
SET LOCAL vote_guard.allow_drop = on;
DROP EXTENSION vote_guard CASCADE;
\echo :SQLSTATE

-- confirmed for one transaction that then rolls back: nothing is lost
BEGIN;
SET LOCAL vote_guard.allow_drop = on;
DROP EXTENSION vote_guard CASCADE;
ROLLBACK;
:held;
SHOW vote_guard.allow_drop;

-- the confirmation lasts one transaction only
BEGIN;
SET LOCAL vote_guard.allow_drop = on;
COMMIT;
DROP SCHEMA vote_guard CASCADE;
\echo :SQLSTATE

-- confirmed and committed: gone
BEGIN;
SET LOCAL vote_guard.allow_drop = on;
SET client_min_messages = warning;
DROP EXTENSION vote_guard CASCADE;
RESET client_min_messages;
COMMIT;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'vote_guard';

-- an extension without contests drops freely, even with rotated secrets
CREATE EXTENSION vote_guard;
SELECT vote_guard.rotate_secrets();
DROP EXTENSION vote_guard;
CREATE EXTENSION vote_guard;
DROP SCHEMA vote_guard CASCADE;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'vote_guard';

--
-- installed by another superuser: the whole message; DROP OWNED BY that
-- role is refused too
--
\set VERBOSITY default
CREATE ROLE regress_vg_drop_owner SUPERUSER;
SET ROLE regress_vg_drop_owner;
CREATE EXTENSION vote_guard;
SELECT vote_guard.create_contest('drop guard') AS c \gset
SELECT vote_guard.add_entry(:c, 1);
SELECT error_code FROM vote_guard.cast_vote(:c, 1, '192.0.2.1')
UNION ALL
SELECT error_code FROM vote_guard.cast_vote(:c, 1, '192.0.2.2');
RESET ROLE;
DROP EXTENSION vote_guard;
DROP SCHEMA vote_guard CASCADE;
DROP OWNED BY regress_vg_drop_owner;
-- a role that does not own it meets PostgreSQL's own refusal, no counts
CREATE ROLE regress_vg_drop_other;
SET ROLE regress_vg_drop_other;
DROP EXTENSION vote_guard;
DROP SCHEMA vote_guard CASCADE;
RESET ROLE;
DROP ROLE regress_vg_drop_other;
BEGIN;
SET LOCAL vote_guard.allow_drop = on;
DROP OWNED BY regress_vg_drop_owner;
COMMIT;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'vote_guard';
DROP ROLE regress_vg_drop_owner;

-- installed again for whatever runs next
CREATE EXTENSION vote_guard;
