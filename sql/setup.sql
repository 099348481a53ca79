--
-- setup: install vote_guard in the regression database and check what it
-- creates.  The other files of the suite assume this ran first.
--
CREATE EXTENSION vote_guard;

SELECT e.extname, e.extversion, e.extrelocatable, n.nspname AS schema
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'vote_guard';

-- every member object of the extension
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS member
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vote_guard')
   AND d.deptype = 'e'
   -- not the row types of its tables nor array types (members since 17)
   AND NOT (d.classid = 'pg_type'::regclass
            AND EXISTS (SELECT 1 FROM pg_depend i
                         WHERE i.classid = 'pg_type'::regclass
                           AND i.objid = d.objid AND i.deptype = 'i'))
 ORDER BY 1;

-- the result type of cast_vote, column by column (fixed by the contract)
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_attribute a
 WHERE a.attrelid = 'vote_guard.vote_result'::regclass AND a.attnum > 0
 ORDER BY a.attnum;

-- the public signatures of the contract, with their defaults
\x on
SELECT p.oid::regprocedure AS function,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result
  FROM pg_proc p
 WHERE p.pronamespace = 'vote_guard'::regnamespace
   AND p.proname IN ('cast_vote', 'hmac_sha256', 'normalize_email', 'ip_key',
                     'email_key', 'create_contest', 'add_entry',
                     'close_contest', 'results', 'verify', 'rotate_secrets')
 ORDER BY p.proname;
\x off

-- one secret version was generated: two different 32-byte secrets
SELECT version, octet_length(ip_secret) AS ip_len,
       octet_length(email_secret) AS email_len,
       ip_secret <> email_secret AS independent
  FROM vote_guard.secrets;

-- the tables pg_dump keeps the data of (counters are rebuilt from votes)
SELECT c::regclass AS dumped
  FROM pg_extension e, unnest(e.extconfig) AS c
 WHERE e.extname = 'vote_guard'
 ORDER BY c::regclass::text;

-- a fresh install has no contest, entry, vote or counter
SELECT (SELECT count(*) FROM vote_guard.contests) AS contests,
       (SELECT count(*) FROM vote_guard.entries) AS entries,
       (SELECT count(*) FROM vote_guard.votes) AS votes,
       (SELECT count(*) FROM vote_guard.counters) AS counters;
