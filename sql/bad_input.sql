--
-- bad_input: arguments outside the contract's limits are invalid_input
-- (400) rows, never errors, and write nothing.  Argument checks come before
-- any table is read, so they win over every other code.
--
\set VERBOSITY terse
\set R 'success, error_code, http_status, vote_count, vote_id IS NOT NULL AS has_vote_id, retry_at, replayed'

CREATE TEMP VIEW state AS
SELECT (SELECT count(*) FROM vote_guard.votes) AS votes,
       (SELECT md5(coalesce(string_agg(v::text, ';' ORDER BY v.contest_id, v.vote_id), ''))
          FROM vote_guard.votes v) AS votes_md5,
       (SELECT count(*) FROM vote_guard.counters) AS counter_rows,
       (SELECT md5(coalesce(string_agg(k::text, ';' ORDER BY k.contest_id, k.entry_id, k.slot), ''))
          FROM vote_guard.counters k) AS counters_md5;

SELECT vote_guard.create_contest('bad_input') AS c \gset
SELECT vote_guard.add_entry(:c, 1, 'one');
-- one accepted vote, so that request_id 'req-known' exists
SELECT :R FROM vote_guard.cast_vote(:c, 1, '192.0.2.1', 'known', 'known@example.com', 'req-known');

CREATE TEMP TABLE before AS SELECT * FROM state;

-- every call below is rejected with invalid_input; the other arguments are
-- those of a fresh, valid voter
SELECT t.label, r.success, r.error_code, r.http_status, r.vote_count,
       r.vote_id IS NOT NULL AS has_vote_id, r.retry_at, r.replayed
  FROM (VALUES
    (1,  'contest_id NULL',       NULL::bigint, 1::bigint, '198.51.100.1'::inet, 'fresh'::text, 'fresh@example.com'::text, NULL::text),
    (2,  'contest_id 0',          0,            1,         '198.51.100.1',       'fresh',       'fresh@example.com',       NULL),
    (3,  'contest_id -1',         -1,           1,         '198.51.100.1',       'fresh',       'fresh@example.com',       NULL),
    (4,  'entry_id NULL',         :c,           NULL,      '198.51.100.1',       'fresh',       'fresh@example.com',       NULL),
    (5,  'entry_id 0',            :c,           0,         '198.51.100.1',       'fresh',       'fresh@example.com',       NULL),
    (6,  'entry_id -1',           :c,           -1,        '198.51.100.1',       'fresh',       'fresh@example.com',       NULL),
    (7,  'both ids minimal',      -9223372036854775808, -9223372036854775808,
                                                           '198.51.100.1',       'fresh',       'fresh@example.com',       NULL),
    (8,  'ip 10.0.0.0/8',         :c,           1,         '10.0.0.0/8',         'fresh',       'fresh@example.com',       NULL),
    (9,  'ip 192.0.2.1/24',       :c,           1,         '192.0.2.1/24',       'fresh',       'fresh@example.com',       NULL),
    (10, 'ip ::/64',              :c,           1,         '::/64',              'fresh',       'fresh@example.com',       NULL),
    (11, 'ip ::ffff:0:0/96',      :c,           1,         '::ffff:0:0/96',      'fresh',       'fresh@example.com',       NULL),
    (12, 'ip 0.0.0.0/0',          :c,           1,         '0.0.0.0/0',          'fresh',       'fresh@example.com',       NULL),
    (13, 'user_id empty',         :c,           1,         '198.51.100.1',       '',            'fresh@example.com',       NULL),
    (14, 'user_id 257 chars',     :c,           1,         '198.51.100.1',       repeat('u', 257), 'fresh@example.com',    NULL),
    (15, 'user_id 257 non-ASCII', :c,           1,         '198.51.100.1',       repeat(chr(233), 257), 'fresh@example.com', NULL),
    (16, 'request_id empty',      :c,           1,         '198.51.100.1',       'fresh',       'fresh@example.com',       ''),
    (17, 'request_id 257 chars',  :c,           1,         '198.51.100.1',       'fresh',       'fresh@example.com',       repeat('r', 257)),
    (18, 'email empty',           :c,           1,         '198.51.100.1',       'fresh',       '',                        NULL),
    (19, 'email blanks only',     :c,           1,         '198.51.100.1',       'fresh',       '   ',                     NULL),
    (20, 'email 255 chars',       :c,           1,         '198.51.100.1',       'fresh',
         repeat('a', 64) || '@' || repeat('b', 63) || '.' || repeat('c', 63) || '.' || repeat('d', 58) || '.com', NULL),
    (21, 'email without @',       :c,           1,         '198.51.100.1',       'fresh',       'fresh.example.com',       NULL),
    (22, 'email with two @',      :c,           1,         '198.51.100.1',       'fresh',       'fresh@@example.com',      NULL),
    (23, 'email quoted',          :c,           1,         '198.51.100.1',       'fresh',       '"fresh"@example.com',     NULL),
    (24, 'email non-ASCII',       :c,           1,         '198.51.100.1',       'fresh',       'fr' || chr(233) || 'sh@example.com', NULL),
    (25, 'email literal',         :c,           1,         '198.51.100.1',       'fresh',       'fresh@[192.0.2.1]',       NULL),
    (26, 'no identity at all',    :c,           1,         NULL,                 NULL,          NULL,                      NULL),
    (27, 'only a request_id',     :c,           1,         NULL,                 NULL,          NULL,                      'req-fresh'),
    -- argument checks come first: no contest_not_found, no replay, no
    -- duplicate, however bad the rest is
    (28, 'bad ip, no contest',    9223372036854775807, 1,  '10.0.0.0/8',         NULL,          NULL,                      NULL),
    (29, 'bad email, known req',  :c,           1,         '192.0.2.1',          'known',       'known@',                  'req-known'),
    (30, 'bad user, known voter', :c,           1,         '192.0.2.1',          '',            'known@example.com',       NULL),
    (31, 'good ip, bad email',    :c,           1,         '198.51.100.1',       NULL,          'not-an-email',            NULL)
  ) AS t(n, label, contest_id, entry_id, ip, user_id, email, request_id),
  LATERAL vote_guard.cast_vote(t.contest_id, t.entry_id, t.ip, t.user_id, t.email, t.request_id) AS r
 ORDER BY t.n;

SELECT s::text = b::text AS nothing_written FROM state s, before b;
DROP TABLE before;

-- the limits themselves are accepted: 256-character user_id and request_id
-- (characters, not bytes), 254-character e-mail
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.2', repeat('u', 256), NULL, repeat('r', 256));
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.3', repeat(chr(233), 256), NULL, repeat(chr(233), 256));
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.4', 'u-254', repeat('a', 64) || '@' || repeat('b', 63)
       || '.' || repeat('c', 63) || '.' || repeat('d', 57) || '.com');
-- and the 1-character minimum
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.5', 'x', 'x@y.zz', 'r');
-- a host address may be written with its full mask
SELECT :R FROM vote_guard.cast_vote(:c, 1, '198.51.100.6/32');
SELECT :R FROM vote_guard.cast_vote(:c, 1, '2001:db8:6::1/128');

SELECT length(user_id) AS user_len, length(request_id) AS request_len
  FROM vote_guard.votes WHERE contest_id = :c AND user_id IS NOT NULL
 ORDER BY vote_id;

SELECT * FROM vote_guard.results(:c);
SELECT * FROM vote_guard.verify(:c);

DROP VIEW state;
