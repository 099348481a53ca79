-- ceiling: the vote's row alone, as floor writes it, and nothing else: no
-- counter, no hashing, no check.  No design that also counts can go faster,
-- so it shows how far the ratios of the others can go on this machine.
\set c :cbase + random(0, :ncontests - 1)
\set e random(1, :nentries)
\set voter random(1, 4294967295)
INSERT INTO bench_floor.votes (contest_id, entry_id, ip_key, user_id, email_key)
VALUES (:c::bigint, :e::bigint,
        decode(lpad(to_hex(:voter::bigint), 64, '0'), 'hex'),
        'u' || :voter::text,
        decode(lpad(to_hex(:voter::bigint), 64, 'f'), 'hex'))
ON CONFLICT DO NOTHING;
