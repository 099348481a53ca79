--
-- vote_guard benchmark: schema for the variants (run once, as superuser, in
-- a fresh database).  Every variant writes the same rows; see bench/README.md.
--
--   vote_guard  the extension (vote_guard.cast_vote)
--   bench_floor the same rows written by one bare SQL statement
--   bench_plpgsql  the classic SECURITY DEFINER PL/pgSQL function (pgcrypto)
--   bench_naive tables for the client-side check-then-insert sequence
--
-- Contest ids are the same in every variant: :ncontests low-contention
-- contests of :nentries entries each, then one "hot" contest with one entry.
--
\set ON_ERROR_STOP on

CREATE EXTENSION vote_guard;
CREATE EXTENSION pgcrypto;          -- in public; PG 15: PUBLIC cannot create there

CREATE SCHEMA bench;

-- which contest ids the scripts use
CREATE TABLE bench.config (low_base bigint, low_count int, hot_id bigint, claim_id bigint);

DO $$
DECLARE
    first_id bigint;
    last_id  bigint;
    hot      bigint;
    i        int;
BEGIN
    FOR i IN 1 .. current_setting('bench.ncontests')::int LOOP
        last_id := vote_guard.create_contest('low ' || i);
        first_id := coalesce(first_id, last_id);
        PERFORM vote_guard.add_entry(last_id, e, 'entry ' || e)
           FROM generate_series(1, current_setting('bench.nentries')::int) e;
    END LOOP;
    IF last_id - first_id <> current_setting('bench.ncontests')::int - 1 THEN
        RAISE EXCEPTION 'contest ids are not contiguous: % .. %', first_id, last_id;
    END IF;
    hot := vote_guard.create_contest('hot');
    PERFORM vote_guard.add_entry(hot, 1, 'the hot entry');
    INSERT INTO bench.config
    VALUES (first_id, current_setting('bench.ncontests')::int, hot, hot + 1);
    -- limited claims: the hot entry again, with a capacity that a run does not use up
    IF vote_guard.create_contest('claim') <> hot + 1 THEN
        RAISE EXCEPTION 'the claim contest does not follow the hot one';
    END IF;
    PERFORM vote_guard.add_entry(hot + 1, 1, 'the hot entry, limited', capacity => 1000000000);
END
$$;

------------------------------------------------------------------------------
-- floor: vote_guard.votes' columns, identity and indexes (LIKE ... INCLUDING
-- ALL copies the PK and the partial unique indexes), a plain counter table,
-- no foreign key, no trigger, no hashing.
------------------------------------------------------------------------------
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.entries (
    contest_id bigint NOT NULL,
    entry_id   bigint NOT NULL,
    votes      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (contest_id, entry_id)
);
CREATE TABLE bench_floor.votes (LIKE vote_guard.votes INCLUDING ALL);
INSERT INTO bench_floor.entries (contest_id, entry_id)
SELECT contest_id, entry_id FROM vote_guard.entries;

------------------------------------------------------------------------------
-- plpgsql: what a careful engineer writes without the extension.  Its own
-- copies of the tables (same indexes; run.sh adds a foreign key from votes
-- to entries when vote_guard.votes has one, or as BENCH_FK says),
-- per-contest HMAC secrets, pgcrypto's hmac().
------------------------------------------------------------------------------
CREATE SCHEMA bench_plpgsql;
CREATE TABLE bench_plpgsql.contests (
    id           bigint PRIMARY KEY,
    name         text NOT NULL,
    opens_at     timestamptz NOT NULL DEFAULT now(),
    closes_at    timestamptz,
    ip_secret    bytea NOT NULL,
    email_secret bytea NOT NULL
);
CREATE TABLE bench_plpgsql.entries (
    contest_id bigint NOT NULL REFERENCES bench_plpgsql.contests ON DELETE CASCADE,
    entry_id   bigint NOT NULL,
    votes      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (contest_id, entry_id)
);
CREATE TABLE bench_plpgsql.votes (LIKE vote_guard.votes INCLUDING ALL);
INSERT INTO bench_plpgsql.contests (id, name, opens_at, ip_secret, email_secret)
SELECT id, name, opens_at, gen_random_bytes(32), gen_random_bytes(32)
  FROM vote_guard.contests;
INSERT INTO bench_plpgsql.entries (contest_id, entry_id)
SELECT contest_id, entry_id FROM vote_guard.entries;
REVOKE ALL ON ALL TABLES IN SCHEMA bench_plpgsql FROM PUBLIC;

CREATE FUNCTION bench_plpgsql.cast_vote(
    p_contest bigint, p_entry bigint, p_ip inet, p_user text, p_email text,
    OUT success boolean, OUT error_code text, OUT vote_count bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    c           record;
    v_email     text := lower(btrim(p_email));
    v_ip_key    bytea;
    v_email_key bytea;
BEGIN
    success := false;
    SELECT k.opens_at, k.closes_at, k.ip_secret, k.email_secret,
           EXISTS (SELECT 1 FROM bench_plpgsql.entries e
                    WHERE e.contest_id = k.id AND e.entry_id = p_entry) AS entry_exists
      INTO c
      FROM bench_plpgsql.contests k
     WHERE k.id = p_contest;
    IF NOT FOUND THEN
        error_code := 'contest_not_found';
        RETURN;
    END IF;
    IF now() < c.opens_at OR (c.closes_at IS NOT NULL AND now() >= c.closes_at) THEN
        error_code := 'contest_closed';
        RETURN;
    END IF;
    IF NOT c.entry_exists THEN
        error_code := 'entry_not_found';
        RETURN;
    END IF;

    v_ip_key := public.hmac(convert_to(host(p_ip), 'UTF8'), c.ip_secret, 'sha256');
    v_email_key := public.hmac(convert_to(v_email, 'UTF8'), c.email_secret, 'sha256');

    IF EXISTS (SELECT 1 FROM bench_plpgsql.votes v
                WHERE v.contest_id = p_contest AND v.ip_key = v_ip_key) THEN
        error_code := 'duplicate_ip';
    ELSIF EXISTS (SELECT 1 FROM bench_plpgsql.votes v
                   WHERE v.contest_id = p_contest AND v.user_id = p_user) THEN
        error_code := 'duplicate_user';
    ELSIF EXISTS (SELECT 1 FROM bench_plpgsql.votes v
                   WHERE v.contest_id = p_contest AND v.email_key = v_email_key) THEN
        error_code := 'duplicate_email';
    END IF;
    IF error_code IS NOT NULL THEN
        SELECT e.votes INTO vote_count FROM bench_plpgsql.entries e
         WHERE e.contest_id = p_contest AND e.entry_id = p_entry;
        RETURN;
    END IF;

    -- the unique indexes catch the race the checks above cannot
    INSERT INTO bench_plpgsql.votes (contest_id, entry_id, ip_key, user_id, email_key)
    VALUES (p_contest, p_entry, v_ip_key, p_user, v_email_key)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        error_code := 'duplicate';
        SELECT e.votes INTO vote_count FROM bench_plpgsql.entries e
         WHERE e.contest_id = p_contest AND e.entry_id = p_entry;
        RETURN;
    END IF;

    UPDATE bench_plpgsql.entries e SET votes = e.votes + 1
     WHERE e.contest_id = p_contest AND e.entry_id = p_entry
    RETURNING e.votes INTO vote_count;
    success := true;
    error_code := 'ok';
END
$$;

------------------------------------------------------------------------------
-- naive: the application checks, then writes, in five autocommit round
-- trips.  It relies on its checks, so the voter indexes are not unique (a
-- lost race shows up as a duplicate voter, counted after each run).  The
-- foreign key follows the same rule as plpgsql's.
------------------------------------------------------------------------------
CREATE SCHEMA bench_naive;
CREATE TABLE bench_naive.entries (
    contest_id bigint NOT NULL,
    entry_id   bigint NOT NULL,
    votes      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (contest_id, entry_id)
);
CREATE TABLE bench_naive.votes (
    LIKE vote_guard.votes INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS,
    PRIMARY KEY (contest_id, vote_id)
);
CREATE INDEX ON bench_naive.votes (contest_id, ip_key, window_no, ip_slot) WHERE ip_key IS NOT NULL;
CREATE INDEX ON bench_naive.votes (contest_id, user_id, window_no, user_slot) WHERE user_id IS NOT NULL;
CREATE INDEX ON bench_naive.votes (contest_id, email_key, window_no, email_slot) WHERE email_key IS NOT NULL;
CREATE INDEX ON bench_naive.votes (contest_id, request_id) WHERE request_id IS NOT NULL;
INSERT INTO bench_naive.entries (contest_id, entry_id)
SELECT contest_id, entry_id FROM vote_guard.entries;

------------------------------------------------------------------------------
-- seeds: the usual recipe for a limited claim, one statement: the
-- conditional UPDATE of the entry's remaining count (one hot row, held by
-- each claim until it commits) and the claim's INSERT (the same columns and
-- unique indexes as floor's).  Only for the claim contest.
------------------------------------------------------------------------------
CREATE SCHEMA bench_seeds;
CREATE TABLE bench_seeds.entries (
    contest_id bigint NOT NULL,
    entry_id   bigint NOT NULL,
    votes      bigint NOT NULL DEFAULT 0,
    remaining  bigint NOT NULL,
    PRIMARY KEY (contest_id, entry_id)
);
CREATE TABLE bench_seeds.votes (LIKE vote_guard.votes INCLUDING ALL);

------------------------------------------------------------------------------
-- helpers
------------------------------------------------------------------------------

-- every variant back to its starting state: empty votes tables, zero
-- counters.  TRUNCATE gives each table a new file whose size the planner
-- does not know yet (pg_class.reltuples -1, as after CREATE TABLE), while the
-- column statistics of the last ANALYZE stay.  run.sh fills the tables with
-- bench.prime()'s fixed data set, analyzes, and resets before every run, so
-- every run starts from the same statistics.  (Analyzing the empty tables
-- instead makes the planner trust that they are empty, and analyzing what
-- the previous run left makes the statistics depend on which run came
-- before: plans cached for a backend's life can then scan whole tables.)
CREATE PROCEDURE bench.reset()
LANGUAGE plpgsql AS $$
DECLARE
    cfg bench.config;
BEGIN
    SELECT * INTO cfg FROM bench.config;
    TRUNCATE vote_guard.votes RESTART IDENTITY;    -- its trigger empties counters
    TRUNCATE bench_floor.votes, bench_floor.entries,
             bench_plpgsql.votes, bench_plpgsql.entries,
             bench_naive.votes, bench_naive.entries,
             bench_seeds.votes, bench_seeds.entries RESTART IDENTITY;
    INSERT INTO bench_floor.entries (contest_id, entry_id)
    SELECT contest_id, entry_id FROM vote_guard.entries
     WHERE contest_id BETWEEN cfg.low_base AND cfg.claim_id;
    INSERT INTO bench_seeds.entries (contest_id, entry_id, remaining)
    SELECT contest_id, entry_id, 1000000000 FROM bench_floor.entries
     WHERE contest_id = cfg.claim_id;
    INSERT INTO bench_plpgsql.entries (contest_id, entry_id)
    SELECT contest_id, entry_id FROM bench_floor.entries;
    INSERT INTO bench_naive.entries (contest_id, entry_id)
    SELECT contest_id, entry_id FROM bench_floor.entries;
END
$$;

-- the data set behind every run's statistics: 20 votes for each entry of
-- the low-contention contests, 2000 for the hot entry, in every variant
CREATE PROCEDURE bench.prime()
LANGUAGE plpgsql AS $$
DECLARE
    cfg bench.config;
    s   text;
BEGIN
    SELECT * INTO cfg FROM bench.config;
    CREATE TEMP TABLE prime ON COMMIT DROP AS
    SELECT e.contest_id, e.entry_id,
           sha256(int8send(e.contest_id * 100000 + e.entry_id * 10000 + g)) AS ip_key,
           'p' || e.contest_id || '-' || e.entry_id || '-' || g AS user_id,
           sha256(convert_to('p' || e.contest_id || '-' || e.entry_id || '-' || g, 'UTF8')) AS email_key
      FROM bench_floor.entries e,
           generate_series(1, CASE WHEN e.contest_id = cfg.hot_id THEN 2000 ELSE 20 END) g;
    FOREACH s IN ARRAY ARRAY['vote_guard', 'bench_floor', 'bench_plpgsql', 'bench_naive', 'bench_seeds'] LOOP
        EXECUTE format('INSERT INTO %I.votes (contest_id, entry_id, ip_key, user_id, email_key)
                        SELECT contest_id, entry_id, ip_key, user_id, email_key FROM prime', s);
    END LOOP;
END
$$;

-- after a run: rows written, counter drift, duplicate voters
CREATE FUNCTION bench.check(variant text, OUT rows bigint, OUT drift bigint, OUT dups bigint)
LANGUAGE plpgsql AS $$
DECLARE
    s text := CASE variant WHEN 'cast_vote' THEN 'vote_guard'
                           WHEN 'claim' THEN 'vote_guard'
                           WHEN 'floor' THEN 'bench_floor'
                           WHEN 'floor_hot' THEN 'bench_floor'
                           WHEN 'ceiling' THEN 'bench_floor'
                           ELSE 'bench_' || variant END;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I.votes', s) INTO rows;
    IF variant = 'ceiling' THEN
        drift := NULL;              -- it keeps no counter
    ELSIF s = 'vote_guard' THEN
        SELECT coalesce(sum(abs(v.drift)), 0) INTO drift
          FROM vote_guard.contests c, LATERAL vote_guard.verify(c.id) v;
    ELSE
        EXECUTE format('SELECT (SELECT coalesce(sum(votes), 0) FROM %I.entries) - $1', s)
           INTO drift USING rows;
        drift := abs(drift);
    END IF;
    EXECUTE format($q$
        SELECT (SELECT count(*) FROM (SELECT 1 FROM %1$I.votes GROUP BY contest_id, ip_key HAVING count(*) > 1) a)
             + (SELECT count(*) FROM (SELECT 1 FROM %1$I.votes GROUP BY contest_id, user_id HAVING count(*) > 1) b)
             + (SELECT count(*) FROM (SELECT 1 FROM %1$I.votes GROUP BY contest_id, email_key HAVING count(*) > 1) c)
        $q$, s) INTO dups;
END
$$;

-- best of reps wall-clock runs of a query, in nanoseconds
CREATE FUNCTION bench.best_ns(q text, reps int DEFAULT 3)
RETURNS float8
LANGUAGE plpgsql AS $$
DECLARE
    t0   timestamptz;
    best float8 := 'Infinity';
BEGIN
    FOR i IN 1 .. reps LOOP
        t0 := clock_timestamp();
        EXECUTE q;
        best := least(best, extract(epoch FROM clock_timestamp() - t0) * 1e9);
    END LOOP;
    RETURN best;
END
$$;

-- this backend's memory: sum of its memory contexts, and from /proc
CREATE FUNCTION bench.mem(OUT ctx_bytes bigint, OUT rss_anon_kb bigint, OUT rss_kb bigint)
LANGUAGE sql AS $$
    SELECT (SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts),
           substring(s FROM 'RssAnon:\s+(\d+)')::bigint,
           substring(s FROM 'VmRSS:\s+(\d+)')::bigint
      FROM pg_read_file('/proc/self/status') AS s
$$;
