--
-- Per-call cost of the hashing functions over :n rows, best of 3 runs each,
-- minus a baseline query that builds the same arguments.  psql -v n=... -v
-- contest=... (a contest id, for ip_key/email_key; run as superuser).
--
\set ON_ERROR_STOP on
SET jit = off;
\set key '\\xabababababababababababababababababababababababababababababababab'
CREATE TEMP TABLE m (k text PRIMARY KEY, ns float8);
INSERT INTO m VALUES
 ('base_bytea', bench.best_ns(format($q$SELECT count(int8send(g)) FROM generate_series(1, %s) g$q$, :n))),
 ('vg_hmac',    bench.best_ns(format($q$SELECT count(vote_guard.hmac_sha256(int8send(g), %L::bytea)) FROM generate_series(1, %s) g$q$, :'key', :n))),
 ('pgc_hmac',   bench.best_ns(format($q$SELECT count(public.hmac(int8send(g), %L::bytea, 'sha256')) FROM generate_series(1, %s) g$q$, :'key', :n))),
 ('base_inet',  bench.best_ns(format($q$SELECT count('0.0.0.0'::inet + g) FROM generate_series(1, %s) g$q$, :n))),
 ('vg_ip',      bench.best_ns(format($q$SELECT count(vote_guard.ip_key(%s, '0.0.0.0'::inet + g)) FROM generate_series(1, %s) g$q$, :contest, :n))),
 ('pgc_ip',     bench.best_ns(format($q$SELECT count(public.hmac(convert_to(host('0.0.0.0'::inet + g), 'UTF8'), %L::bytea, 'sha256')) FROM generate_series(1, %s) g$q$, :'key', :n))),
 ('base_email', bench.best_ns(format($q$SELECT count('v' || g || '@example.com') FROM generate_series(1, %s) g$q$, :n))),
 ('vg_email',   bench.best_ns(format($q$SELECT count(vote_guard.email_key(%s, 'v' || g || '@example.com')) FROM generate_series(1, %s) g$q$, :contest, :n))),
 ('pgc_email',  bench.best_ns(format($q$SELECT count(public.hmac(convert_to(lower(btrim('v' || g || '@example.com')), 'UTF8'), %L::bytea, 'sha256')) FROM generate_series(1, %s) g$q$, :'key', :n)));

\pset footer off
\pset border 1
WITH c AS (
    SELECT x.what, x.vg_k, x.pgc_k, x.base_k
      FROM (VALUES (1, 'hmac    data, 32-byte key', 'vg_hmac', 'pgc_hmac', 'base_bytea'),
                   (2, 'ip key  (pgcrypto: hmac(host(ip)))', 'vg_ip', 'pgc_ip', 'base_inet'),
                   (3, 'e-mail key  (pgcrypto: hmac(lower(btrim(e))))', 'vg_email', 'pgc_email', 'base_email'))
           AS x(ord, what, vg_k, pgc_k, base_k)
     ORDER BY ord)
SELECT c.what AS "per call (:n rows, best of 3, baseline subtracted)",
       round(((v.ns - b.ns) / :n)::numeric, 0) AS "vote_guard ns",
       round(((p.ns - b.ns) / :n)::numeric, 0) AS "pgcrypto ns",
       round(((v.ns - b.ns) / nullif(p.ns - b.ns, 0))::numeric, 2) AS "ratio vg/pgcrypto",
       round((b.ns / :n)::numeric, 0) AS "baseline ns"
  FROM c
  JOIN m v ON v.k = c.vg_k
  JOIN m p ON p.k = c.pgc_k
  JOIN m b ON b.k = c.base_k;
