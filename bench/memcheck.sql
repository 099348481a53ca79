--
-- Memory of one backend calling cast_vote :n times inside one statement
-- (one transaction).  psql -v n=...; run as superuser (reads
-- /proc/self/status).
--
-- The calls go to a contest of its own with n/10 entries: within one
-- transaction every vote adds a new version of its entry's counter row that
-- later lookups must step over, so few entries would make the statement
-- quadratic and measure that instead.
--
\set ON_ERROR_STOP on
SET jit = off;
SELECT vote_guard.create_contest('memcheck') AS cbase,
       1 AS ncontests,
       greatest(1000, :n / 10) AS nentries \gset
SELECT count(vote_guard.add_entry(:cbase, e)) AS entries_added
  FROM generate_series(1, :nentries) e \gset
SET application_name = 'vg_memcheck';
-- warm up: plans prepared, keys of every contest derived
SELECT count(*) FILTER (WHERE r.success) AS warm_ok
  FROM generate_series(1, 1000) g,
       LATERAL vote_guard.cast_vote(:cbase + g % :ncontests, 1 + (g / :ncontests) % :nentries,
                                    '0.0.0.0'::inet + g, 'm' || g, 'm' || g || '@example.com') r
\gset
SELECT * FROM bench.mem() \gset before_
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FILTER (WHERE r.success) AS ok, count(*) AS calls
  FROM generate_series(1001, 1000 + :n) g,
       LATERAL vote_guard.cast_vote(:cbase + g % :ncontests, 1 + (g / :ncontests) % :nentries,
                                    '0.0.0.0'::inet + g, 'm' || g, 'm' || g || '@example.com') r
\gset
SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 2) AS secs \gset
SELECT * FROM bench.mem() \gset after_
-- the same again, a tenth as many calls: memory that a first statement
-- needed is reused, so only a leak makes this one grow
SELECT greatest(:n / 10, 1) AS n2 \gset
SELECT count(*) FILTER (WHERE r.success) AS ok2
  FROM generate_series(2001 + :n, 2000 + :n + :n2) g,
       LATERAL vote_guard.cast_vote(:cbase + g % :ncontests, 1 + (g / :ncontests) % :nentries,
                                    '0.0.0.0'::inet + g, 'm' || g, 'm' || g || '@example.com') r
\gset
SELECT * FROM bench.mem() \gset again_
SELECT round(:secs * 1e6 / :calls, 1) AS us_per_call,
       pg_size_pretty(:before_ctx_bytes::bigint) AS ctx_before,
       pg_size_pretty(:after_ctx_bytes::bigint) AS ctx_after,
       pg_size_pretty(:after_ctx_bytes::bigint - :before_ctx_bytes) AS ctx_growth,
       pg_size_pretty(:again_ctx_bytes::bigint - :after_ctx_bytes) AS ctx_growth2,
       pg_size_pretty(:before_rss_anon_kb::bigint * 1024) AS anon_before,
       pg_size_pretty(:after_rss_anon_kb::bigint * 1024) AS anon_after,
       pg_size_pretty((:after_rss_anon_kb::bigint - :before_rss_anon_kb) * 1024) AS anon_growth,
       pg_size_pretty((:again_rss_anon_kb::bigint - :after_rss_anon_kb) * 1024) AS anon_growth2
\gset
\echo 'statement 1:' :calls 'calls over' :nentries 'entries, accepted' :ok '(warm-up before it: 1000 calls, accepted' :warm_ok '), ' :secs 's =' :us_per_call 'us per call'
\echo '  memory contexts (sum of total_bytes): before' :ctx_before ', after' :ctx_after ', growth' :ctx_growth
\echo '  RssAnon (private memory): before' :anon_before ', after' :anon_after ', growth' :anon_growth
\echo 'statement 2:' :n2 'more calls, accepted' :ok2
\echo '  growth: memory contexts' :ctx_growth2 ', RssAnon' :anon_growth2
\echo 'largest memory contexts after:'
SELECT name, pg_size_pretty(total_bytes) AS total
  FROM pg_backend_memory_contexts ORDER BY total_bytes DESC LIMIT 3;
