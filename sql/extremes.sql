--
-- extremes: arguments at the edges of their types.
--
-- dedupe_on must be a one-dimensional array.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS regress_ext CASCADE;
RESET client_min_messages;
CREATE SCHEMA regress_ext;

-- runs a statement: 'ok', or its SQLSTATE and message (ids masked)
CREATE FUNCTION regress_ext.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, '(contest|row) \d+', '\1 N', 'g');
END
$$;

--------------------------------------------------------------------------
-- dedupe_on: a multidimensional array is a bad argument (22023), and the
-- table refuses one too
--------------------------------------------------------------------------
SELECT vote_guard.create_contest('extremes bad', dedupe_on => '{{ip},{user}}');
\echo :SQLSTATE
SELECT vote_guard.create_contest('extremes bad', dedupe_on => '{{ip,user},{email,ip}}');
\echo :SQLSTATE
SELECT vote_guard.create_contest('extremes bad', dedupe_on => '{{{user}}}');
\echo :SQLSTATE
SELECT regress_ext.try($$INSERT INTO vote_guard.contests (name, dedupe_on, secret_version)
                          VALUES ('extremes bad', '{{ip},{user}}', 1)$$) AS direct_insert;
-- a lower bound other than 1 is still a list
SELECT vote_guard.create_contest('extremes bounds', dedupe_on => '[0:1]={user,ip}') AS cb \gset
SELECT dedupe_on FROM vote_guard.contests WHERE id = :cb;

