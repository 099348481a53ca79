--
-- normalize: vote_guard.normalize_email, the canonical form that e-mail keys
-- are computed from.  NULL means malformed.
--
-- non-ASCII input is built with chr(), so this file is plain ASCII
\pset null '(null)'

-- well-formed addresses
SELECT input, vote_guard.normalize_email(input) AS normalized
  FROM (VALUES
    ('user@example.com'),
    ('  User@Example.COM  '),                    -- trim, lower-case
    ('USER@EXAMPLE.COM'),
    ('user+tag@example.com'),                    -- +tag dropped
    ('user+tag+more@example.com'),
    ('user+@example.com'),                       -- empty tag
    ('first.last@example.com'),                  -- non-Gmail dots kept
    ('first.last@mail.gmail.com'),               -- not gmail.com: dots kept
    ('first.last@gmail.com'),                    -- Gmail dots dropped
    ('F.i.R.s.T+news@GMail.com'),
    ('first.last@googlemail.com'),               -- googlemail.com is gmail.com
    ('First.Last+x@GoogleMail.COM'),
    ('o''brien@example.com'),                    -- atext specials are fine
    ('a!#$%&*/=?^_`{|}~-b@example.com'),
    ('user-name_1@sub.example-domain.org'),
    ('a.b+c.d@gmail.com'),                       -- dots after + go with the tag
    ('a@b.co')
  ) AS t(input);

-- blanks of any kind around the address are trimmed
SELECT vote_guard.normalize_email(E'\t user@example.com\r\n') AS tabs_and_newlines,
       vote_guard.normalize_email(E'\f\x0buser@example.com ') AS formfeed_vtab;

-- malformed addresses: all NULL
SELECT label, vote_guard.normalize_email(input) AS normalized
  FROM (VALUES
    ('empty',                     ''),
    ('blanks only',               '   '),
    ('no @',                      'userexample.com'),
    ('two @',                     'user@@example.com'),
    ('two @ apart',               'a@b@example.com'),
    ('empty local part',          '@example.com'),
    ('empty domain',              'user@'),
    ('leading dot',               '.user@example.com'),
    ('trailing dot',              'user.@example.com'),
    ('double dot',                'us..er@example.com'),
    ('quoted local part',         '"user"@example.com'),
    ('quoted with blank',         '"us er"@example.com'),
    ('blank inside',              'us er@example.com'),
    ('non-ASCII local part',      'jos' || chr(233) || '@example.com'),
    ('non-ASCII domain',          'user@exampl' || chr(233) || '.com'),
    ('domain without dot',        'user@localhost'),
    ('label starts with -',       'user@-example.com'),
    ('label ends with -',         'user@example-.com'),
    ('empty label',               'user@example..com'),
    ('domain starts with dot',    'user@.example.com'),
    ('domain ends with dot',      'user@example.com.'),
    ('underscore in domain',      'user@exa_mple.com'),
    ('+tag only local part',      '+tag@example.com'),
    ('+tag only at gmail',        '+tag@gmail.com'),
    ('address literal',           'user@[192.0.2.1]'),
    ('IPv6 address literal',      'user@[IPv6:2001:db8::1]'),
    ('display name',              'User <user@example.com>'),
    ('local part of 65',          repeat('a', 65) || '@example.com'),
    ('domain label of 64',        'user@' || repeat('b', 64) || '.com')
  ) AS t(label, input);

-- NULL in, NULL out
SELECT vote_guard.normalize_email(NULL) IS NULL AS null_in_null_out;

-- length limits: 254 characters is the longest address (RFC 5321),
-- with a 64-character local part and labels of at most 63
SELECT length(input) AS len, vote_guard.normalize_email(input) IS NOT NULL AS accepted,
       vote_guard.normalize_email(input) = input AS unchanged
  FROM (VALUES
    (repeat('a', 64) || '@' || repeat('b', 63) || '.com'),
    (repeat('a', 64) || '@' || repeat('b', 63) || '.' || repeat('c', 63) || '.'
       || repeat('d', 57) || '.com'),
    (repeat('a', 64) || '@' || repeat('b', 63) || '.' || repeat('c', 63) || '.'
       || repeat('d', 58) || '.com'),
    (repeat('a', 10) || '@' || repeat('b', 63) || '.' || repeat('c', 63) || '.'
       || repeat('d', 63) || '.' || repeat('e', 63) || '.com')
  ) AS t(input)
 ORDER BY 1;

-- blanks around an address do not count towards its length
SELECT vote_guard.normalize_email('   ' || repeat('a', 64) || '@' || repeat('b', 63) || '.'
         || repeat('c', 63) || '.' || repeat('d', 57) || '.com   ') IS NOT NULL AS trimmed_254;

-- normalising is idempotent, and equal addresses normalise alike
SELECT bool_and(vote_guard.normalize_email(n) = n) AS idempotent
  FROM (SELECT vote_guard.normalize_email(x) AS n
          FROM unnest(ARRAY['  User@Example.COM', 'F.i.R.s.T+news@GMail.com',
                            'first.last@googlemail.com', 'first.last@example.com',
                            'o''brien@example.com']) AS x) AS s;

SELECT count(DISTINCT vote_guard.normalize_email(x)) AS distinct_voters
  FROM unnest(ARRAY['jane.doe@gmail.com', 'JaneDoe@gmail.com', 'j.a.n.e.d.o.e@googlemail.com',
                    'janedoe+votes@GMAIL.COM', ' janedoe@gmail.com ']) AS x;
