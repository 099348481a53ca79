-- naive: check, then write, from the client: five autocommit round trips.
-- The application computes the keys itself (cheap stand-ins, as in floor).
\set c :cbase + random(0, :ncontests - 1)
\set e random(1, :nentries)
\set voter random(1, 4294967295)
SELECT EXISTS (SELECT 1 FROM bench_naive.votes WHERE contest_id = :c::bigint
                  AND ip_key = decode(lpad(to_hex(:voter::bigint), 64, '0'), 'hex'))::int AS ip_taken
\gset
SELECT EXISTS (SELECT 1 FROM bench_naive.votes WHERE contest_id = :c::bigint
                  AND user_id = 'u' || :voter::text)::int AS user_taken
\gset
SELECT EXISTS (SELECT 1 FROM bench_naive.votes WHERE contest_id = :c::bigint
                  AND email_key = decode(lpad(to_hex(:voter::bigint), 64, 'f'), 'hex'))::int AS email_taken
\gset
\if :ip_taken + :user_taken + :email_taken = 0
INSERT INTO bench_naive.votes (contest_id, entry_id, ip_key, user_id, email_key)
VALUES (:c::bigint, :e::bigint,
        decode(lpad(to_hex(:voter::bigint), 64, '0'), 'hex'),
        'u' || :voter::text,
        decode(lpad(to_hex(:voter::bigint), 64, 'f'), 'hex'));
UPDATE bench_naive.entries SET votes = votes + 1
 WHERE contest_id = :c::bigint AND entry_id = :e::bigint
RETURNING votes;
\endif
