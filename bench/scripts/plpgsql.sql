-- plpgsql: the classic SECURITY DEFINER function (bench/setup.sql).
\set c :cbase + random(0, :ncontests - 1)
\set e random(1, :nentries)
\set voter random(1, 4294967295)
SELECT * FROM bench_plpgsql.cast_vote(:c::bigint, :e::bigint,
    '0.0.0.0'::inet + :voter::bigint, 'u' || :voter::text,
    'v' || :voter::text || '@example.com');
