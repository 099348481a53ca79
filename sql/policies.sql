--
-- policies: votes_per_voter, per_entry_limit, vote_window, cooldown,
-- require_user, change_vote and retract_vote, the policy trigger on the
-- owner's direct writes, the contest settings that are fixed, and the
-- validation of create_contest's policy arguments.
--
-- Runs after the other suites in the same database: it creates its own
-- contests (named 'policies ...') and role, and never prints an id, a key
-- or a timestamp.  Times are checked exactly against opens_at, created_at
-- and now() (one statement: now() = the statement's start, what cast_vote
-- uses), always with intervals in hours, because a vote window's day is
-- 24 hours and a month 30 days whatever the session's TimeZone (pg_regress
-- runs in PST8PDT, which has DST).
--
\set VERBOSITY terse
\set SHOW_CONTEXT never
-- the columns of vote_result; vote_id and retry_at reduced to "present"
\set R 'success, error_code, http_status, vote_count, vote_id IS NOT NULL AS has_vote_id, retry_at IS NOT NULL AS has_retry_at, replayed'

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS regress_pol CASCADE;
DROP ROLE IF EXISTS regress_vg_policy_voter;
RESET client_min_messages;
CREATE SCHEMA regress_pol;
CREATE ROLE regress_vg_policy_voter NOLOGIN;
-- (the voter role may use the helpers, not vote_guard's tables)
GRANT USAGE ON SCHEMA regress_pol TO regress_vg_policy_voter;

-- runs a statement: 'ok', or its SQLSTATE and message (contest ids masked)
CREATE FUNCTION regress_pol.try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE stmt;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'contest \d+', 'contest N');
END
$$;

-- the owner's direct INSERT of a vote, as try() reports it
CREATE FUNCTION regress_pol.ins(c bigint, e bigint, uid text DEFAULT NULL,
                                ip inet DEFAULT NULL, mail text DEFAULT NULL,
                                at timestamptz DEFAULT statement_timestamp())
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vote_guard.votes (contest_id, entry_id, user_id, ip_key, email_key, created_at)
    VALUES (c, e, uid,
            CASE WHEN ip IS NOT NULL THEN vote_guard.ip_key(c, ip) END,
            CASE WHEN mail IS NOT NULL THEN vote_guard.email_key(c, mail) END,
            at);
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM, 'contest \d+', 'contest N');
END
$$;

CREATE FUNCTION regress_pol.opens(c bigint) RETURNS timestamptz
LANGUAGE sql STABLE AS $$ SELECT opens_at FROM vote_guard.contests WHERE id = c $$;

-- a contest with entries 1 .. n
CREATE FUNCTION regress_pol.entries(c bigint, n int) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. n LOOP
        PERFORM vote_guard.add_entry(c, i, 'entry ' || i);
    END LOOP;
    RETURN c;
END
$$;

-- counts against vote rows: entries, votes, and the largest drift (must be 0)
CREATE FUNCTION regress_pol.drift(c bigint)
RETURNS TABLE (entries bigint, votes numeric, max_drift bigint)
LANGUAGE sql AS $$
    SELECT count(*), sum(actual), max(abs(drift)) FROM vote_guard.verify(c)
$$;

-- per entry: the count results() reports and the vote rows behind it
CREATE FUNCTION regress_pol.counts(c bigint)
RETURNS TABLE (entry_id bigint, votes bigint, actual bigint)
LANGUAGE sql AS $$
    SELECT r.entry_id, r.votes, v.actual
      FROM vote_guard.results(c) r JOIN vote_guard.verify(c) v USING (entry_id)
     ORDER BY r.entry_id
$$;

--------------------------------------------------------------------------
-- the new signatures and the defaults of the policy columns
--------------------------------------------------------------------------
SELECT p.proname, pg_get_function_arguments(p.oid) AS arguments
  FROM pg_proc p
 WHERE p.pronamespace = 'vote_guard'::regnamespace
   AND p.proname IN ('create_contest', 'change_vote', 'retract_vote')
 ORDER BY 1;

SELECT regress_pol.entries(vote_guard.create_contest('policies defaults'), 2) AS c0 \gset
SELECT votes_per_voter, per_entry_limit, vote_window, cooldown, allow_change, require_user
  FROM vote_guard.contests WHERE id = :c0;

--------------------------------------------------------------------------
-- create_contest: the new arguments are validated (22023) ...
--------------------------------------------------------------------------
SELECT a AS arguments,
       regress_pol.try('SELECT vote_guard.create_contest(''policies invalid'', ' || a || ')') AS result
  FROM unnest(ARRAY[
    'votes_per_voter => 0',
    'votes_per_voter => 1001',
    'votes_per_voter => NULL',
    'per_entry_limit => 0',
    'per_entry_limit => NULL',
    'votes_per_voter => 3, per_entry_limit => 4',
    'per_entry_limit => 2',
    'vote_window => ''0''',
    'vote_window => ''-1 day''',
    'vote_window => ''999 milliseconds''',
    'vote_window => ''100 years 1 second''',
    'cooldown => ''0''',
    'cooldown => ''-1 hour''',
    'cooldown => ''100 years 1 second''',
    'allow_change => true, dedupe_on => ''{ip,email}''',
    'allow_change => NULL'
  ]) AS a;

-- ... and their bounds are accepted
SELECT a AS arguments,
       regress_pol.try('SELECT vote_guard.create_contest(''policies bounds'', ' || a || ')') AS result
  FROM unnest(ARRAY[
    'votes_per_voter => 1000, per_entry_limit => 1000',
    'votes_per_voter => 1000, per_entry_limit => 1',
    'vote_window => ''1 second''',
    'vote_window => ''100 years''',
    'cooldown => ''1 microsecond''',
    'cooldown => ''100 years''',
    'allow_change => true, dedupe_on => ''{user}''',
    'allow_change => true, dedupe_on => ''{ip,user,email}'''
  ]) AS a;

SELECT count(*) AS stored_bounds_contests
  FROM vote_guard.contests WHERE name = 'policies bounds';
SELECT count(*) AS stored_invalid_contests
  FROM vote_guard.contests WHERE name = 'policies invalid';

--------------------------------------------------------------------------
-- votes_per_voter = 3 (per_entry_limit 3, no window): the 3rd vote of a
-- vector is ok, the 4th limit_reached (429, no retry_at: the limit never
-- resets); every vector counts on its own
--------------------------------------------------------------------------
SELECT regress_pol.entries(vote_guard.create_contest('policies n3',
           votes_per_voter => 3, per_entry_limit => 3), 4) AS n3 \gset

-- the same user from four addresses: the user's 4th vote is refused
SELECT :R FROM vote_guard.cast_vote(:n3, 1, '192.0.2.1', 'n3-user');
SELECT :R FROM vote_guard.cast_vote(:n3, 1, '192.0.2.2', 'n3-user');
SELECT :R FROM vote_guard.cast_vote(:n3, 2, '192.0.2.3', 'n3-user');
SELECT :R FROM vote_guard.cast_vote(:n3, 3, '192.0.2.4', 'n3-user');
-- (the 4th address was not used up by the refused call)
SELECT :R FROM vote_guard.cast_vote(:n3, 3, '192.0.2.4', 'n3-other');

-- the same address for four users: the address's 4th vote is refused
SELECT :R FROM vote_guard.cast_vote(:n3, 1, '198.51.100.7', 'n3-a');
SELECT :R FROM vote_guard.cast_vote(:n3, 2, '198.51.100.7', 'n3-b');
SELECT :R FROM vote_guard.cast_vote(:n3, 3, '198.51.100.7', 'n3-c');
SELECT :R FROM vote_guard.cast_vote(:n3, 4, '198.51.100.7', 'n3-d');
-- the refused user may vote from another address
SELECT :R FROM vote_guard.cast_vote(:n3, 4, '198.51.100.8', 'n3-d');

-- the same mailbox (after normalisation) with other addresses and users
SELECT :R FROM vote_guard.cast_vote(:n3, 1, '203.0.113.1', 'n3-e1', 'voter@example.com');
SELECT :R FROM vote_guard.cast_vote(:n3, 1, '203.0.113.2', 'n3-e2', 'Voter+two@Example.COM');
SELECT :R FROM vote_guard.cast_vote(:n3, 1, '203.0.113.3', 'n3-e3', ' voter+three@example.com');
SELECT :R FROM vote_guard.cast_vote(:n3, 2, '203.0.113.4', 'n3-e4', 'VOTER@example.com');

-- the slots: a vector's votes take slots 1, 2, 3; other vectors stay at 1
SELECT window_no, user_slot, ip_slot, email_slot
  FROM vote_guard.votes WHERE contest_id = :n3 AND user_id = 'n3-user'
 ORDER BY user_slot;
SELECT user_id, window_no, ip_slot, user_slot
  FROM vote_guard.votes
 WHERE contest_id = :n3 AND ip_key = vote_guard.ip_key(:n3, '198.51.100.7')
 ORDER BY ip_slot;
SELECT user_id, email_slot, ip_slot, user_slot
  FROM vote_guard.votes
 WHERE contest_id = :n3 AND email_key = vote_guard.email_key(:n3, 'voter@example.com')
 ORDER BY email_slot;

SELECT * FROM regress_pol.counts(:n3);
SELECT * FROM regress_pol.drift(:n3);

--------------------------------------------------------------------------
-- per_entry_limit: approval voting (3 votes, at most 1 per entry) ...
--------------------------------------------------------------------------
SELECT regress_pol.entries(vote_guard.create_contest('policies approval', dedupe_on => '{ip,user}',
           votes_per_voter => 3, per_entry_limit => 1), 4) AS ap \gset

SELECT :R FROM vote_guard.cast_vote(:ap, 1, '192.0.2.10', 'ap-1');
-- the same entry again: limit_reached, no retry_at (no window)
SELECT :R FROM vote_guard.cast_vote(:ap, 1, '192.0.2.10', 'ap-1');
SELECT :R FROM vote_guard.cast_vote(:ap, 2, '192.0.2.10', 'ap-1');
SELECT :R FROM vote_guard.cast_vote(:ap, 3, '192.0.2.10', 'ap-1');
-- a 4th entry: the 3 votes are used up
SELECT :R FROM vote_guard.cast_vote(:ap, 4, '192.0.2.10', 'ap-1');
-- the per-entry limit of the address: another user, same address, same entry
SELECT :R FROM vote_guard.cast_vote(:ap, 1, '192.0.2.20', 'ap-2');
SELECT :R FROM vote_guard.cast_vote(:ap, 1, '192.0.2.20', 'ap-3');
SELECT :R FROM vote_guard.cast_vote(:ap, 2, '192.0.2.20', 'ap-3');
-- ... and of the user, from another address
SELECT :R FROM vote_guard.cast_vote(:ap, 2, '192.0.2.21', 'ap-3');

SELECT * FROM regress_pol.counts(:ap);
SELECT * FROM regress_pol.drift(:ap);

-- ... and 3 votes, at most 2 per entry
SELECT regress_pol.entries(vote_guard.create_contest('policies m2', dedupe_on => '{user}',
           votes_per_voter => 3, per_entry_limit => 2), 3) AS m2 \gset

SELECT :R FROM vote_guard.cast_vote(:m2, 1, NULL, 'm2-user');
SELECT :R FROM vote_guard.cast_vote(:m2, 1, NULL, 'm2-user');
-- the 3rd vote for one entry
SELECT :R FROM vote_guard.cast_vote(:m2, 1, NULL, 'm2-user');
SELECT :R FROM vote_guard.cast_vote(:m2, 2, NULL, 'm2-user');
-- all 3 votes used
SELECT :R FROM vote_guard.cast_vote(:m2, 3, NULL, 'm2-user');
SELECT :R FROM vote_guard.cast_vote(:m2, 2, NULL, 'm2-user');

SELECT * FROM regress_pol.counts(:m2);
SELECT * FROM regress_pol.drift(:m2);

--------------------------------------------------------------------------
-- one vote per voter: without a window the codes are duplicate_* (409,
-- first of ip, user, email); with a window limit_reached (429, retry_at =
-- the next window's start); a cooldown does not change the duplicate codes
--------------------------------------------------------------------------
SELECT regress_pol.entries(vote_guard.create_contest('policies single'), 2) AS s1 \gset
SELECT :R FROM vote_guard.cast_vote(:s1, 1, '192.0.2.30', 'single', 'single@example.com');
SELECT :R FROM vote_guard.cast_vote(:s1, 2, '192.0.2.30', 'single-x', 'x@example.com');
SELECT :R FROM vote_guard.cast_vote(:s1, 2, '192.0.2.31', 'single', 'x@example.com');
SELECT :R FROM vote_guard.cast_vote(:s1, 2, '192.0.2.31', 'single-x', 'single@example.com');
SELECT :R FROM vote_guard.cast_vote(:s1, 2, '192.0.2.30', 'single', 'single@example.com');

-- a daily window that opened 36 hours ago: we are in window 1
SELECT regress_pol.entries(vote_guard.create_contest('policies single daily',
           opens_at => now() - interval '36 hours', vote_window => '1 day'), 2) AS sd \gset
SELECT :R FROM vote_guard.cast_vote(:sd, 1, '192.0.2.30', 'single', 'single@example.com');
SELECT error_code, http_status, vote_count,
       retry_at = regress_pol.opens(:sd) + interval '48 hours' AS retry_at_next_window
  FROM vote_guard.cast_vote(:sd, 2, '192.0.2.30', 'single-x', 'x@example.com')
UNION ALL
SELECT error_code, http_status, vote_count,
       retry_at = regress_pol.opens(:sd) + interval '48 hours'
  FROM vote_guard.cast_vote(:sd, 2, '192.0.2.31', 'single', 'x@example.com')
UNION ALL
SELECT error_code, http_status, vote_count,
       retry_at = regress_pol.opens(:sd) + interval '48 hours'
  FROM vote_guard.cast_vote(:sd, 1, '192.0.2.31', 'single-x', 'single@example.com');
SELECT window_no, ip_slot, user_slot, email_slot FROM vote_guard.votes WHERE contest_id = :sd;

-- one vote and a cooldown, no window: still duplicate_*, no retry_at
SELECT regress_pol.entries(vote_guard.create_contest('policies single cooldown',
           dedupe_on => '{user}', cooldown => '1 hour'), 2) AS sc \gset
SELECT :R FROM vote_guard.cast_vote(:sc, 1, NULL, 'single');
SELECT :R FROM vote_guard.cast_vote(:sc, 2, NULL, 'single');

SELECT * FROM regress_pol.drift(:s1)
UNION ALL SELECT * FROM regress_pol.drift(:sd)
UNION ALL SELECT * FROM regress_pol.drift(:sc);

--------------------------------------------------------------------------
-- vote windows: fixed windows from opens_at; the previous window's votes
-- (owner INSERTs with an earlier created_at) do not count in this one
--------------------------------------------------------------------------
SELECT regress_pol.entries(vote_guard.create_contest('policies daily', dedupe_on => '{ip,user}',
           opens_at => now() - interval '36 hours', vote_window => '1 day',
           votes_per_voter => 2, per_entry_limit => 1), 3) AS d \gset

-- yesterday (window 0): two votes, a third is refused by the trigger
SELECT regress_pol.ins(:d, 1, 'day-user', at => regress_pol.opens(:d) + interval '1 hour');
SELECT regress_pol.ins(:d, 2, 'day-user', at => regress_pol.opens(:d) + interval '2 hours');
SELECT regress_pol.ins(:d, 3, 'day-user', at => regress_pol.opens(:d) + interval '3 hours');
-- today (window 1): two new votes
SELECT :R FROM vote_guard.cast_vote(:d, 1, '192.0.2.40', 'day-user');
-- (the same entry twice in one window: per_entry_limit, retry tomorrow)
SELECT error_code, http_status, vote_count,
       retry_at = regress_pol.opens(:d) + interval '48 hours' AS retry_at_next_window
  FROM vote_guard.cast_vote(:d, 1, '192.0.2.40', 'day-user');
SELECT :R FROM vote_guard.cast_vote(:d, 2, '192.0.2.41', 'day-user');
-- the third vote today: limit_reached until the next window
SELECT error_code, http_status, vote_count,
       retry_at = regress_pol.opens(:d) + interval '48 hours' AS retry_at_next_window
  FROM vote_guard.cast_vote(:d, 3, '192.0.2.42', 'day-user');
-- nor may the owner add one today
SELECT regress_pol.ins(:d, 3, 'day-user', at => regress_pol.opens(:d) + interval '25 hours');
SELECT window_no, entry_id, user_slot, ip_key IS NOT NULL AS has_ip
  FROM vote_guard.votes WHERE contest_id = :d AND user_id = 'day-user'
 ORDER BY window_no, user_slot;

-- window numbers at the boundaries (floor before opens_at)
SELECT regress_pol.ins(:d, 1, 'day-edge', at => regress_pol.opens(:d) - interval '1 microsecond');
SELECT regress_pol.ins(:d, 1, 'day-edge', at => regress_pol.opens(:d));
SELECT regress_pol.ins(:d, 2, 'day-edge', at => regress_pol.opens(:d) + interval '24 hours' - interval '1 microsecond');
SELECT regress_pol.ins(:d, 1, 'day-edge', at => regress_pol.opens(:d) + interval '24 hours');
SELECT created_at - regress_pol.opens(:d) AS after_opens_at, window_no, entry_id, user_slot
  FROM vote_guard.votes WHERE contest_id = :d AND user_id = 'day-edge'
 ORDER BY created_at;

SELECT * FROM regress_pol.counts(:d);
SELECT * FROM regress_pol.drift(:d);

-- a month is 30 days: opened 45 days ago, window 1 ends at day 60
SELECT regress_pol.entries(vote_guard.create_contest('policies monthly', dedupe_on => '{user}',
           opens_at => now() - interval '1080 hours', vote_window => '1 mon'), 1) AS mo \gset
SELECT :R FROM vote_guard.cast_vote(:mo, 1, NULL, 'month-user');
SELECT error_code, retry_at = regress_pol.opens(:mo) + interval '1440 hours' AS retry_at_day_60
  FROM vote_guard.cast_vote(:mo, 1, NULL, 'month-user');
SELECT window_no FROM vote_guard.votes WHERE contest_id = :mo;

-- a day is 24 hours in every TimeZone: windows of a contest that opened the
-- day before a DST change (America/New_York, 2024-03-10) stay 24 hours long
SET TimeZone = 'America/New_York';
SELECT regress_pol.entries(vote_guard.create_contest('policies dst', dedupe_on => '{user}',
           opens_at => '2024-03-09 12:00:00-05', vote_window => '1 day'), 1) AS dst \gset
-- 23 hours after opens_at (noon local time on the next day): still window 0
SELECT regress_pol.ins(:dst, 1, 'dst-a', at => '2024-03-10 12:00:00-04');
-- 24 hours after opens_at: window 1
SELECT regress_pol.ins(:dst, 1, 'dst-b', at => '2024-03-10 13:00:00-04');
SELECT user_id, window_no FROM vote_guard.votes WHERE contest_id = :dst ORDER BY user_id;
SELECT :R FROM vote_guard.cast_vote(:dst, 1, NULL, 'dst-c');
-- retry_at: the end of the current 24-hour window
SELECT error_code,
       retry_at = regress_pol.opens(:dst)
                  + (floor(extract(epoch FROM now() - regress_pol.opens(:dst)) / 86400) + 1)
                    * interval '24 hours' AS retry_at_window_end,
       extract(epoch FROM retry_at - regress_pol.opens(:dst))::numeric % 86400 AS seconds_off_24h
  FROM vote_guard.cast_vote(:dst, 1, NULL, 'dst-c');
RESET TimeZone;

SELECT * FROM regress_pol.drift(:mo) UNION ALL SELECT * FROM regress_pol.drift(:dst);

--------------------------------------------------------------------------
-- cooldown (7 days): a vote of any of the voter's vectors less than 7 days
-- ago refuses the next one, retry_at = that vote's created_at + 7 days
--------------------------------------------------------------------------
SELECT regress_pol.entries(vote_guard.create_contest('policies cooldown', dedupe_on => '{ip,user}',
           votes_per_voter => 10, per_entry_limit => 10, cooldown => '7 days'), 2) AS k \gset

-- a vote 8 days ago: the cooldown is over
SELECT regress_pol.ins(:k, 1, 'cd-old', at => now() - interval '192 hours');
SELECT :R FROM vote_guard.cast_vote(:k, 1, '192.0.2.60', 'cd-old');
-- and it starts again with the vote just cast (the latest vote counts)
SELECT error_code, http_status, vote_count,
       retry_at = (SELECT max(created_at) FROM vote_guard.votes
                    WHERE contest_id = :k AND user_id = 'cd-old') + interval '168 hours' AS retry_at_latest_plus_7d,
       retry_at > now() + interval '167 hours' AS about_7_days_away
  FROM vote_guard.cast_vote(:k, 2, '192.0.2.61', 'cd-old');

-- a vote 6 days ago: cooldown for one more day
SELECT regress_pol.ins(:k, 1, 'cd-recent', at => now() - interval '144 hours');
SELECT error_code, http_status, vote_count,
       retry_at = (SELECT created_at FROM vote_guard.votes
                    WHERE contest_id = :k AND user_id = 'cd-recent') + interval '168 hours' AS retry_at_created_plus_7d
  FROM vote_guard.cast_vote(:k, 2, '192.0.2.62', 'cd-recent');

-- another vector of the voter: a new user on an address that voted
SELECT :R FROM vote_guard.cast_vote(:k, 1, '192.0.2.70', 'cd-ip-a');
SELECT error_code,
       retry_at = (SELECT created_at FROM vote_guard.votes
                    WHERE contest_id = :k AND user_id = 'cd-ip-a') + interval '168 hours' AS retry_at_created_plus_7d
  FROM vote_guard.cast_vote(:k, 2, '192.0.2.70', 'cd-ip-b');
-- the refused calls wrote nothing
SELECT count(*) AS votes_of_refused_users
  FROM vote_guard.votes WHERE contest_id = :k AND user_id IN ('cd-ip-b');

-- the exact boundary, through the owner's INSERTs (the trigger decides at
-- the row's created_at): a vote exactly 7 days before or after another is
-- allowed, 1 microsecond less is not
SELECT regress_pol.ins(:k, 1, 'cd-edge', at => '2020-01-15 00:00:00+00');
SELECT regress_pol.ins(:k, 1, 'cd-edge', at => timestamptz '2020-01-15 00:00:00+00' + interval '168 hours' - interval '1 microsecond');
SELECT regress_pol.ins(:k, 1, 'cd-edge', at => timestamptz '2020-01-15 00:00:00+00' + interval '168 hours');
SELECT regress_pol.ins(:k, 1, 'cd-edge', at => timestamptz '2020-01-15 00:00:00+00' - interval '168 hours' + interval '1 microsecond');
SELECT regress_pol.ins(:k, 1, 'cd-edge', at => timestamptz '2020-01-15 00:00:00+00' - interval '168 hours');
-- and the vectors of a row count too: a new user from an address in cooldown
SELECT regress_pol.ins(:k, 1, 'cd-ip-c', ip => '192.0.2.70');
SELECT (created_at - timestamptz '2020-01-15 00:00:00+00') AS after_t0, user_slot
  FROM vote_guard.votes WHERE contest_id = :k AND user_id = 'cd-edge'
 ORDER BY created_at;

SELECT * FROM regress_pol.counts(:k);
SELECT * FROM regress_pol.drift(:k);

-- the limit without windows beats the cooldown: limit_reached, no retry_at
SELECT regress_pol.entries(vote_guard.create_contest('policies cooldown limit', dedupe_on => '{user}',
           votes_per_voter => 2, per_entry_limit => 2, cooldown => '1 hour'), 1) AS kl \gset
SELECT regress_pol.ins(:kl, 1, 'cl-full', at => now() - interval '4 hours');
SELECT regress_pol.ins(:kl, 1, 'cl-full', at => now() - interval '2 hours');
SELECT :R FROM vote_guard.cast_vote(:kl, 1, NULL, 'cl-full');
SELECT regress_pol.ins(:kl, 1, 'cl-half', at => now() - interval '10 minutes');
SELECT error_code,
       retry_at = (SELECT created_at FROM vote_guard.votes
                    WHERE contest_id = :kl AND user_id = 'cl-half') + interval '1 hour' AS retry_at_created_plus_1h
  FROM vote_guard.cast_vote(:kl, 1, NULL, 'cl-half');
-- both at once, limit and cooldown: limit_reached
SELECT regress_pol.ins(:kl, 1, 'cl-both', at => now() - interval '2 hours');
SELECT regress_pol.ins(:kl, 1, 'cl-both', at => now() - interval '10 minutes');
SELECT :R FROM vote_guard.cast_vote(:kl, 1, NULL, 'cl-both');

-- a window and a cooldown: when both apply the code is limit_reached and
-- retry_at the later of the window's end and the cooldown's end
SELECT regress_pol.entries(vote_guard.create_contest('policies daily cooldown long', dedupe_on => '{user}',
           opens_at => now() - interval '36 hours', vote_window => '1 day',
           cooldown => '36 hours'), 1) AS dcl \gset
SELECT :R FROM vote_guard.cast_vote(:dcl, 1, NULL, 'dc-user');
SELECT error_code, http_status,
       retry_at = (SELECT created_at FROM vote_guard.votes
                    WHERE contest_id = :dcl AND user_id = 'dc-user') + interval '36 hours' AS retry_at_cooldown_end,
       retry_at > regress_pol.opens(:dcl) + interval '48 hours' AS later_than_window_end
  FROM vote_guard.cast_vote(:dcl, 1, NULL, 'dc-user');

SELECT regress_pol.entries(vote_guard.create_contest('policies daily cooldown short', dedupe_on => '{user}',
           opens_at => now() - interval '36 hours', vote_window => '1 day',
           cooldown => '1 hour'), 1) AS dcs \gset
SELECT :R FROM vote_guard.cast_vote(:dcs, 1, NULL, 'dc-user');
SELECT error_code, http_status,
       retry_at = regress_pol.opens(:dcs) + interval '48 hours' AS retry_at_window_end
  FROM vote_guard.cast_vote(:dcs, 1, NULL, 'dc-user');

-- a window and a cooldown, the limit not reached: cooldown
SELECT regress_pol.entries(vote_guard.create_contest('policies daily cooldown two', dedupe_on => '{user}',
           opens_at => now() - interval '36 hours', vote_window => '1 day',
           votes_per_voter => 2, per_entry_limit => 2, cooldown => '1 hour'), 1) AS dc2 \gset
SELECT :R FROM vote_guard.cast_vote(:dc2, 1, NULL, 'dc-user');
SELECT error_code, http_status,
       retry_at = (SELECT created_at FROM vote_guard.votes
                    WHERE contest_id = :dc2 AND user_id = 'dc-user') + interval '1 hour' AS retry_at_cooldown_end
  FROM vote_guard.cast_vote(:dc2, 1, NULL, 'dc-user');
-- yesterday's vote 30 hours ago is out of the cooldown and of this window
SELECT regress_pol.ins(:dc2, 1, 'dc-other', at => now() - interval '30 hours');
SELECT :R FROM vote_guard.cast_vote(:dc2, 1, NULL, 'dc-other');

SELECT * FROM regress_pol.drift(:kl)
UNION ALL SELECT * FROM regress_pol.drift(:dcl)
UNION ALL SELECT * FROM regress_pol.drift(:dcs)
UNION ALL SELECT * FROM regress_pol.drift(:dc2);

--------------------------------------------------------------------------
-- require_user: login_required (401, no count) without user_id
--------------------------------------------------------------------------
SELECT regress_pol.entries(vote_guard.create_contest('policies login', dedupe_on => '{ip,user}',
           require_user => true, votes_per_voter => 2, per_entry_limit => 1), 2) AS lg \gset
SELECT :R FROM vote_guard.cast_vote(:lg, 1, '192.0.2.50');
SELECT :R FROM vote_guard.cast_vote(:lg, 1, '192.0.2.50', email => 'login@example.com');
SELECT :R FROM vote_guard.cast_vote(:lg, 1, '192.0.2.50', 'login-user');
SELECT * FROM regress_pol.drift(:lg);

--------------------------------------------------------------------------
-- voter locks: a lock-taking policy holds one exclusive advisory lock of
-- class 0x7668 (objsubid 30312) per vector until the end of the transaction;
-- one vote per voter without a cooldown takes none (the index decides)
--------------------------------------------------------------------------
CREATE TEMP VIEW my_locks AS
SELECT objsubid, mode, count(*) AS locks
  FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objsubid IN (30311, 30312)
 GROUP BY objsubid, mode;

BEGIN;
SELECT error_code FROM vote_guard.cast_vote(:n3, 4, '192.0.2.99', 'lock-user', 'lock@example.com');
SELECT * FROM my_locks ORDER BY objsubid;
ROLLBACK;
BEGIN;
SELECT error_code FROM vote_guard.cast_vote(:ap, 4, '192.0.2.99', 'lock-user');
SELECT * FROM my_locks ORDER BY objsubid;
ROLLBACK;
BEGIN;
SELECT error_code FROM vote_guard.cast_vote(:s1, 2, '192.0.2.99', 'lock-user', 'lock@example.com');
SELECT * FROM my_locks ORDER BY objsubid;
ROLLBACK;
-- the owner's INSERT takes the voter's locks too
BEGIN;
SELECT regress_pol.ins(:ap, 4, 'lock-user', '192.0.2.99');
SELECT * FROM my_locks ORDER BY objsubid;
ROLLBACK;
-- a refused call keeps them as well (it decided under them)
BEGIN;
SELECT error_code FROM vote_guard.cast_vote(:ap, 1, '192.0.2.10', 'ap-1');
SELECT * FROM my_locks ORDER BY objsubid;
ROLLBACK;

--------------------------------------------------------------------------
-- change_vote and retract_vote: every code
--------------------------------------------------------------------------
SELECT regress_pol.entries(vote_guard.create_contest('policies change', dedupe_on => '{ip,user}',
           allow_change => true), 3) AS ch \gset
SELECT regress_pol.entries(vote_guard.create_contest('policies no change', dedupe_on => '{ip,user}'), 2) AS nc \gset
SELECT regress_pol.entries(vote_guard.create_contest('policies change later', allow_change => true,
           opens_at => now() + interval '1 hour'), 2) AS cl \gset
SELECT regress_pol.entries(vote_guard.create_contest('policies change over', allow_change => true,
           opens_at => now() - interval '2 hours', closes_at => now() - interval '1 hour'), 2) AS co \gset
SELECT regress_pol.entries(vote_guard.create_contest('policies change closed', allow_change => true), 2) AS cc \gset
SELECT :R FROM vote_guard.cast_vote(:cc, 1, NULL, 'ch-user');
SELECT vote_guard.close_contest(:cc) IS NOT NULL AS closed;
SELECT :R FROM vote_guard.cast_vote(:nc, 1, NULL, 'ch-user');

-- invalid_input: bad arguments (400, no count), before any table is read
SELECT :R FROM vote_guard.change_vote(NULL, 1, 'u');
SELECT :R FROM vote_guard.change_vote(0, 1, 'u');
SELECT :R FROM vote_guard.change_vote(-1, 1, 'u');
SELECT :R FROM vote_guard.change_vote(:ch, NULL, 'u');
SELECT :R FROM vote_guard.change_vote(:ch, 0, 'u');
SELECT :R FROM vote_guard.change_vote(:ch, -2, 'u');
SELECT :R FROM vote_guard.change_vote(:ch, 1, NULL);
SELECT :R FROM vote_guard.change_vote(:ch, 1, '');
SELECT :R FROM vote_guard.change_vote(:ch, 1, repeat('x', 257));
SELECT :R FROM vote_guard.change_vote(:ch, 1, 'u', 0);
SELECT :R FROM vote_guard.change_vote(:ch, 1, 'u', -1);
SELECT :R FROM vote_guard.retract_vote(NULL, 'u');
SELECT :R FROM vote_guard.retract_vote(0, 'u');
SELECT :R FROM vote_guard.retract_vote(:ch, NULL);
SELECT :R FROM vote_guard.retract_vote(:ch, '');
SELECT :R FROM vote_guard.retract_vote(:ch, repeat('x', 257));
SELECT :R FROM vote_guard.retract_vote(:ch, 'u', 0);
SELECT :R FROM vote_guard.retract_vote(:ch, 'u', -3);
-- (256 characters is a valid user_id: it gets as far as vote_not_found)
SELECT :R FROM vote_guard.change_vote(:ch, 1, repeat('x', 256));
SELECT :R FROM vote_guard.retract_vote(:ch, repeat('x', 256));

-- contest_not_found, contest_not_open, contest_closed (both kinds)
SELECT :R FROM vote_guard.change_vote(999999999999, 1, 'ch-user');
SELECT :R FROM vote_guard.retract_vote(999999999999, 'ch-user');
SELECT :R FROM vote_guard.change_vote(:cl, 1, 'ch-user');
SELECT :R FROM vote_guard.retract_vote(:cl, 'ch-user');
SELECT :R FROM vote_guard.change_vote(:co, 1, 'ch-user');
SELECT :R FROM vote_guard.retract_vote(:co, 'ch-user');
SELECT :R FROM vote_guard.change_vote(:cc, 2, 'ch-user');
SELECT :R FROM vote_guard.retract_vote(:cc, 'ch-user');
SELECT * FROM regress_pol.counts(:cc);

-- change_not_allowed (403): the contest does not allow changes (checked
-- before the entry and the vote)
SELECT :R FROM vote_guard.change_vote(:nc, 2, 'ch-user');
SELECT :R FROM vote_guard.change_vote(:nc, 99, 'ch-user');
SELECT :R FROM vote_guard.change_vote(:nc, 2, 'nobody');
SELECT :R FROM vote_guard.retract_vote(:nc, 'ch-user');
SELECT * FROM regress_pol.counts(:nc);

-- entry_not_found (the new entry) and vote_not_found
SELECT :R FROM vote_guard.change_vote(:ch, 99, 'ch-user');
SELECT :R FROM vote_guard.change_vote(:ch, 2, 'ch-user');
SELECT :R FROM vote_guard.retract_vote(:ch, 'ch-user');

-- ok: the vote moves, both counters in one statement; the same vote_id
SELECT vote_id AS ch_vote FROM vote_guard.cast_vote(:ch, 1, '192.0.2.80', 'ch-user') \gset
SELECT * FROM regress_pol.counts(:ch);
SELECT :R, vote_id = :ch_vote AS same_vote FROM vote_guard.change_vote(:ch, 2, 'ch-user');
SELECT * FROM regress_pol.counts(:ch);
-- the wrong old entry: vote_not_found; the right one: ok
SELECT :R FROM vote_guard.change_vote(:ch, 3, 'ch-user', 1);
SELECT :R FROM vote_guard.retract_vote(:ch, 'ch-user', 1);
SELECT :R, vote_id = :ch_vote AS same_vote FROM vote_guard.change_vote(:ch, 3, 'ch-user', 2);
-- the same entry: an ok no-op
SELECT :R, vote_id = :ch_vote AS same_vote FROM vote_guard.change_vote(:ch, 3, 'ch-user');
SELECT * FROM regress_pol.counts(:ch);
-- the moved vote still is the voter's one vote, on every vector
SELECT :R FROM vote_guard.cast_vote(:ch, 1, '192.0.2.81', 'ch-user');
SELECT :R FROM vote_guard.cast_vote(:ch, 1, '192.0.2.80', 'ch-other');
-- (ch-other was refused: it has no vote to change)
SELECT :R FROM vote_guard.change_vote(:ch, 1, 'ch-other');
-- retract: ok, vote_count is the entry's count after, vote_id the removed vote
SELECT :R, vote_id = :ch_vote AS same_vote FROM vote_guard.retract_vote(:ch, 'ch-user');
SELECT * FROM regress_pol.counts(:ch);
SELECT :R FROM vote_guard.retract_vote(:ch, 'ch-user');
SELECT :R FROM vote_guard.change_vote(:ch, 1, 'ch-user');
-- the voter may vote again, on every vector
SELECT :R FROM vote_guard.cast_vote(:ch, 1, '192.0.2.80', 'ch-user');
-- retract with the entry given
SELECT :R FROM vote_guard.retract_vote(:ch, 'ch-user', 1);
SELECT :R FROM vote_guard.cast_vote(:ch, 2, '192.0.2.80', 'ch-user');
-- a vote cast without user_id cannot be changed (it has no user)
SELECT :R FROM vote_guard.cast_vote(:ch, 1, '192.0.2.82');
SELECT * FROM regress_pol.counts(:ch);
SELECT * FROM regress_pol.drift(:ch);

-- several votes in the window: the old entry must be named (invalid_input
-- otherwise); the per-entry limit can refuse a move (limit_reached)
SELECT regress_pol.entries(vote_guard.create_contest('policies change approval', dedupe_on => '{ip,user}',
           votes_per_voter => 3, per_entry_limit => 1, allow_change => true), 4) AS cha \gset
SELECT :R FROM vote_guard.cast_vote(:cha, 1, '192.0.2.90', 'cha-user');
SELECT :R FROM vote_guard.cast_vote(:cha, 2, '192.0.2.90', 'cha-user');
SELECT :R FROM vote_guard.change_vote(:cha, 3, 'cha-user');
SELECT :R FROM vote_guard.retract_vote(:cha, 'cha-user');
-- onto an entry the user already voted for
SELECT :R FROM vote_guard.change_vote(:cha, 2, 'cha-user', 1);
SELECT :R FROM vote_guard.change_vote(:cha, 3, 'cha-user', 1);
SELECT * FROM regress_pol.counts(:cha);
-- onto an entry the vote's address already voted for (another user)
SELECT :R FROM vote_guard.cast_vote(:cha, 4, '192.0.2.90', 'cha-other');
SELECT :R FROM vote_guard.change_vote(:cha, 4, 'cha-user', 3);
-- the same entry is a no-op, not a limit
SELECT :R FROM vote_guard.change_vote(:cha, 3, 'cha-user', 3);
SELECT :R FROM vote_guard.retract_vote(:cha, 'cha-user', 3);
SELECT :R FROM vote_guard.retract_vote(:cha, 'cha-user');
SELECT * FROM regress_pol.counts(:cha);
SELECT * FROM regress_pol.drift(:cha);

-- only the current window's vote can be changed or retracted
SELECT regress_pol.entries(vote_guard.create_contest('policies change daily', dedupe_on => '{user}',
           opens_at => now() - interval '36 hours', vote_window => '1 day', allow_change => true), 2) AS chd \gset
SELECT regress_pol.ins(:chd, 1, 'chd-user', at => regress_pol.opens(:chd) + interval '1 hour');
SELECT :R FROM vote_guard.change_vote(:chd, 2, 'chd-user');
SELECT :R FROM vote_guard.retract_vote(:chd, 'chd-user');
SELECT :R FROM vote_guard.cast_vote(:chd, 1, NULL, 'chd-user');
SELECT :R FROM vote_guard.change_vote(:chd, 2, 'chd-user');
SELECT window_no, entry_id FROM vote_guard.votes WHERE contest_id = :chd ORDER BY window_no;
SELECT * FROM regress_pol.counts(:chd);

-- a move is not a new vote: no cooldown, and the cooldown does not restart;
-- a retracted vote no longer counts for the cooldown
SELECT regress_pol.entries(vote_guard.create_contest('policies change cooldown', dedupe_on => '{user}',
           votes_per_voter => 5, per_entry_limit => 1, cooldown => '7 days',
           allow_change => true), 3) AS chk \gset
SELECT regress_pol.ins(:chk, 1, 'chk-user', at => now() - interval '144 hours');
CREATE TEMP TABLE chk_before AS
SELECT vote_id, created_at FROM vote_guard.votes WHERE contest_id = :chk AND user_id = 'chk-user';
SELECT :R FROM vote_guard.change_vote(:chk, 2, 'chk-user');
SELECT v.vote_id = b.vote_id AS same_vote, v.created_at = b.created_at AS created_at_kept, v.entry_id
  FROM vote_guard.votes v, chk_before b
 WHERE v.contest_id = :chk AND v.user_id = 'chk-user';
SELECT error_code,
       retry_at = (SELECT created_at FROM chk_before) + interval '168 hours' AS retry_at_first_vote_plus_7d
  FROM vote_guard.cast_vote(:chk, 3, NULL, 'chk-user');
SELECT :R FROM vote_guard.retract_vote(:chk, 'chk-user');
SELECT :R FROM vote_guard.cast_vote(:chk, 3, NULL, 'chk-user');
SELECT * FROM regress_pol.counts(:chk);

SELECT * FROM regress_pol.drift(:chd) UNION ALL SELECT * FROM regress_pol.drift(:chk);

--------------------------------------------------------------------------
-- privileges: change_vote and retract_vote are, like cast_vote, callable by
-- PUBLIC (SECURITY DEFINER, fixed search_path); the application passes the
-- user_id it authenticated.  The tables stay closed.
--------------------------------------------------------------------------
SELECT p.oid::regprocedure AS function,
       has_function_privilege('regress_vg_policy_voter', p.oid, 'EXECUTE') AS voter_may_execute,
       p.prosecdef AS security_definer, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'vote_guard'::regnamespace
   AND p.proname IN ('cast_vote', 'change_vote', 'retract_vote', 'results',
                     'create_contest', 'votes_policy_trigger', 'verify')
 ORDER BY 1;

SELECT :R FROM vote_guard.cast_vote(:ch, 1, '192.0.2.83', 'priv-user');
SET ROLE regress_vg_policy_voter;
SELECT :R FROM vote_guard.change_vote(:ch, 3, 'priv-user');
SELECT * FROM vote_guard.results(:ch);
SELECT :R FROM vote_guard.retract_vote(:ch, 'priv-user');
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET entry_id = 2 WHERE contest_id = %s', :ch));
SELECT regress_pol.try(format('DELETE FROM vote_guard.votes WHERE contest_id = %s', :ch));
SELECT regress_pol.try(format('UPDATE vote_guard.contests SET allow_change = false WHERE id = %s', :ch));
SELECT regress_pol.try('SELECT vote_guard.create_contest(''policies by voter'', votes_per_voter => 5)');
RESET ROLE;
SELECT * FROM regress_pol.counts(:ch);

--------------------------------------------------------------------------
-- the policy trigger: the owner's direct INSERT and UPDATE obey the policy
-- (23514, "vote breaks the policy of contest N: <code>"); window and slots
-- are derived, whatever the statement says
--------------------------------------------------------------------------
SELECT regress_pol.entries(vote_guard.create_contest('policies owner', dedupe_on => '{ip,user,email}',
           votes_per_voter => 2, per_entry_limit => 1), 3) AS ow \gset
SELECT regress_pol.entries(vote_guard.create_contest('policies owner other', dedupe_on => '{ip,user,email}',
           votes_per_voter => 2, per_entry_limit => 1), 3) AS ow2 \gset

-- given window_no and slots are overwritten
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id, window_no, ip_slot, user_slot, email_slot)
VALUES (:ow, 1, 'ow-user', 99, 5, 7, 2)
RETURNING window_no, ip_slot, user_slot, email_slot;
-- per-entry limit
SELECT regress_pol.ins(:ow, 1, 'ow-user');
SELECT regress_pol.ins(:ow, 2, 'ow-user');
-- votes_per_voter
SELECT regress_pol.ins(:ow, 3, 'ow-user');
-- the same through another vector of the row
SELECT regress_pol.ins(:ow, 3, 'ow-x', '192.0.2.100', 'ow@example.com');
SELECT regress_pol.ins(:ow, 3, 'ow-y', '192.0.2.100');
SELECT regress_pol.ins(:ow, 2, 'ow-z', mail => 'OW+z@example.com');
SELECT regress_pol.ins(:ow, 3, 'ow-z', mail => 'ow@example.com');
SELECT user_id, entry_id, window_no, ip_slot, user_slot, email_slot
  FROM vote_guard.votes WHERE contest_id = :ow ORDER BY user_id, user_slot;

-- UPDATE: onto an entry the voter has (limit), onto a free one (ok), a
-- voter at its limit, a column the policy does not look at, slots
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET entry_id = 1 WHERE contest_id = %s AND user_id = %L AND entry_id = 2', :ow, 'ow-user'));
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET entry_id = 3 WHERE contest_id = %s AND user_id = %L AND entry_id = 2', :ow, 'ow-user'));
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET user_id = %L WHERE contest_id = %s AND user_id = %L', 'ow-user', :ow, 'ow-x'));
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET request_id = %L WHERE contest_id = %s AND user_id = %L AND entry_id = 1', 'ow-req', :ow, 'ow-user'));
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET user_slot = 9, window_no = 5 WHERE contest_id = %s AND user_id = %L AND entry_id = 3', :ow, 'ow-user'));
SELECT user_id, entry_id, window_no, user_slot, request_id
  FROM vote_guard.votes WHERE contest_id = :ow AND user_id = 'ow-user' ORDER BY user_slot;
-- a vote cannot move to another contest (0A000)
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET contest_id = %s WHERE contest_id = %s AND user_id = %L', :ow2, :ow, 'ow-x'));
SELECT * FROM regress_pol.counts(:ow);
SELECT * FROM regress_pol.drift(:ow) UNION ALL SELECT * FROM regress_pol.drift(:ow2);

-- UPDATE of created_at into a window that is full (daily contest: day-user
-- has 2 votes in window 0)
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET created_at = %L::timestamptz + interval %L WHERE contest_id = %s AND user_id = %L AND window_no = 1 AND entry_id = 2',
                              regress_pol.opens(:d), '5 hours', :d, 'day-user'));
-- and into a cooldown (cd-edge's vote at t0 + 7 days moved to t0 + 1 hour)
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET created_at = %L WHERE contest_id = %s AND user_id = %L AND created_at = %L',
                              timestamptz '2020-01-15 01:00:00+00', :k, 'cd-edge',
                              timestamptz '2020-01-15 00:00:00+00' + interval '168 hours'));
-- out of reach of the others it is fine
SELECT regress_pol.try(format('UPDATE vote_guard.votes SET created_at = %L WHERE contest_id = %s AND user_id = %L AND created_at = %L',
                              timestamptz '2020-02-15 00:00:00+00', :k, 'cd-edge',
                              timestamptz '2020-01-15 00:00:00+00' + interval '168 hours'));

-- one vote per voter (no lock): the slots given are overwritten too, so the
-- unique index still refuses a second vote (an integrity-constraint error)
SELECT left(result, 2) AS sqlstate_class
  FROM regress_pol.try(format('INSERT INTO vote_guard.votes (contest_id, entry_id, user_id, user_slot) VALUES (%s, 2, %L, 2)',
                              :s1, 'single')) AS result;
SELECT regress_pol.ins(:s1, 2, 'single-new');
SELECT user_id, window_no, user_slot FROM vote_guard.votes
 WHERE contest_id = :s1 AND user_id LIKE 'single%' ORDER BY user_id;
SELECT * FROM regress_pol.drift(:s1) UNION ALL SELECT * FROM regress_pol.drift(:k) UNION ALL SELECT * FROM regress_pol.drift(:d);

--------------------------------------------------------------------------
-- contest settings: those the votes depend on cannot change (55000) ...
--------------------------------------------------------------------------
SELECT regress_pol.entries(vote_guard.create_contest('policies settings', dedupe_on => '{ip,user}',
           opens_at => now() - interval '36 hours', vote_window => '1 day',
           votes_per_voter => 2, per_entry_limit => 1, cooldown => '1 hour'), 1) AS st \gset
SELECT regress_pol.entries(vote_guard.create_contest('policies settings no window', dedupe_on => '{user}',
           require_user => true), 1) AS stn \gset

SELECT s AS set_clause,
       regress_pol.try(format('UPDATE vote_guard.contests SET %s WHERE id = %s', s, :st)) AS result
  FROM unnest(ARRAY[
    'dedupe_on = ''{ip,user,email}''',
    'dedupe_on = ''{user,ip}''',
    'ipv4_prefix = 24',
    'ipv6_prefix = 48',
    'votes_per_voter = 3',
    'per_entry_limit = 2',
    'vote_window = ''2 days''',
    'vote_window = NULL',
    'secret_version = 999',
    'opens_at = opens_at - interval ''1 hour'''
  ]) AS s;
SELECT regress_pol.try(format('UPDATE vote_guard.contests SET vote_window = %L WHERE id = %s', '1 day', :stn)) AS window_added;
SELECT regress_pol.try(format('UPDATE vote_guard.contests SET votes_per_voter = 2 WHERE id = %s', :stn)) AS more_votes;

-- ... the others can (and the fixed ones can be "set" to what they are)
SELECT s AS set_clause,
       regress_pol.try(format('UPDATE vote_guard.contests SET %s WHERE id = %s', s, :st)) AS result
  FROM unnest(ARRAY[
    'name = ''policies settings renamed''',
    'closes_at = now() + interval ''30 days''',
    'closes_at = NULL',
    'closed_at = now()',
    'closed_at = NULL',
    'require_user = true',
    'allow_change = true',
    'cooldown = ''2 hours''',
    'cooldown = NULL',
    'dedupe_on = dedupe_on, ipv4_prefix = ipv4_prefix, votes_per_voter = votes_per_voter, vote_window = vote_window, opens_at = opens_at'
  ]) AS s;
SELECT regress_pol.try(format('UPDATE vote_guard.contests SET opens_at = opens_at - interval %L WHERE id = %s', '1 hour', :stn)) AS opens_at_without_window;
SELECT name, require_user, allow_change, cooldown, closes_at, closed_at
  FROM vote_guard.contests WHERE id = :st;

-- changed settings apply to the next call: require_user off ...
SELECT :R FROM vote_guard.cast_vote(:stn, 1, '192.0.2.110');
SELECT regress_pol.try(format('UPDATE vote_guard.contests SET require_user = false, dedupe_on = dedupe_on WHERE id = %s', :stn));
SELECT :R FROM vote_guard.cast_vote(:stn, 1, NULL, 'stn-user');
-- ... and the cooldown removed: cd-recent (6 days ago) may vote now
SELECT error_code FROM vote_guard.cast_vote(:k, 2, '192.0.2.62', 'cd-recent');
SELECT regress_pol.try(format('UPDATE vote_guard.contests SET cooldown = NULL WHERE id = %s', :k));
SELECT :R FROM vote_guard.cast_vote(:k, 2, '192.0.2.62', 'cd-recent');
-- ... a cooldown added to a one-vote contest
SELECT regress_pol.try(format('UPDATE vote_guard.contests SET cooldown = %L WHERE id = %s', '1 hour', :stn));
SELECT :R FROM vote_guard.cast_vote(:stn, 1, NULL, 'stn-user');
SELECT :R FROM vote_guard.cast_vote(:stn, 1, NULL, 'stn-user-2');

--------------------------------------------------------------------------
-- request_id replays under a lock-taking policy, even when the voter is
-- at its limit
--------------------------------------------------------------------------
SELECT :R FROM vote_guard.cast_vote(:ap, 1, '192.0.2.120', 'rp-user', request_id => 'rp-1');
SELECT :R FROM vote_guard.cast_vote(:ap, 1, '192.0.2.120', 'rp-user', request_id => 'rp-1');
SELECT :R FROM vote_guard.cast_vote(:ap, 2, '192.0.2.120', 'rp-user', request_id => 'rp-2');
SELECT :R FROM vote_guard.cast_vote(:ap, 3, '192.0.2.120', 'rp-user', request_id => 'rp-3');
SELECT :R FROM vote_guard.cast_vote(:ap, 4, '192.0.2.120', 'rp-user', request_id => 'rp-4');
SELECT :R FROM vote_guard.cast_vote(:ap, 4, '192.0.2.120', 'rp-user', request_id => 'rp-2');
SELECT count(*) AS rp_votes FROM vote_guard.votes WHERE contest_id = :ap AND user_id = 'rp-user';

--------------------------------------------------------------------------
-- every contest of this file: counters equal the vote rows
--------------------------------------------------------------------------
SELECT count(DISTINCT c.id) AS contests, count(*) AS entries,
       count(*) FILTER (WHERE v.drift <> 0) AS drifting
  FROM vote_guard.contests c, vote_guard.verify(c.id) v
 WHERE c.name LIKE 'policies%';

SET client_min_messages = warning;
DROP SCHEMA regress_pol CASCADE;
RESET client_min_messages;
DROP ROLE regress_vg_policy_voter;
