-- seeds: a limited claim as usually written, one statement: take one of the
-- remaining places with a conditional UPDATE, insert the claim if it got one.
\set c :cbase + random(0, :ncontests - 1)
\set e random(1, :nentries)
\set voter random(1, 4294967295)
WITH place AS (
    UPDATE bench_seeds.entries SET remaining = remaining - 1, votes = votes + 1
     WHERE contest_id = :c::bigint AND entry_id = :e::bigint AND remaining > 0
    RETURNING contest_id, entry_id)
INSERT INTO bench_seeds.votes (contest_id, entry_id, ip_key, user_id, email_key)
SELECT contest_id, entry_id,
       decode(lpad(to_hex(:voter::bigint), 64, '0'), 'hex'),
       'u' || :voter::text,
       decode(lpad(to_hex(:voter::bigint), 64, 'f'), 'hex')
  FROM place;
