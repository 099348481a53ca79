--
-- hashing: vote_guard.hmac_sha256 against RFC 4231, and the keyed voter keys
-- ip_key / email_key (compared, never printed: they depend on the random
-- secrets of this installation).
--
\set VERBOSITY terse

-- RFC 4231, section 4: HMAC-SHA-256 test cases 1 to 7
CREATE TEMP TABLE rfc4231 (tc int, key bytea, data bytea, expected text);
INSERT INTO rfc4231 VALUES
 (1, decode(repeat('0b', 20), 'hex'), 'Hi There'::bytea,
  'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'),
 (2, 'Jefe'::bytea, 'what do ya want for nothing?'::bytea,
  '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'),
 (3, decode(repeat('aa', 20), 'hex'), decode(repeat('dd', 50), 'hex'),
  '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'),
 (4, decode('0102030405060708090a0b0c0d0e0f10111213141516171819', 'hex'),
  decode(repeat('cd', 50), 'hex'),
  '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'),
 -- case 5: the RFC gives only the first 128 bits (truncated output)
 (5, decode(repeat('0c', 20), 'hex'), 'Test With Truncation'::bytea,
  'a3b6167473100ee06e0c796c2955552b'),
 -- cases 6 and 7: a 131-byte key, longer than the block, is hashed first
 (6, decode(repeat('aa', 131), 'hex'),
  'Test Using Larger Than Block-Size Key - Hash Key First'::bytea,
  '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'),
 (7, decode(repeat('aa', 131), 'hex'),
  ('This is a test using a larger than block-size key and a larger than '
   'block-size data. The key needs to be hashed before being used by the '
   'HMAC algorithm.')::bytea,
  '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2');

SELECT tc, octet_length(key) AS key_len, octet_length(data) AS data_len,
       octet_length(mac) AS mac_len,
       CASE WHEN tc = 5 THEN encode(substring(mac FROM 1 FOR 16), 'hex')
            ELSE encode(mac, 'hex') END AS mac,
       CASE WHEN tc = 5 THEN encode(substring(mac FROM 1 FOR 16), 'hex')
            ELSE encode(mac, 'hex') END = expected AS matches_rfc
  FROM rfc4231, LATERAL vote_guard.hmac_sha256(data, key) AS mac
 ORDER BY tc;

-- one query keeps its keyed context while the key repeats and re-keys it
-- when the key changes: every vector three times, keys alternating
SELECT count(*) AS macs,
       bool_and(CASE WHEN tc = 5 THEN encode(substring(mac FROM 1 FOR 16), 'hex')
                     ELSE encode(mac, 'hex') END = expected) AS all_match
  FROM (SELECT r.* FROM rfc4231 r, generate_series(1, 3) AS i ORDER BY i, tc) AS x,
       LATERAL vote_guard.hmac_sha256(x.data, x.key) AS mac;

-- empty key, empty data, and keys at the block size (64) and one over
SELECT label, encode(mac, 'hex') AS mac, encode(mac, 'hex') = expected AS ok
  FROM (VALUES
    ('empty key, empty data', vote_guard.hmac_sha256('', ''),
     'b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad'),
    ('key "key", empty data', vote_guard.hmac_sha256('', 'key'),
     '5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0'),
    ('empty key, data "data"', vote_guard.hmac_sha256('data', ''),
     'e528c4d99e6177f5841f712a143b90843299a4aa181a06501422d9ca862bd2a5'),
    ('64-byte key', vote_guard.hmac_sha256('x', decode(repeat('11', 64), 'hex')),
     '583812b1fafb74c0758058316df305bda81c05674df3313f9e2c792f1a2299c1'),
    ('65-byte key', vote_guard.hmac_sha256('x', decode(repeat('11', 65), 'hex')),
     '30f40b537a83dcaef919574f23febffe46fc24394f981ea945cb39f4f0024992')
  ) AS t(label, mac, expected);

-- data and key are not interchangeable
SELECT vote_guard.hmac_sha256('a', 'b') <> vote_guard.hmac_sha256('b', 'a') AS order_matters;

-- STRICT: NULL in, NULL out
SELECT vote_guard.hmac_sha256(NULL, 'key') IS NULL AS null_data,
       vote_guard.hmac_sha256('data', NULL) IS NULL AS null_key,
       vote_guard.hmac_sha256(NULL, NULL) IS NULL AS both_null;

--
-- ip_key and email_key
--
-- contests a and b: default prefixes (IPv4 /32, IPv6 /64);
-- contest w: wide prefixes (IPv4 /24, IPv6 /48)
SELECT vote_guard.create_contest('hashing a') AS ca \gset
SELECT vote_guard.create_contest('hashing b') AS cb \gset
SELECT vote_guard.create_contest('hashing w', ipv4_prefix => 24, ipv6_prefix => 48) AS cw \gset

-- same voter, same key; keys are 16 bytes (HMAC-SHA-256 truncated to 128 bits)
SELECT vote_guard.ip_key(:ca, '192.0.2.1') = vote_guard.ip_key(:ca, '192.0.2.1') AS ip_stable,
       vote_guard.email_key(:ca, 'voter@example.com')
         = vote_guard.email_key(:ca, 'voter@example.com') AS email_stable,
       octet_length(vote_guard.ip_key(:ca, '192.0.2.1')) AS ip4_len,
       octet_length(vote_guard.ip_key(:ca, '2001:db8::1')) AS ip6_len,
       octet_length(vote_guard.email_key(:ca, 'voter@example.com')) AS email_len;

-- default prefixes: IPv4 /32, IPv4-mapped IPv6 is IPv4, IPv6 /64
SELECT label, vote_guard.ip_key(:ca, a::inet) = vote_guard.ip_key(:ca, b::inet) AS same_key
  FROM (VALUES
    ('IPv4 vs IPv4-mapped IPv6',      '192.0.2.1',       '::ffff:192.0.2.1'),
    ('IPv4 host/32 notation',         '192.0.2.1',       '192.0.2.1/32'),
    ('two IPv4 addresses',            '192.0.2.1',       '192.0.2.2'),
    ('IPv4 vs IPv4-compatible IPv6',  '192.0.2.1',       '::192.0.2.1'),
    ('IPv6 in one /64',               '2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:ffff'),
    ('IPv6 host/128 notation',        '2001:db8:1:2::1', '2001:db8:1:2::1/128'),
    ('IPv6 in different /64',         '2001:db8:1:2::1', '2001:db8:1:3::1'),
    ('IPv6 in different /48',         '2001:db8:1:2::1', '2001:db8:2:2::1')
  ) AS t(label, a, b);

-- contest with ipv4_prefix 24 and ipv6_prefix 48
SELECT label, vote_guard.ip_key(:cw, a::inet) = vote_guard.ip_key(:cw, b::inet) AS same_key
  FROM (VALUES
    ('IPv4 in one /24',               '192.0.2.1',       '192.0.2.254'),
    ('IPv4-mapped in the same /24',   '192.0.2.1',       '::ffff:192.0.2.77'),
    ('IPv4 in different /24',         '192.0.2.1',       '192.0.3.1'),
    ('IPv6 in one /48, other /64',    '2001:db8:1:2::1', '2001:db8:1:ffff::1'),
    ('IPv6 in different /48',         '2001:db8:1:2::1', '2001:db8:2:2::1')
  ) AS t(label, a, b);

-- keys of one voter differ between contests (cannot be linked)
SELECT vote_guard.ip_key(:ca, '192.0.2.1') <> vote_guard.ip_key(:cb, '192.0.2.1') AS ip_a_b_differ,
       vote_guard.ip_key(:ca, '2001:db8::1') <> vote_guard.ip_key(:cb, '2001:db8::1') AS ip6_a_b_differ,
       vote_guard.ip_key(:ca, '198.51.100.1') <> vote_guard.ip_key(:cw, '198.51.100.1') AS ip_a_w_differ,
       vote_guard.email_key(:ca, 'voter@example.com')
         <> vote_guard.email_key(:cb, 'voter@example.com') AS email_a_b_differ;

-- one query, contests alternating row by row: each row gets its own
-- contest's prefixes and keys (the functions keep the last contest's
-- settings for the query)
SELECT t.n, t.c = :cw AS wide,
       vote_guard.ip_key(t.c, '192.0.2.1') = vote_guard.ip_key(t.c, '192.0.2.200') AS same_24,
       vote_guard.ip_key(t.c, '192.0.2.1') = CASE WHEN t.c = :cw THEN w.k ELSE a.k END AS own_key,
       vote_guard.email_key(t.c, 'voter@example.com') = CASE WHEN t.c = :cw THEN w.e ELSE a.e END AS own_email_key
  FROM (VALUES (1, :ca), (2, :cw), (3, :cw), (4, :ca), (5, :cw)) AS t(n, c),
       (SELECT vote_guard.ip_key(:ca, '192.0.2.1') AS k, vote_guard.email_key(:ca, 'voter@example.com') AS e) a,
       (SELECT vote_guard.ip_key(:cw, '192.0.2.1') AS k, vote_guard.email_key(:cw, 'voter@example.com') AS e) w
 ORDER BY t.n;
-- a missing contest after good rows is still an error
SELECT count(vote_guard.ip_key(c, '192.0.2.1'))
  FROM (VALUES (:ca), (:ca), (9223372036854775807)) AS t(c);

-- e-mail keys are taken from the normalised address
SELECT label, vote_guard.email_key(:ca, a) = vote_guard.email_key(:ca, b) AS same_key
  FROM (VALUES
    ('case and blanks',         'Voter@Example.com',     '  voter@example.COM '),
    ('+tag',                    'voter+news@example.com', 'voter@example.com'),
    ('gmail dots, googlemail',  'first.last@gmail.com',  'FirstLast@googlemail.com'),
    ('dots elsewhere are kept', 'first.last@example.com', 'firstlast@example.com'),
    ('two voters',              'one@example.com',       'two@example.com')
  ) AS t(label, a, b);

-- a malformed e-mail has no key; NULL in, NULL out
SELECT vote_guard.email_key(:ca, 'not-an-email') IS NULL AS malformed,
       vote_guard.email_key(:ca, 'a@b@example.com') IS NULL AS two_at,
       vote_guard.email_key(:ca, '') IS NULL AS empty,
       vote_guard.email_key(:ca, NULL) IS NULL AS null_email,
       vote_guard.ip_key(:ca, NULL) IS NULL AS null_ip,
       vote_guard.ip_key(NULL, '192.0.2.1') IS NULL AS null_contest;

-- an address with a netmask is not a voter: error
SELECT vote_guard.ip_key(:ca, '10.0.0.0/8');
SELECT vote_guard.ip_key(:ca, '192.0.2.1/24');
SELECT vote_guard.ip_key(:ca, '::/64');
SELECT vote_guard.ip_key(:ca, '::ffff:192.0.2.0/120');

-- no such contest: error
SELECT vote_guard.ip_key(9223372036854775807, '192.0.2.1');
SELECT vote_guard.email_key(9223372036854775807, 'voter@example.com');

-- the keys are exactly what cast_vote stores
SELECT vote_guard.add_entry(:cw, 1, 'only entry');
SELECT success, error_code
  FROM vote_guard.cast_vote(:cw, 1, '::ffff:198.51.100.7', NULL, 'Some.One+x@Example.com');
SELECT v.ip_key = vote_guard.ip_key(:cw, '198.51.100.200') AS ip_key_stored,
       v.email_key = vote_guard.email_key(:cw, 'some.one@example.com') AS email_key_stored,
       v.user_id IS NULL AS no_user
  FROM vote_guard.votes v
 WHERE v.contest_id = :cw;

-- and neither the raw address nor the raw e-mail is stored anywhere in the row
SELECT count(*) AS rows_with_raw_values
  FROM vote_guard.votes v
 WHERE v.contest_id = :cw
   AND (v::text LIKE '%198.51.100%' OR v::text ILIKE '%some%');

DROP TABLE rfc4231;
