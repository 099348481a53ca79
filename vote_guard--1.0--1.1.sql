/* vote_guard 1.0 -> 1.1: upgrade script */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION vote_guard UPDATE TO '1.1'" to load this file. \quit

------------------------------------------------------------------------------
-- counters: fillfactor 10 (was 30)
--
-- PostgreSQL prunes a heap page when a reader finds its free space below
-- the fillfactor's share (at least 10 %), and inserts fill a page up to
-- that share: so a counter page has room for its rows' new versions, and
-- its first dead version puts it under the line, whatever the fillfactor.
-- Most votes therefore prune the counter page they read, and a prune goes
-- over every line pointer of the page: a page of fewer rows costs less to
-- prune (bench/callgrind.sh, counter step per vote: 38 k instructions at
-- fillfactor 30, 31 k at 10, 59 k at 100), and the slot rows of a hot entry
-- spread over more pages that fewer voters lock in turn.  The table takes
-- about three times the space it took (one 56-byte row per entry voted for
-- one vote at a time, up to VG_COUNTER_SLOTS for a hot one).  Pages written
-- before the update keep their rows until they are rewritten (VACUUM FULL).
------------------------------------------------------------------------------
ALTER TABLE vote_guard.counters SET (fillfactor = 10);
