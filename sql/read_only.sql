--
-- read_only: in a read-only transaction (and so on a hot standby, where
-- every transaction is read-only) cast_vote, change_vote and retract_vote
-- raise one error, SQLSTATE 25006, whatever their arguments: no answer comes
-- back as a row there.  results() and verify() keep working.
--
\set SHOW_CONTEXT never
\set R 'success, error_code, http_status, vote_count, replayed'

SELECT vote_guard.create_contest('read_only', allow_change => true) AS c \gset
SELECT vote_guard.add_entry(:c, 1, 'one'), vote_guard.add_entry(:c, 2, 'two');
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.200', 'ro-user', request_id => 'ro-req');

CREATE TEMP VIEW ro_state AS
SELECT (SELECT count(*) FROM vote_guard.votes) AS votes,
       (SELECT coalesce(sum(votes), 0) FROM vote_guard.counters) AS counted;
SELECT * FROM ro_state \gset before_

--
-- default_transaction_read_only: every call is the same error, whether it
-- would have been a new vote, a duplicate, a replay, invalid_input,
-- contest_not_found, a move, a retraction or vote_not_found
--
SET default_transaction_read_only = on;
-- a new voter
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.201', 'ro-new');
\echo :SQLSTATE
-- a duplicate
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.200', 'ro-user');
\echo :SQLSTATE
-- a replay of an accepted request
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.200', 'ro-user', request_id => 'ro-req');
\echo :SQLSTATE
-- invalid_input
SELECT :R FROM vote_guard.cast_vote(0, 1, '192.0.2.201');
\echo :SQLSTATE
SELECT :R FROM vote_guard.cast_vote(NULL, NULL);
\echo :SQLSTATE
-- contest_not_found
SELECT :R FROM vote_guard.cast_vote(:c + 1000000, 1, '192.0.2.201');
\echo :SQLSTATE
-- change_vote: a move, vote_not_found, invalid_input, contest_not_found
SELECT :R FROM vote_guard.change_vote(:c, 2, 'ro-user');
\echo :SQLSTATE
SELECT :R FROM vote_guard.change_vote(:c, 2, 'ro-nobody');
\echo :SQLSTATE
SELECT :R FROM vote_guard.change_vote(:c, 2, NULL);
\echo :SQLSTATE
SELECT :R FROM vote_guard.change_vote(:c + 1000000, 2, 'ro-user');
\echo :SQLSTATE
-- retract_vote: a retraction, vote_not_found, invalid_input
SELECT :R FROM vote_guard.retract_vote(:c, 'ro-user');
\echo :SQLSTATE
SELECT :R FROM vote_guard.retract_vote(:c, 'ro-nobody');
\echo :SQLSTATE
SELECT :R FROM vote_guard.retract_vote(-1, NULL);
\echo :SQLSTATE
-- reads work
SELECT * FROM vote_guard.results(:c);
SELECT * FROM vote_guard.verify(:c);
RESET default_transaction_read_only;

--
-- BEGIN READ ONLY: the same, and the transaction is aborted by it
--
BEGIN READ ONLY;
SELECT * FROM vote_guard.results(:c);
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.202', 'ro-new-2');
\echo :SQLSTATE
ROLLBACK;
BEGIN;
SET TRANSACTION READ ONLY;
SELECT :R FROM vote_guard.retract_vote(:c, 'ro-user', 1);
\echo :SQLSTATE
ROLLBACK;
-- a read-only subtransaction of a read-write transaction is refused too
BEGIN;
SAVEPOINT s;
SET TRANSACTION READ ONLY;
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.203');
\echo :SQLSTATE
ROLLBACK TO SAVEPOINT s;
SELECT :R FROM vote_guard.cast_vote(:c, 2, '192.0.2.203');
ROLLBACK;

-- nothing was written
SELECT votes = :before_votes AS votes_unchanged,
       counted = :before_counted AS counters_unchanged
  FROM ro_state;

-- read-write again: the calls answer with rows as before
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.200', 'ro-user', request_id => 'ro-req');
SELECT :R FROM vote_guard.cast_vote(0, 1, '192.0.2.201');
SELECT :R FROM vote_guard.change_vote(:c, 2, 'ro-user');
SELECT :R FROM vote_guard.retract_vote(:c, 'ro-user');
SELECT count(*) FILTER (WHERE drift <> 0) AS drifting FROM vote_guard.verify(:c);
