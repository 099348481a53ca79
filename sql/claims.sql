--
-- claims: entries and contests with a capacity (1.1).  entry_full and
-- contest_full, the voter's own checks first, places given back by retract,
-- change and rollback, capacities raised and lowered, the owner's direct
-- writes, bad input.
--
\set VERBOSITY terse
\set R 'success, error_code, http_status, vote_count, vote_id IS NOT NULL AS has_vote_id, replayed'

-- the places left of an entry: the sum of its slot rows, and their count
CREATE TEMP VIEW places AS
SELECT k.contest_id, k.entry_id, sum(k.votes) AS votes, sum(k.allot) AS places,
       count(*) AS slot_rows
  FROM vote_guard.counters k GROUP BY 1, 2;

--
-- entry capacity
--
SELECT vote_guard.create_contest('claims: workshop', allow_change => true) AS c \gset
SELECT vote_guard.add_entry(:c, 1, 'morning', capacity => 2),
       vote_guard.add_entry(:c, 2, 'afternoon', 1),
       vote_guard.add_entry(:c, 3, 'evening');
SELECT entry_id, label, capacity FROM vote_guard.entries WHERE contest_id = :c ORDER BY 1;
-- all places are in the slot rows at first
SELECT entry_id, votes, places, slot_rows FROM places WHERE contest_id = :c ORDER BY 1;

SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u1');
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u2');
-- the third: entry_full, nothing written
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u3');
SELECT count(*) FROM vote_guard.votes WHERE contest_id = :c;
-- the voter's own checks come first: a duplicate stays a duplicate
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u1');
-- and a replay of an accepted request stays a replay
SELECT :R FROM vote_guard.cast_vote(:c, 2, user_id => 'u4', request_id => 'r4');
SELECT :R FROM vote_guard.cast_vote(:c, 2, user_id => 'u4', request_id => 'r4');
SELECT :R FROM vote_guard.cast_vote(:c, 2, user_id => 'u5');
-- an entry without a capacity is not limited
SELECT :R FROM vote_guard.cast_vote(:c, 3, user_id => 'u6');

-- retract gives the place back
SELECT :R FROM vote_guard.retract_vote(:c, 'u2');
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u3');
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u7');

-- a rolled-back vote gives the place back
BEGIN;
SELECT :R FROM vote_guard.retract_vote(:c, 'u3');
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u8');
ROLLBACK;
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u8');
BEGIN;
SELECT :R FROM vote_guard.retract_vote(:c, 'u3');
ROLLBACK;
SELECT entry_id, votes, places FROM places WHERE contest_id = :c ORDER BY 1;

-- change_vote into a full entry: entry_full, the vote stays where it was
SELECT :R FROM vote_guard.change_vote(:c, 1, 'u6');
SELECT :R FROM vote_guard.change_vote(:c, 2, 'u6');
-- out of a full entry: the place it leaves is free again
SELECT :R FROM vote_guard.change_vote(:c, 3, 'u1');
SELECT :R FROM vote_guard.change_vote(:c, 1, 'u6');
SELECT entry_id, votes, places FROM places WHERE contest_id = :c ORDER BY 1;
SELECT * FROM vote_guard.results(:c);
SELECT * FROM vote_guard.verify(:c) WHERE drift <> 0;

--
-- raising and lowering an entry's capacity
--
SELECT vote_guard.set_entry_capacity(:c, 1, 3) AS counted;
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u9');
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u10');
-- below the count: no vote is removed, new ones are refused
SELECT vote_guard.set_entry_capacity(:c, 1, 1) AS counted;
SELECT entry_id, votes, places FROM places WHERE contest_id = :c AND entry_id = 1;
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u10');
-- a retract pays the debt back first: still full at 2 votes for 1 place
SELECT :R FROM vote_guard.retract_vote(:c, 'u9');
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u10');
SELECT :R FROM vote_guard.retract_vote(:c, 'u6');
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u10');
SELECT :R FROM vote_guard.retract_vote(:c, 'u8');
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u10');
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u11');
-- no limit any more
SELECT vote_guard.set_entry_capacity(:c, 1, NULL) AS counted;
SELECT :R FROM vote_guard.cast_vote(:c, 1, user_id => 'u11');
SELECT entry_id, votes, places, slot_rows FROM places WHERE contest_id = :c AND entry_id = 1;
-- a limit on an entry that has votes: the rest of it are places
SELECT vote_guard.set_entry_capacity(:c, 3, 2) AS counted;
SELECT :R FROM vote_guard.cast_vote(:c, 3, user_id => 'u12');
SELECT :R FROM vote_guard.cast_vote(:c, 3, user_id => 'u13');
-- capacity 0: closed for new votes
SELECT vote_guard.add_entry(:c, 4, 'none', 0);
SELECT :R FROM vote_guard.cast_vote(:c, 4, user_id => 'u14');
SELECT * FROM vote_guard.verify(:c) WHERE drift <> 0;

-- a move out of an entry in debt into a full entry: entry_full, nothing moved
-- (the lower entry's place is given back first, then taken back)
SELECT vote_guard.create_contest('claims: debt', dedupe_on => '{user}', allow_change => true) AS d \gset
SELECT vote_guard.add_entry(:d, 1), vote_guard.add_entry(:d, 2, capacity => 0);
SELECT :R FROM vote_guard.cast_vote(:d, 1, user_id => 'd1');
SELECT :R FROM vote_guard.cast_vote(:d, 1, user_id => 'd2');
SELECT vote_guard.set_entry_capacity(:d, 1, 1) AS counted;
SELECT :R FROM vote_guard.change_vote(:d, 2, 'd1');
SELECT entry_id, votes, places FROM places WHERE contest_id = :d ORDER BY 1;
SELECT vote_guard.set_entry_capacity(:d, 2, 1) AS counted;
SELECT :R FROM vote_guard.change_vote(:d, 2, 'd1');
SELECT :R FROM vote_guard.cast_vote(:d, 1, user_id => 'd3');
SELECT entry_id, votes, places FROM places WHERE contest_id = :d ORDER BY 1;

--
-- contest capacity, over all its entries
--
SELECT vote_guard.create_contest('claims: 3 tickets', capacity => 3) AS t \gset
SELECT vote_guard.add_entry(:t, 1), vote_guard.add_entry(:t, 2), vote_guard.add_entry(:t, 3, capacity => 5);
SELECT capacity FROM vote_guard.contests WHERE id = :t;
SELECT :R FROM vote_guard.cast_vote(:t, 1, user_id => 't1');
SELECT :R FROM vote_guard.cast_vote(:t, 2, user_id => 't2');
SELECT :R FROM vote_guard.cast_vote(:t, 3, user_id => 't3');
SELECT :R FROM vote_guard.cast_vote(:t, 3, user_id => 't4');
SELECT :R FROM vote_guard.cast_vote(:t, 1, user_id => 't4');
-- a duplicate voter is still a duplicate
SELECT :R FROM vote_guard.cast_vote(:t, 1, user_id => 't1');
SELECT sum(allot) AS places, count(*) AS slot_rows FROM vote_guard.contest_counters WHERE contest_id = :t;
-- an entry full and the contest full: entry_full
SELECT vote_guard.add_entry(:t, 4, capacity => 0);
SELECT :R FROM vote_guard.cast_vote(:t, 4, user_id => 't4');
-- raise it
SELECT vote_guard.set_contest_capacity(:t, 4) AS counted;
SELECT :R FROM vote_guard.cast_vote(:t, 2, user_id => 't4');
SELECT :R FROM vote_guard.cast_vote(:t, 2, user_id => 't5');
-- lower it below the count: refused, none removed
SELECT vote_guard.set_contest_capacity(:t, 2) AS counted;
SELECT :R FROM vote_guard.cast_vote(:t, 2, user_id => 't5');
SELECT count(*) FROM vote_guard.votes WHERE contest_id = :t;
-- no limit
SELECT vote_guard.set_contest_capacity(:t, NULL) AS counted;
SELECT :R FROM vote_guard.cast_vote(:t, 2, user_id => 't5');
SELECT count(*) FROM vote_guard.contest_counters WHERE contest_id = :t;

--
-- the owner's direct writes obey the same capacities (the messages name the
-- contest, whose id depends on the files before: SQLSTATEs only)
--
\set VERBOSITY sqlstate
SELECT vote_guard.create_contest('claims: owner', capacity => 3) AS o \gset
SELECT vote_guard.add_entry(:o, 1, capacity => 2), vote_guard.add_entry(:o, 2);
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:o, 1, 'o1'), (:o, 1, 'o2');
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:o, 1, 'o3');
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:o, 2, 'o3'), (:o, 2, 'o4');
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:o, 2, 'o3');
-- moving a vote into the full entry
UPDATE vote_guard.votes SET entry_id = 1 WHERE contest_id = :o AND user_id = 'o3';
-- a DELETE gives the place back
DELETE FROM vote_guard.votes WHERE contest_id = :o AND user_id = 'o1';
UPDATE vote_guard.votes SET entry_id = 1 WHERE contest_id = :o AND user_id = 'o3';
INSERT INTO vote_guard.votes (contest_id, entry_id, user_id) VALUES (:o, 2, 'o4');
SELECT * FROM vote_guard.results(:o);
-- an UPDATE of the column sets the capacity as set_entry_capacity does
UPDATE vote_guard.entries SET capacity = 3 WHERE contest_id = :o AND entry_id = 1;
SELECT entry_id, votes, places, slot_rows FROM places WHERE contest_id = :o ORDER BY 1;
-- TRUNCATE of votes: every place back
BEGIN;
TRUNCATE vote_guard.votes;
SELECT :R FROM vote_guard.cast_vote(:o, 1, user_id => 'o5');
SELECT entry_id, votes, places FROM places WHERE contest_id = :o ORDER BY 1;
SELECT sum(allot) FROM vote_guard.contest_counters WHERE contest_id = :o;
ROLLBACK;

--
-- bad input
--
\set VERBOSITY terse
SELECT vote_guard.add_entry(:c, 9, capacity => -1);
SELECT vote_guard.create_contest('bad', capacity => -5);
SELECT vote_guard.set_entry_capacity(:c, 1, -1);
SELECT vote_guard.set_contest_capacity(:c, -1);
SELECT vote_guard.set_contest_capacity(-7, 1);
SELECT vote_guard.set_entry_capacity(NULL, 1, 1);
\set VERBOSITY sqlstate
SELECT vote_guard.set_entry_capacity(:c, 99, 1);
UPDATE vote_guard.entries SET capacity = -2 WHERE contest_id = :c AND entry_id = 1;
\set VERBOSITY terse
-- only the owner sets capacities
SELECT p.oid::regprocedure, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may
  FROM pg_proc p
 WHERE p.pronamespace = 'vote_guard'::regnamespace
   AND p.proname IN ('add_entry', 'create_contest', 'set_entry_capacity',
                     'set_contest_capacity', 'places_split')
 ORDER BY 1::text;
