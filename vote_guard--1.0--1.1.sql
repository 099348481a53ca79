/* vote_guard 1.0 -> 1.1: upgrade script */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION vote_guard UPDATE TO '1.1'" to load this file. \quit

/*
 * 1.1: limited claims.  An entry may take at most entries.capacity votes,
 * a contest at most contests.capacity over all its entries (NULL: no
 * limit).  The places left are held in escrow, split across slot rows (the
 * demarcation protocol): an entry's in its counter rows (counters.allot),
 * a contest's in rows of its own (contest_counters).  A vote takes a place
 * from a row no other transaction holds and adds to that row's count in
 * the same update, so for every row votes + allot stays what it was, and
 * the places taken can never exceed the capacity; a retract, a change away
 * or a rollback gives the place back to a row.
 */

ALTER TABLE vote_guard.contests ADD COLUMN capacity bigint,
    ADD CONSTRAINT contests_capacity_check CHECK (capacity OPERATOR(pg_catalog.>=) 0);

ALTER TABLE vote_guard.entries ADD COLUMN capacity bigint,
    ADD CONSTRAINT entries_capacity_check CHECK (capacity OPERATOR(pg_catalog.>=) 0);

-- the places left in this slot row of a limited entry (NULL: no limit); it
-- may be negative in one row after a capacity was lowered below the count
ALTER TABLE vote_guard.counters ADD COLUMN allot bigint;

/*
 * A limited contest's places left, in slot rows as the entries' are.  A
 * table of its own rather than counter rows with a sentinel entry: the
 * counters' foreign key to entries stays, and results() and verify() keep
 * summing counters without skipping anything.  Maintained only by
 * vote_guard's functions and triggers; never dumped (a restore of the votes
 * rebuilds it).
 */
CREATE TABLE vote_guard.contest_counters (
    contest_id bigint NOT NULL REFERENCES vote_guard.contests (id) ON DELETE CASCADE,
    slot       integer NOT NULL,
    allot      bigint NOT NULL,
    PRIMARY KEY (contest_id, slot)
) WITH (fillfactor = 30);
REVOKE ALL ON TABLE vote_guard.contest_counters FROM PUBLIC;

/*
 * How remaining places are split across the 64 slot rows (VG_COUNTER_SLOTS
 * in vg_types.h): evenly, the first rows one more; a negative remainder (a
 * capacity lowered below the count) all in slot 0, which a retract pays
 * back first.
 */
CREATE FUNCTION vote_guard.places_split(remaining bigint)
RETURNS TABLE (slot integer, allot bigint)
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.s,
           CASE WHEN remaining OPERATOR(pg_catalog.<) 0
                THEN CASE WHEN s.s OPERATOR(pg_catalog.=) 0 THEN remaining ELSE 0 END
                ELSE (remaining OPERATOR(pg_catalog./) 64)
                     OPERATOR(pg_catalog.+)
                     CASE WHEN s.s OPERATOR(pg_catalog.<) (remaining OPERATOR(pg_catalog.%) 64)
                          THEN 1 ELSE 0 END
           END::bigint
      FROM pg_catalog.generate_series(0, 63) AS s(s)
$$;
REVOKE ALL ON FUNCTION vote_guard.places_split(bigint) FROM PUBLIC;

/*
 * Setting a capacity (add_entry, create_contest, set_entry_capacity,
 * set_contest_capacity, or the owner's own UPDATE of the column): the
 * entries and contests triggers take the contest's lock in exclusive mode,
 * so no vote is in flight, and then split capacity - count across the slot
 * rows anew.
 */

-- add_entry gains capacity: a new signature, so drop and create
DROP FUNCTION vote_guard.add_entry(bigint, bigint, text);

CREATE FUNCTION vote_guard.add_entry(contest_id bigint, entry_id bigint, label text DEFAULT NULL,
                                     capacity bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF entry_id IS NULL OR entry_id OPERATOR(pg_catalog.<=) 0 THEN
        RAISE EXCEPTION 'entry_id must be a positive number, not %', COALESCE(entry_id::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF capacity OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'capacity must be zero or more, not %', capacity
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out (NULL) for an entry without a limit.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM vote_guard.contests c
                   WHERE c.id OPERATOR(pg_catalog.=) add_entry.contest_id) THEN
        RAISE EXCEPTION 'contest % does not exist', COALESCE(contest_id::text, 'NULL')
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create it with vote_guard.create_contest().';
    END IF;
    INSERT INTO vote_guard.entries AS e (contest_id, entry_id, label, capacity)
    VALUES (add_entry.contest_id, add_entry.entry_id, add_entry.label, add_entry.capacity)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'entry % already exists in contest %', entry_id, contest_id
            USING ERRCODE = 'unique_violation';
    END IF;
    -- a new entry has no votes: all its places in its slot rows
    IF capacity IS NOT NULL THEN
        INSERT INTO vote_guard.counters (contest_id, entry_id, slot, votes, allot)
        SELECT add_entry.contest_id, add_entry.entry_id, p.slot, 0, p.allot
          FROM vote_guard.places_split(add_entry.capacity) p;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION vote_guard.add_entry(bigint, bigint, text, bigint) FROM PUBLIC;

-- create_contest gains capacity: a new signature, so drop and create
DROP FUNCTION vote_guard.create_contest(text, timestamptz, timestamptz, text[], integer, integer,
                                        boolean, integer, integer, interval, interval, boolean);
CREATE FUNCTION vote_guard.create_contest(
    name         text,
    opens_at     timestamptz DEFAULT pg_catalog.now(),
    closes_at    timestamptz DEFAULT NULL,
    dedupe_on    text[] DEFAULT '{ip,user,email}',
    ipv4_prefix  integer DEFAULT 32,
    ipv6_prefix  integer DEFAULT 64,
    require_user boolean DEFAULT false,
    votes_per_voter integer DEFAULT 1,
    per_entry_limit integer DEFAULT 1,
    vote_window  interval DEFAULT NULL,
    cooldown     interval DEFAULT NULL,
    allow_change boolean DEFAULT false,
    capacity     bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id bigint;
    bad_dedupe boolean;
    latest_secret integer;
BEGIN
    IF name IS NULL OR name OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION 'contest name must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF opens_at IS NULL THEN
        RAISE EXCEPTION 'opens_at must not be null'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out to open the contest now.';
    END IF;
    IF NOT pg_catalog.isfinite(opens_at) THEN
        RAISE EXCEPTION 'opens_at must be a finite time, not %', opens_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out to open the contest now.';
    END IF;
    IF NOT pg_catalog.isfinite(closes_at) THEN
        RAISE EXCEPTION 'closes_at must be a finite time, not %', closes_at
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out (NULL) for a contest without an end.';
    END IF;
    IF closes_at IS NOT NULL AND closes_at OPERATOR(pg_catalog.<=) opens_at THEN
        RAISE EXCEPTION 'closes_at (%) must be later than opens_at (%)', closes_at, opens_at
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- a list: one dimension, not empty (array_position refuses more dimensions)
    bad_dedupe := dedupe_on IS NULL OR pg_catalog.array_ndims(dedupe_on) IS DISTINCT FROM 1;
    IF NOT bad_dedupe THEN
        bad_dedupe := NOT dedupe_on OPERATOR(pg_catalog.<@) '{ip,user,email}'::text[]
                      OR pg_catalog.array_position(dedupe_on, NULL) IS NOT NULL;
    END IF;
    IF bad_dedupe THEN
        RAISE EXCEPTION 'dedupe_on must name one or more of ip, user, email, not %', dedupe_on
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ipv4_prefix IS NULL OR ipv4_prefix NOT BETWEEN 1 AND 32 THEN
        RAISE EXCEPTION 'ipv4_prefix must be between 1 and 32, not %', ipv4_prefix
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ipv6_prefix IS NULL OR ipv6_prefix NOT BETWEEN 1 AND 128 THEN
        RAISE EXCEPTION 'ipv6_prefix must be between 1 and 128, not %', ipv6_prefix
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF require_user IS NULL OR allow_change IS NULL THEN
        RAISE EXCEPTION 'require_user and allow_change must not be null'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF votes_per_voter IS NULL OR votes_per_voter NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'votes_per_voter must be between 1 and 1000, not %', votes_per_voter
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF per_entry_limit IS NULL OR per_entry_limit NOT BETWEEN 1 AND votes_per_voter THEN
        RAISE EXCEPTION 'per_entry_limit must be between 1 and votes_per_voter (%), not %',
                        votes_per_voter, per_entry_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF vote_window OPERATOR(pg_catalog.<) '1 second'::interval
       OR vote_window OPERATOR(pg_catalog.>) '100 years'::interval THEN
        RAISE EXCEPTION 'vote_window must be between 1 second and 100 years, not %', vote_window
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out (NULL) for limits over the whole contest.';
    END IF;
    /*
     * Every vote carries its window's number in an integer column: windows
     * 0 .. 2147483647 from opens_at.  A closes_at after the end of the last
     * one is refused; an open-ended contest is closed once they run out
     * (cast_vote answers contest_closed), so one that has no window left now
     * is refused.
     */
    IF vote_window IS NOT NULL AND closes_at IS NOT NULL
       AND vote_guard.window_number(create_contest.opens_at, vote_window,
                                    closes_at OPERATOR(pg_catalog.-) '00:00:00.000001'::interval)
           OPERATOR(pg_catalog.>) 2147483647 THEN
        RAISE EXCEPTION 'closes_at (%) is after the last vote window of this contest', closes_at
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Vote windows are numbered 0 to 2147483647 from opens_at.',
                  HINT = 'Choose a longer vote_window, a later opens_at or an earlier closes_at.';
    END IF;
    IF vote_window IS NOT NULL AND closes_at IS NULL
       AND vote_guard.window_number(create_contest.opens_at, vote_window,
                                    pg_catalog.statement_timestamp())
           OPERATOR(pg_catalog.>) 2147483647 THEN
        RAISE EXCEPTION 'opens_at (%) is too far back for a vote_window of %', opens_at, vote_window
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'Vote windows are numbered 0 to 2147483647 from opens_at, and the last one has ended.',
                  HINT = 'Choose a longer vote_window or a later opens_at.';
    END IF;
    IF cooldown OPERATOR(pg_catalog.<=) '0'::interval
       OR cooldown OPERATOR(pg_catalog.>) '100 years'::interval THEN
        RAISE EXCEPTION 'cooldown must be positive and at most 100 years, not %', cooldown
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out (NULL) for no cooldown.';
    END IF;
    IF capacity OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'capacity must be zero or more, not %', capacity
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave it out (NULL) for a contest without a limit.';
    END IF;
    IF allow_change AND NOT 'user' OPERATOR(pg_catalog.=) ANY (dedupe_on) THEN
        RAISE EXCEPTION 'allow_change needs votes identified by user_id'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Add ''user'' to dedupe_on (and consider require_user).';
    END IF;

    -- the secret version first: Citus refuses the subquery below in a
    -- query that also reads the secrets, a reference table
    SELECT pg_catalog.max(s.version) INTO latest_secret FROM vote_guard.secrets s;

    INSERT INTO vote_guard.contests
        (name, opens_at, closes_at, dedupe_on, ipv4_prefix, ipv6_prefix,
         require_user, votes_per_voter, per_entry_limit, vote_window, cooldown,
         allow_change, secret_version, capacity)
    SELECT create_contest.name, create_contest.opens_at, create_contest.closes_at,
           ARRAY(SELECT DISTINCT d FROM pg_catalog.unnest(create_contest.dedupe_on) AS d ORDER BY d),
           create_contest.ipv4_prefix, create_contest.ipv6_prefix,
           create_contest.require_user, create_contest.votes_per_voter,
           create_contest.per_entry_limit, create_contest.vote_window,
           create_contest.cooldown, create_contest.allow_change,
           latest_secret, create_contest.capacity
    RETURNING id INTO new_id;

    -- a new contest has no votes: all its places in its slot rows
    IF capacity IS NOT NULL THEN
        INSERT INTO vote_guard.contest_counters (contest_id, slot, allot)
        SELECT new_id, p.slot, p.allot FROM vote_guard.places_split(create_contest.capacity) p;
    END IF;

    RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION vote_guard.create_contest(text, timestamptz, timestamptz, text[], integer, integer, boolean, integer, integer, interval, interval, boolean, bigint) FROM PUBLIC;

CREATE FUNCTION vote_guard.set_entry_capacity(contest_id bigint, entry_id bigint, capacity bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    counted bigint;
BEGIN
    IF capacity OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'capacity must be zero or more, not %', capacity
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'NULL removes the limit.';
    END IF;
    -- the entries trigger waits for the votes in flight and splits the places anew
    UPDATE vote_guard.entries e SET capacity = set_entry_capacity.capacity
     WHERE e.contest_id OPERATOR(pg_catalog.=) set_entry_capacity.contest_id
       AND e.entry_id OPERATOR(pg_catalog.=) set_entry_capacity.entry_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'entry % of contest % does not exist',
                        COALESCE(entry_id::text, 'NULL'), COALESCE(contest_id::text, 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT COALESCE(pg_catalog.sum(k.votes), 0)::bigint INTO counted
      FROM vote_guard.counters k
     WHERE k.contest_id OPERATOR(pg_catalog.=) set_entry_capacity.contest_id
       AND k.entry_id OPERATOR(pg_catalog.=) set_entry_capacity.entry_id;
    RETURN counted;
END
$$;
REVOKE ALL ON FUNCTION vote_guard.set_entry_capacity(bigint, bigint, bigint) FROM PUBLIC;

COMMENT ON FUNCTION vote_guard.set_entry_capacity(bigint, bigint, bigint) IS
'raise or lower an entry''s capacity (NULL: no limit); returns its count of votes. Below the count, new votes are refused and none removed';

CREATE FUNCTION vote_guard.set_contest_capacity(contest_id bigint, capacity bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    counted bigint;
BEGIN
    IF capacity OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION 'capacity must be zero or more, not %', capacity
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'NULL removes the limit.';
    END IF;
    -- the contests trigger waits for the votes in flight and splits the places anew
    UPDATE vote_guard.contests c SET capacity = set_contest_capacity.capacity
     WHERE c.id OPERATOR(pg_catalog.=) set_contest_capacity.contest_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'contest % does not exist', COALESCE(contest_id::text, 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
    SELECT COALESCE(pg_catalog.sum(k.votes), 0)::bigint INTO counted
      FROM vote_guard.counters k
     WHERE k.contest_id OPERATOR(pg_catalog.=) set_contest_capacity.contest_id;
    RETURN counted;
END
$$;
REVOKE ALL ON FUNCTION vote_guard.set_contest_capacity(bigint, bigint) FROM PUBLIC;

COMMENT ON FUNCTION vote_guard.set_contest_capacity(bigint, bigint) IS
'raise or lower a contest''s capacity over all its entries (NULL: no limit); returns its count of votes. Below the count, new votes are refused and none removed';

-- distribute() gains contest_counters: drop and create
/*
 * TRUNCATE of a shard of vote_guard.votes (after distribute()): the
 * contest_counters shard beside it is emptied as well, as the votes
 * trigger empties vote_guard.contest_counters on one node, so a limited
 * contest's places are rebuilt from its votes at the next vote (1.0's
 * votes_truncate_shard() empties the counters shard).
 */
CREATE FUNCTION vote_guard.votes_truncate_places_shard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    places_shard text;
BEGIN
    -- the coordinator's (empty) table: its places are the shards' business
    IF TG_RELID OPERATOR(pg_catalog.=) 'vote_guard.votes'::pg_catalog.regclass THEN
        RETURN NULL;
    END IF;
    SELECT pg_catalog.shard_name('vote_guard.contest_counters'::pg_catalog.regclass, k.shardid)
      INTO places_shard
      FROM pg_catalog.pg_dist_shard v
      JOIN pg_catalog.pg_dist_shard k
        ON k.logicalrelid OPERATOR(pg_catalog.=) 'vote_guard.contest_counters'::pg_catalog.regclass
       AND k.shardminvalue OPERATOR(pg_catalog.=) v.shardminvalue
     WHERE v.logicalrelid OPERATOR(pg_catalog.=) 'vote_guard.votes'::pg_catalog.regclass
       AND pg_catalog.shard_name('vote_guard.votes'::pg_catalog.regclass, v.shardid)
           OPERATOR(pg_catalog.=) pg_catalog.format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF places_shard IS NULL THEN
        RAISE EXCEPTION 'vote_guard: % has no shard of vote_guard.contest_counters beside it',
                        TG_RELID::pg_catalog.regclass
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Call vote_guard.distribute() on the coordinator after ALTER EXTENSION vote_guard UPDATE.';
    END IF;
    EXECUTE 'TRUNCATE ' OPERATOR(pg_catalog.||) places_shard;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION vote_guard.votes_truncate_places_shard() FROM PUBLIC;

DROP FUNCTION vote_guard.distribute();
CREATE FUNCTION vote_guard.distribute()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t pg_catalog.regclass;
    f pg_catalog.regprocedure;
    failed text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension x
                    WHERE x.extname OPERATOR(pg_catalog.=) 'citus') THEN
        RAISE EXCEPTION 'vote_guard.distribute() needs the Citus extension in this database'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'On the coordinator, with citus in shared_preload_libraries on every node: CREATE EXTENSION citus, add the workers, CREATE EXTENSION vote_guard, then call vote_guard.distribute().';
    END IF;
    IF (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g) OPERATOR(pg_catalog.<>) 0 THEN
        RAISE EXCEPTION 'vote_guard.distribute() runs on the Citus coordinator, not on a worker'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Connect to the coordinator and call it there: it distributes the tables for every node.';
    END IF;
    -- the triggers are vote_guard's guarantees and run on every shard; the
    -- contests' foreign key to the secrets must not turn contests into a
    -- coordinator-local table on the way
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
    PERFORM pg_catalog.set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);

    -- every node: id ranges of its own; workers: no secrets of their own
    PERFORM vote_guard.citus_prepare_node();
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s: %s', r.nodename, r.nodeport, r.result), '; ')
      INTO failed
      FROM pg_catalog.run_command_on_workers('SELECT vote_guard.citus_prepare_node()') r
     WHERE NOT r.success;
    IF failed IS NOT NULL THEN
        RAISE EXCEPTION 'vote_guard.distribute(): preparing the workers failed: %', failed
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;

    -- one set of secrets, a copy on every node
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'vote_guard.secrets'::pg_catalog.regclass) THEN
        PERFORM pg_catalog.create_reference_table('vote_guard.secrets');
    END IF;

    -- a TRUNCATE of a votes shard empties the counters shard beside it
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) 'vote_guard.votes'::pg_catalog.regclass) THEN
        DROP TRIGGER votes_truncate ON vote_guard.votes;
        CREATE TRIGGER votes_truncate
            AFTER TRUNCATE ON vote_guard.votes
            FOR EACH STATEMENT EXECUTE FUNCTION vote_guard.votes_truncate_shard();
        ALTER TABLE vote_guard.votes ENABLE ALWAYS TRIGGER votes_truncate;
    END IF;

    -- and the contest_counters shard beside it (1.1; also on tables that
    -- were distributed before, where Citus creates it on every shard)
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                    WHERE g.tgrelid OPERATOR(pg_catalog.=) 'vote_guard.votes'::pg_catalog.regclass
                      AND g.tgname OPERATOR(pg_catalog.=) 'votes_truncate_places') THEN
        CREATE TRIGGER votes_truncate_places
            AFTER TRUNCATE ON vote_guard.votes
            FOR EACH STATEMENT EXECUTE FUNCTION vote_guard.votes_truncate_places_shard();
        ALTER TABLE vote_guard.votes ENABLE ALWAYS TRIGGER votes_truncate_places;
    END IF;

    -- a contest's rows live together: contests by id, the others by contest_id
    FOREACH t IN ARRAY ARRAY['vote_guard.contests'::pg_catalog.regclass,
                             'vote_guard.entries'::pg_catalog.regclass,
                             'vote_guard.counters'::pg_catalog.regclass,
                             'vote_guard.contest_counters'::pg_catalog.regclass,
                             'vote_guard.votes'::pg_catalog.regclass] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                        WHERE p.logicalrelid OPERATOR(pg_catalog.=) t) THEN
            IF t OPERATOR(pg_catalog.=) 'vote_guard.contests'::pg_catalog.regclass THEN
                PERFORM pg_catalog.create_distributed_table(t, 'id');
            ELSE
                PERFORM pg_catalog.create_distributed_table(t, 'contest_id',
                                                            colocate_with := 'vote_guard.contests');
            END IF;
        END IF;
    END LOOP;

    -- a call runs whole on the node of its contest's shard
    FOREACH f IN ARRAY ARRAY[
        'vote_guard.cast_vote(bigint, bigint, inet, text, text, text)'::pg_catalog.regprocedure,
        'vote_guard.change_vote(bigint, bigint, text, bigint)'::pg_catalog.regprocedure,
        'vote_guard.retract_vote(bigint, text, bigint)'::pg_catalog.regprocedure,
        'vote_guard.results(bigint)'::pg_catalog.regprocedure] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                        WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
                          AND o.objid OPERATOR(pg_catalog.=) f
                          AND o.distribution_argument_index IS NOT NULL) THEN
            PERFORM pg_catalog.create_distributed_function(f, 'contest_id',
                                                           colocate_with := 'vote_guard.contests',
                                                           force_delegation := true);
        END IF;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION vote_guard.distribute() FROM PUBLIC;

COMMENT ON FUNCTION vote_guard.distribute() IS
'Citus coordinator: secrets as a reference table, contests, entries, counters, contest_counters and votes distributed by contest, the vote functions delegated to the contest''s node; idempotent';

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

------------------------------------------------------------------------------
-- Citus (issue 11): a node added after distribute() gets its id ranges.
--
-- On a node that joins after the tables are distributed, Citus's metadata
-- marks vote_guard's sequences as those of distributed tables, and its
-- utility hook refuses ALTER SEQUENCE on them ("Altering a distributed
-- sequence is currently not supported"): distribute() called again after
-- citus_add_node failed there.  The sequences are the node's own (every
-- node has the extension's), so citus_prepare_node() alters them with
-- Citus's DDL propagation off.  Without Citus the setting is a placeholder
-- nothing reads.
------------------------------------------------------------------------------

ALTER FUNCTION vote_guard.citus_prepare_node() SET citus.enable_ddl_propagation = off;
