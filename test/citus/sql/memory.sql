--
-- A worker backend's memory stays flat under a stream of duplicate votes.
-- A duplicate runs a kept statement (the voter's votes) on a distributed
-- table; with a generic plan Citus deparsed its shard query into the plan's
-- memory on every call, freed only with the plan (about 3 MB a second per
-- backend in a storm).  The kept plans are custom with Citus (vg_utils.c).
--
SELECT vote_guard.create_contest('memory') AS cm \gset
SELECT vote_guard.add_entry(:cm, 1) IS NOT NULL AS added;
SELECT n.nodename AS mhost, n.nodeport AS mport
  FROM pg_catalog.pg_dist_placement p JOIN pg_catalog.pg_dist_node n USING (groupid)
 WHERE p.shardid = pg_catalog.get_shard_id_for_distribution_column('vote_guard.contests', :cm) \gset

-- on the contest's worker: one vote, then the same voter 3000 times
\c regression - :mhost :mport
SELECT error_code FROM vote_guard.cast_vote(:cm, 1, '192.0.2.1');
SELECT error_code FROM vote_guard.cast_vote(:cm, 1, '192.0.2.1');
SELECT pg_catalog.set_config('vg.contest', :'cm', false) IS NOT NULL AS set;
SELECT pg_catalog.sum(total_bytes) AS before FROM pg_catalog.pg_backend_memory_contexts \gset
DO $$
BEGIN
    FOR i IN 1 .. 3000 LOOP
        PERFORM vote_guard.cast_vote(current_setting('vg.contest')::bigint, 1, '192.0.2.1');
    END LOOP;
END
$$;
SELECT pg_catalog.count(*) AS votes FROM vote_guard.votes WHERE contest_id = :cm;
-- 3000 calls: less than 1 MB in all (about 20 kB measured; the leak took
-- 2 to 3 kB a call)
SELECT pg_catalog.sum(total_bytes) - :before < 1024 * 1024 AS memory_flat
  FROM pg_catalog.pg_backend_memory_contexts;
