-- floor: the same rows in one bare statement.  Keys are 32 bytes made
-- cheaply from the voter number (no hashing), the counter moves in the same
-- statement.  -D cbase, ncontests, nentries choose the contests.
\set c :cbase + random(0, :ncontests - 1)
\set e random(1, :nentries)
\set voter random(1, 4294967295)
WITH v AS (
    INSERT INTO bench_floor.votes (contest_id, entry_id, ip_key, user_id, email_key)
    VALUES (:c::bigint, :e::bigint,
            decode(lpad(to_hex(:voter::bigint), 64, '0'), 'hex'),
            'u' || :voter::text,
            decode(lpad(to_hex(:voter::bigint), 64, 'f'), 'hex'))
    ON CONFLICT DO NOTHING
    RETURNING contest_id, entry_id)
UPDATE bench_floor.entries e SET votes = e.votes + 1
  FROM v
 WHERE e.contest_id = v.contest_id AND e.entry_id = v.entry_id
RETURNING e.votes;
