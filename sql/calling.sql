--
-- calling: how cast_vote is called.  SELECT (vote_guard.cast_vote(...)).*
-- expands to one call of the function per column of vote_result (PostgreSQL's
-- rule for (f()).*), so it casts up to seven votes, or answers with a row
-- whose columns come from different calls.  SELECT * FROM
-- vote_guard.cast_vote(...) calls it once.  The README's warning rests on
-- this file.
--
\set R 'success, error_code, http_status, vote_count, replayed'
SELECT vote_guard.create_contest('calling: seven votes a voter',
                                 dedupe_on => '{user}', votes_per_voter => 7,
                                 per_entry_limit => 7) AS many \gset
SELECT vote_guard.create_contest('calling: one vote a voter') AS one \gset
SELECT vote_guard.add_entry(:many, 1), vote_guard.add_entry(:one, 1);

-- (f()).*: seven calls, seven votes for one request; vote_count is the
-- fourth call's (vote ids vary from run to run: the outer query prints
-- whether there is one)
\set S 'success, error_code, http_status, vote_count, vote_id IS NOT NULL AS has_vote_id, retry_at, replayed'
SELECT :S FROM (SELECT (vote_guard.cast_vote(:many, 1, NULL, 'star-user')).* OFFSET 0) s;
SELECT count(*) AS votes_cast FROM vote_guard.votes
 WHERE contest_id = :many AND user_id = 'star-user';

-- under one vote per voter: one vote, but the row mixes the first call's
-- success with a later call's duplicate_user
SELECT :S FROM (SELECT (vote_guard.cast_vote(:one, 1, NULL, 'star-user')).* OFFSET 0) s;
SELECT count(*) AS votes_cast FROM vote_guard.votes
 WHERE contest_id = :one AND user_id = 'star-user';

-- SELECT * FROM f(): one call, one vote, one consistent row
SELECT :R FROM vote_guard.cast_vote(:many, 1, NULL, 'from-user');
SELECT count(*) AS votes_cast FROM vote_guard.votes
 WHERE contest_id = :many AND user_id = 'from-user';
-- the function in FROM, its row expanded from there: one call too
SELECT (r).success, (r).error_code
  FROM vote_guard.cast_vote(:many, 1, NULL, 'alias-user') AS r;
SELECT count(*) AS votes_cast FROM vote_guard.votes
 WHERE contest_id = :many AND user_id = 'alias-user';

SELECT count(*) FILTER (WHERE drift <> 0) AS drifting
  FROM vote_guard.verify(:many) UNION ALL
SELECT count(*) FILTER (WHERE drift <> 0) FROM vote_guard.verify(:one);
