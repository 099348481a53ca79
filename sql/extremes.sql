--
-- extremes: arguments at the edges of their types.
--
-- dedupe_on must be a one-dimensional array.  Times: opens_at and closes_at
-- are finite; the window numbers a contest can use fit in window_no (int4):
-- create_contest refuses the rest with 22023 and the table's CHECKs refuse
-- the owner's direct writes of it (23514); an open-ended contest whose window
-- numbers have run out answers contest_closed; retry_at is a valid time or
-- null.  The policy trigger refuses a vote row with an infinite created_at or
-- one outside the window numbers.
--
-- Runs after policies in the same database; its contests are named
-- 'extremes ...'.  Times that depend on now() are created and used in one
-- statement (now() is then the statement's start, what cast_vote uses), or
-- printed only relative to opens_at.
--
\set VERBOSITY terse
\set SHOW_CONTEXT never
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
SET intervalstyle = 'postgres';
\set R 'success, error_code, http_status, vote_count, vote_id IS NOT NULL AS has_vote_id, retry_at IS NOT NULL AS has_retry_at, replayed'

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS regress_ext CASCADE;
RESET client_min_messages;
CREATE SCHEMA regress_ext;

-- runs a statement: 'ok', or its SQLSTATE and message (ids and times masked)
CREATE FUNCTION regress_ext.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' ||
           regexp_replace(regexp_replace(SQLERRM, '(contest|row) \d+', '\1 N', 'g'),
                          '\(\d{4}-\d\d-\d\d [0-9:.+]+\)', '(T)', 'g');
END
$$;

-- in one statement: a contest opened `ago` before now with vote_window `w`
-- (and limits), its entry 1, and two votes of one user, with retry_at
-- relative to now
CREATE FUNCTION regress_ext.two_votes(ago interval, w interval,
                                      cd interval DEFAULT NULL,
                                      direct boolean DEFAULT false)
RETURNS TABLE (vote int, error_code text, http_status int, has_vote_id boolean,
               retry_after_now interval, window_no int)
LANGUAGE plpgsql AS $$
DECLARE
    c bigint;
BEGIN
    IF direct THEN
        INSERT INTO vote_guard.contests (name, opens_at, vote_window, cooldown,
                                         dedupe_on, secret_version)
        VALUES ('extremes direct', now() - ago, w, cd, '{user}', 1)
        RETURNING id INTO c;
    ELSE
        c := vote_guard.create_contest('extremes two votes', opens_at => now() - ago,
                                       vote_window => w, cooldown => cd,
                                       dedupe_on => '{user}');
    END IF;
    PERFORM vote_guard.add_entry(c, 1);
    FOR i IN 1 .. 2 LOOP
        RETURN QUERY
            SELECT i, r.error_code, r.http_status, r.vote_id IS NOT NULL,
                   r.retry_at - now(), NULL::int
              FROM vote_guard.cast_vote(c, 1, NULL, 'extreme-user', NULL, 'req-' || i) r;
    END LOOP;
    -- and a replay of the first request, with the first vote's window
    RETURN QUERY
        SELECT 3, r.error_code || CASE WHEN r.replayed THEN ' (replayed)' ELSE '' END,
               r.http_status, r.vote_id IS NOT NULL, r.retry_at - now(),
               (SELECT v.window_no FROM vote_guard.votes v
                 WHERE v.contest_id = c AND v.vote_id = r.vote_id)
          FROM vote_guard.cast_vote(c, 1, NULL, 'extreme-user', NULL, 'req-1') r;
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


--------------------------------------------------------------------------
-- opens_at and closes_at are finite
--------------------------------------------------------------------------
SELECT a AS arguments,
       regress_ext.try('SELECT vote_guard.create_contest(''extremes bad'', ' || a || ')') AS result
  FROM unnest(ARRAY[
    'opens_at => ''-infinity''',
    'opens_at => ''infinity''',
    'closes_at => ''infinity''',
    'opens_at => ''-infinity'', closes_at => ''2030-01-01 00:00:00+00''',
    'opens_at => ''-infinity'', vote_window => ''1 day''',
    'opens_at => ''-infinity'', vote_window => ''100 years''',
    'opens_at => ''-infinity'', cooldown => ''1 day'''
  ]) AS a;

-- the owner's direct writes: the table's CHECKs say the same
SELECT vote_guard.create_contest('extremes finite') AS cf \gset
SELECT w AS write, regress_ext.try(s) AS result
  FROM (VALUES
    ('insert opens_at -infinity', $$INSERT INTO vote_guard.contests (name, opens_at, secret_version)
                                   VALUES ('extremes bad', '-infinity', 1)$$),
    ('insert closes_at infinity', $$INSERT INTO vote_guard.contests (name, closes_at, secret_version)
                                   VALUES ('extremes bad', 'infinity', 1)$$),
    ('update closes_at infinity',
     format($$UPDATE vote_guard.contests SET closes_at = 'infinity' WHERE id = %s$$, :cf)),
    ('update opens_at -infinity',
     format($$UPDATE vote_guard.contests SET opens_at = '-infinity' WHERE id = %s$$, :cf))
  ) AS t (w, s);

--------------------------------------------------------------------------
-- window numbers must fit in window_no (int4: windows 0 .. 2147483647)
--------------------------------------------------------------------------
-- the issue's case: opened 80 years ago with 1-second windows, the current
-- window number would be about 2.5e9
SELECT regress_ext.try($$SELECT vote_guard.create_contest('extremes bad',
           opens_at => now() - interval '80 years', vote_window => '1 second')$$) AS eighty_years;
-- window 2147483648 is current: refused; 2147483647: accepted (below)
SELECT regress_ext.try($$SELECT vote_guard.create_contest('extremes bad',
           opens_at => now() - interval '2147483648 seconds', vote_window => '1 second')$$)
       AS window_2147483648;
-- a closes_at after the end of window 2147483647 is refused; at it, accepted
SELECT regress_ext.try($$SELECT vote_guard.create_contest('extremes bad',
           opens_at => '2000-01-01 00:00:00+00',
           closes_at => timestamptz '2000-01-01 00:00:00+00' + interval '2147483648 seconds'
                        + interval '1 microsecond',
           vote_window => '1 second')$$) AS closes_after_last_window;
SELECT vote_guard.create_contest('extremes last window',
           opens_at => '2000-01-01 00:00:00+00',
           closes_at => timestamptz '2000-01-01 00:00:00+00' + interval '2147483648 seconds',
           vote_window => '1 second') AS clw \gset
SELECT closes_at FROM vote_guard.contests WHERE id = :clw;
-- the owner's direct writes of such a closes_at are refused too
SELECT w AS write, regress_ext.try(s) AS result
  FROM (VALUES
    ('insert closes_at 2100', $$INSERT INTO vote_guard.contests (name, opens_at, closes_at,
                                                                vote_window, secret_version)
                               VALUES ('extremes bad', '2000-01-01 00:00:00+00',
                                       '2100-01-01 00:00:00+00', '1 second', 1)$$),
    ('update closes_at + 1 us',
     format($$UPDATE vote_guard.contests SET closes_at = closes_at + interval '1 microsecond'
              WHERE id = %s$$, :clw))
  ) AS t (w, s);
-- 100-year windows from the first representable time: window 68 now
SELECT vote_guard.create_contest('extremes old', opens_at => '4714-11-24 00:00:00+00 BC',
           vote_window => '100 years') AS cold \gset
SELECT vote_guard.add_entry(:cold, 1);
SELECT :R FROM vote_guard.cast_vote(:cold, 1, NULL, 'old-user');
SELECT error_code, retry_at - (SELECT opens_at FROM vote_guard.contests WHERE id = :cold)
                   = (SELECT (window_no + 1) * interval '36000 days'
                        FROM vote_guard.votes WHERE contest_id = :cold) AS retry_at_next_window
  FROM vote_guard.cast_vote(:cold, 1, NULL, 'old-user');
SELECT window_no FROM vote_guard.votes WHERE contest_id = :cold;
-- windows written with months, days and hours far apart (1 day; about 20 hours):
-- their length is computed as interval comparison computes it, without
-- overflow
SELECT * FROM regress_ext.two_votes(interval '36 hours',
                                    '6000000 years -2147483648 days -300392424 hours');
SELECT * FROM regress_ext.two_votes(interval '100 seconds',
                                    '106751992 days -2562047788:00:54.775807');
SELECT interval '106751992 days -2562047788:00:54.775807' = interval '71945.224193 seconds'
       AS about_twenty_hours;

--------------------------------------------------------------------------
-- the last window of an open-ended contest, and after it
--------------------------------------------------------------------------
-- window 2147483647: a vote, then limit_reached without retry_at (the
-- contest ends with this window)
SELECT * FROM regress_ext.two_votes(interval '2147483647.5 seconds', '1 second');
-- window numbers already used up (the owner's direct INSERT; create_contest
-- refuses such a contest): contest_closed, never an error
SELECT * FROM regress_ext.two_votes(interval '2147483648 seconds', '1 second', direct => true);
SELECT * FROM regress_ext.two_votes(interval '5000 years', '1 second', direct => true);

--------------------------------------------------------------------------
-- retry_at at the longest windows and cooldowns: a valid time
--------------------------------------------------------------------------
SELECT * FROM regress_ext.two_votes(interval '1 hour', '100 years');
SELECT * FROM regress_ext.two_votes(interval '1 hour', NULL, '100 years');
SELECT * FROM regress_ext.two_votes(interval '1 hour', '100 years', '100 years');

--------------------------------------------------------------------------
-- the policy trigger: a vote row's created_at is finite and its window
-- number fits
--------------------------------------------------------------------------
SELECT vote_guard.create_contest('extremes trigger', opens_at => '2000-01-01 00:00:00+00',
           vote_window => '1 second', dedupe_on => '{user}') AS ct \gset
SELECT vote_guard.create_contest('extremes trigger cooldown', dedupe_on => '{user}',
           opens_at => '2000-01-01 00:00:00+00', cooldown => '100 years') AS ctc \gset
SELECT vote_guard.add_entry(:ct, 1);
SELECT vote_guard.add_entry(:ctc, 1);
SELECT CASE c WHEN :ct THEN 'windows' ELSE 'cooldown' END AS contest, t AS created_at,
       regress_ext.try(format($$INSERT INTO vote_guard.votes (contest_id, entry_id, user_id, created_at)
                                VALUES (%s, 1, %L, %L)$$, c, 'trigger-' || t, t)) AS result
  FROM unnest(ARRAY[:ct, :ctc]) AS c,
       unnest(ARRAY['infinity', '-infinity', '294276-12-31 23:59:59+00',
                    '4714-11-24 00:00:00+00 BC', '2068-01-19 03:14:07+00',
                    '2068-01-19 03:14:08+00', '1931-12-13 20:45:52+00',
                    '1931-12-13 20:45:51+00']::timestamptz[]) AS t
 ORDER BY c = :ctc, t;
SELECT window_no, created_at FROM vote_guard.votes WHERE contest_id = :ct ORDER BY window_no;
SELECT count(*) AS cooldown_rows FROM vote_guard.votes WHERE contest_id = :ctc;

--------------------------------------------------------------------------
-- e-mail normalisation is a fixed point: an address whose local part is no
-- local part without its +tag is malformed (found by the libFuzzer harness,
-- test/fuzz/libfuzzer)
--------------------------------------------------------------------------
SELECT e AS email, vote_guard.normalize_email(e) AS normalized,
       vote_guard.normalize_email(vote_guard.normalize_email(e)) AS again
  FROM unnest(ARRAY['rDr.+/Ma0@r.g', 'a.+tag@example.com', 'a.b+tag@example.com',
                    'a.+tag@gmail.com', 'A.b.+x@GoogleMail.com', '+tag@example.com']) AS e;

-- the widest span in the shortest window: a number beyond 64 bits is null,
-- not a wrapped one (UBSan found the overflow)
SELECT vote_guard.window_number('4714-11-24 00:00:00+00 BC', '1 microsecond',
                                '294276-12-31 23:59:59.999999+00') IS NULL AS too_many_windows;
SELECT vote_guard.window_number('2000-01-01 00:00:00+00', '1 microsecond',
                                '2000-01-01 00:00:01+00') AS one_second_of_microseconds;
