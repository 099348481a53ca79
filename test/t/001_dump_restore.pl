# vote_guard: a dumped and restored database still recognises its voters.
#
# The extension's tables are config tables: pg_dump saves their rows and a
# restore loads them after CREATE EXTENSION, which generates a fresh secret
# version 1 that the dumped version 1 must replace (BEFORE INSERT trigger on
# vote_guard.secrets).  The database is dumped in plain and custom format and
# restored with psql, pg_restore, pg_restore --single-transaction and
# pg_restore --jobs; each restored database must count, deduplicate, replay
# and number votes exactly as the original would.
#
# Secrets and keys are compared, never printed.

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump_restore');
$node->init;
$node->start;

my $src = 'vg_src';
$node->safe_psql('postgres', "CREATE DATABASE $src");

# Run a client program; pass when it exits 0 and prints no ERROR/WARNING.
# On failure, show the program's exact stderr.
sub run_client
{
	my ($name, @cmd) = @_;
	my ($out, $err) = ('', '');
	my $ran = IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	ok($ran, "$name: exit status 0")
	  or diag("command: @cmd\nexit status: " . ($? >> 8) . "\nstderr:\n$err");
	unlike($err, qr/\b(ERROR|WARNING|FATAL)\b/, "$name: no error or warning")
	  or diag("stderr:\n$err");
	return $ran;
}

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

# Fingerprint of every secret, never printed: compare with ok(), not is().
my $secrets_sql = q{
	SELECT string_agg(version || ':' || md5(ip_secret) || ':' || md5(email_secret),
	                  ',' ORDER BY version)
	  FROM vote_guard.secrets};

# Everything about the contests except nothing: all columns.
my $contests_sql = q{
	SELECT id, name, opens_at, closes_at, closed_at, dedupe_on, ipv4_prefix,
	       ipv6_prefix, require_user, secret_version, created_at
	  FROM vote_guard.contests ORDER BY id};

# The votes, keys included, as one digest (compared, not printed).
my $votes_sql = q{
	SELECT count(*) || ':' || md5(string_agg(v::text, ';' ORDER BY contest_id, vote_id))
	  FROM vote_guard.votes v};

########################################################################
# The source database
########################################################################

query($src, 'CREATE EXTENSION vote_guard');

# contest 1 on secret version 1, three entries
# contest 2 on version 1, /24 and /48 voters, ip and email only
# (rotation: version 2)
# contest 3 on version 2
# contest 4 on version 2, closed after two votes
# (rotation: version 3, used by no contest at dump time)
query(
	$src, q{
	SELECT vote_guard.create_contest('before rotation');
	SELECT vote_guard.add_entry(1, e, 'entry ' || e) FROM generate_series(1, 3) e;
	SELECT vote_guard.create_contest('prefixes', dedupe_on => '{ip,email}',
	                                 ipv4_prefix => 24, ipv6_prefix => 48);
	SELECT vote_guard.add_entry(2, 10, 'ten'), vote_guard.add_entry(2, 20, 'twenty');
	SELECT vote_guard.rotate_secrets();
	SELECT vote_guard.create_contest('after rotation');
	SELECT vote_guard.add_entry(3, e, 'entry ' || e) FROM generate_series(1, 2) e;
	SELECT vote_guard.create_contest('closed later');
	SELECT vote_guard.add_entry(4, 1, 'only');
	});
is( query(
		$src, q{
	SELECT string_agg(c.id || ':' || c.secret_version || ':' || n, ',' ORDER BY c.id)
	  FROM vote_guard.contests c,
	       LATERAL (SELECT count(*) AS n FROM vote_guard.entries e WHERE e.contest_id = c.id) e}),
	'1:1:3,2:1:2,3:2:2,4:2:1',
	'source: contests 1-2 on secret version 1, 3-4 on version 2');

# Votes.  Every voter below is distinct within its contest and must be ok.
my $cast = q{
	WITH calls (c, e, ip, u, em, rid) AS (
	    -- contest 1: full voters, ip-only, user-only and e-mail-only voters
	    SELECT 1, i % 3 + 1, ('192.0.2.' || i)::inet, 'user' || i,
	           'Voter.' || i || '+tag' || i || '@Example.org', 'req-1-' || i
	      FROM generate_series(1, 12) i
	    UNION ALL
	    SELECT 1, 1, ('198.51.100.' || i)::inet, NULL, NULL, NULL FROM generate_series(1, 3) i
	    UNION ALL
	    SELECT 1, 2, NULL, 'only-user-' || i, NULL, NULL FROM generate_series(1, 2) i
	    UNION ALL
	    SELECT 1, 3, NULL, NULL, 'only.mail' || i || '@gmail.com', NULL FROM generate_series(1, 2) i
	    UNION ALL
	    -- contest 2: one voter per /24 and per /48
	    SELECT 2, 10, ('10.' || i || '.0.5')::inet, NULL, 'p' || i || '@example.net', 'req-2-' || i
	      FROM generate_series(1, 4) i
	    UNION ALL
	    SELECT 2, 20, ('2001:db8:' || i || '::1')::inet, NULL, NULL, NULL FROM generate_series(1, 3) i
	    UNION ALL
	    -- contest 3: the same people as in contest 1 (other contest: ok)
	    SELECT 3, i % 2 + 1, ('192.0.2.' || i)::inet, 'user' || i,
	           'voter.' || i || '@example.org', 'req-3-' || i
	      FROM generate_series(1, 8) i
	    UNION ALL
	    SELECT 4, 1, ('192.0.2.' || i)::inet, 'user' || i, NULL, NULL FROM generate_series(1, 2) i
	)
	SELECT string_agg(r.error_code, ',' ORDER BY r.error_code) FILTER (WHERE r.error_code <> 'ok'),
	       count(*) FILTER (WHERE r.error_code = 'ok')
	  FROM calls, LATERAL vote_guard.cast_vote(c, e, ip, u, em, rid) r};
is(query($src, $cast), '|36', 'source: 36 distinct voters all ok');

# Rejected calls consume vote ids (gaps) and must leave nothing behind.
is( query(
		$src, q{
	SELECT string_agg(r.error_code, ',' ORDER BY n)
	  FROM (VALUES (1, 1, '192.0.2.1'::inet, NULL::text, NULL::text),
	               (2, 1, NULL, 'user2', NULL),
	               (3, 1, NULL, NULL, 'voter.3@example.org'),
	               (4, 10, '10.1.0.200', NULL, NULL),
	               (5, 20, '2001:db8:1:ffff::9', NULL, NULL)) AS t(n, e, ip, u, em),
	       LATERAL vote_guard.cast_vote(CASE WHEN e >= 10 THEN 2 ELSE 1 END,
	                                    e, ip, u, em) r}),
	'duplicate_ip,duplicate_user,duplicate_email,duplicate_ip,duplicate_ip',
	'source: duplicates are rejected');

query($src, 'SELECT vote_guard.close_contest(4)');
is(query($src, 'SELECT vote_guard.rotate_secrets()'),
	'3', 'source: a third secret version, unused at dump time');

my %before;
$before{secrets} = query($src, $secrets_sql);
$before{versions} =
  query($src, 'SELECT string_agg(version::text, \',\' ORDER BY version) FROM vote_guard.secrets');
is($before{versions}, '1,2,3', 'source: secret versions 1,2,3');
$before{contests} = query($src, $contests_sql);
$before{votes} = query($src, $votes_sql);
$before{results}{$_} =
  query($src, "SELECT entry_id, label, votes FROM vote_guard.results($_)")
  for 1 .. 4;
$before{seq_last} =
  query($src, 'SELECT last_value FROM vote_guard.votes_vote_id_seq');
$before{max_vote} = query($src, 'SELECT max(vote_id) FROM vote_guard.votes');
cmp_ok($before{seq_last}, '>', $before{max_vote},
	'source: rejected calls consumed vote ids');
$before{replay_vote} = query($src,
	q{SELECT vote_id FROM vote_guard.votes WHERE contest_id = 1 AND request_id = 'req-1-5'});
$before{replay_vote_c3} = query($src,
	q{SELECT vote_id FROM vote_guard.votes WHERE contest_id = 3 AND request_id = 'req-3-4'});

# Keys of known voters under each contest (v1, v1 with prefixes, v2).
my $keys_sql = q{
	SELECT encode(vote_guard.ip_key(1, '192.0.2.7'), 'hex') || ' '
	    || encode(vote_guard.email_key(1, 'voter.7@example.org'), 'hex') || ' '
	    || encode(vote_guard.ip_key(2, '10.3.0.99'), 'hex') || ' '
	    || encode(vote_guard.ip_key(2, '2001:db8:2:abcd::1'), 'hex') || ' '
	    || encode(vote_guard.ip_key(3, '192.0.2.7'), 'hex') || ' '
	    || encode(vote_guard.email_key(3, 'voter.7@example.org'), 'hex')};
$before{keys} = query($src, $keys_sql);
ok( query(
		$src, q{
	SELECT vote_guard.ip_key(1, '192.0.2.7') <> vote_guard.ip_key(3, '192.0.2.7')}
	) eq 't',
	'source: one voter has different keys in contests of different versions');
ok( query(
		$src, q{
	SELECT count(*) FROM vote_guard.votes
	 WHERE contest_id = 1 AND ip_key = vote_guard.ip_key(1, '192.0.2.7')}) eq '1',
	'source: the stored key is the one ip_key() derives');

########################################################################
# Dump
########################################################################

my $dir = $node->basedir;
my $plain = "$dir/vg.sql";
my $custom = "$dir/vg.dump";
my @conn = ('-h', $node->host, '-p', $node->port);

run_client('pg_dump plain', 'pg_dump', @conn, '-d', $src, '-f', $plain);
run_client('pg_dump custom', 'pg_dump', @conn, '-Fc', '-d', $src, '-f', $custom);

# The dump carries the extension's rows: secrets before contests before
# entries before votes, and the two sequences.
my $dump = slurp_file($plain);
my @order = map { my $p = index($dump, "COPY vote_guard.$_ "); $p } qw(secrets contests entries votes);
ok(!(grep { $_ < 0 } @order), 'plain dump has COPY for secrets, contests, entries, votes');
ok($order[0] < $order[1] && $order[1] < $order[2] && $order[2] < $order[3],
	'plain dump loads secrets, contests, entries, votes in foreign-key order');
like($dump, qr/setval\('vote_guard\.votes_vote_id_seq', $before{seq_last}, true\)/,
	'plain dump sets the vote id sequence');
like($dump, qr/setval\('vote_guard\.contests_id_seq', 4, true\)/,
	'plain dump sets the contest id sequence');
unlike($dump, qr/COPY vote_guard\.counters /, 'counters are not dumped');

########################################################################
# Restore, four ways, and check each restored database
########################################################################

# Each restore is a list of commands run in order against the new database.
my %restores = (
	vg_plain => [ [ 'psql', @conn, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $plain ] ],
	vg_custom => [ [ 'pg_restore', @conn, '--exit-on-error', $custom ] ],
	vg_single =>
	  [ [ 'pg_restore', @conn, '--exit-on-error', '--single-transaction', $custom ] ],
	# pg_restore --jobs loads the data of extension config tables in
	# parallel, ignoring their foreign-key order; the README's recipe loads
	# vote_guard's data serially and everything else in parallel.
	vg_jobs => [
		[ 'pg_restore', @conn, '--exit-on-error', '--section=pre-data', $custom ],
		[ 'pg_restore', @conn, '--exit-on-error', '--section=data', '--schema=vote_guard', $custom ],
		[
			'pg_restore', @conn, '--exit-on-error', '--jobs=3',
			'--section=data', '--exclude-schema=vote_guard', $custom
		],
		[ 'pg_restore', @conn, '--exit-on-error', '--jobs=3', '--section=post-data', $custom ],
	],);

for my $db (sort keys %restores)
{
	note "restoring into $db";
	run_client("$db: createdb", 'createdb', @conn, $db);
	my $restored = 1;
	for my $step (@{ $restores{$db} })
	{
		my @cmd = (@$step, '-d', $db);
		$restored &&= run_client("$db: restore step", @cmd);
	}
	next unless $restored;

	is(query($db, q{SELECT extversion FROM pg_extension WHERE extname = 'vote_guard'}),
		'1.1', "$db: extension restored");

	# secrets came along: same versions, same bytes, and nothing else
	is( query($db,
			'SELECT string_agg(version::text, \',\' ORDER BY version) FROM vote_guard.secrets'),
		$before{versions},
		"$db: secret versions unchanged");
	ok(query($db, $secrets_sql) eq $before{secrets},
		"$db: secrets identical to the dumped ones (generated version 1 replaced)");
	ok(query($db, $keys_sql) eq $before{keys},
		"$db: ip_key/email_key identical in every contest");

	is(query($db, $contests_sql), $before{contests}, "$db: contests identical");
	ok(query($db, $votes_sql) eq $before{votes}, "$db: votes identical (keys included)");

	for my $c (1 .. 4)
	{
		is(query($db, "SELECT entry_id, label, votes FROM vote_guard.results($c)"),
			$before{results}{$c}, "$db: results($c) identical");
		is( query(
				$db,
				"SELECT count(*) FILTER (WHERE drift <> 0) || '/' || count(*)"
				  . " || '/' || count(*) FILTER (WHERE counted = actual) FROM vote_guard.verify($c)"
			),
			query($db, "SELECT '0/' || count(*) || '/' || count(*) FROM vote_guard.entries WHERE contest_id = $c"),
			"$db: verify($c) drift 0 for every entry");
	}

	# the same voters are recognised
	is( query(
			$db, q{
		SELECT string_agg(r.error_code || '/' || r.http_status || '/' || r.vote_count, ',' ORDER BY n)
		  FROM (VALUES
		        (1, 1, 3, '192.0.2.7'::inet, NULL::text, NULL::text),         -- ip, v1
		        (2, 1, 3, NULL, 'user7', NULL),                                -- user
		        (3, 1, 3, NULL, NULL, 'VOTER.7+other@example.ORG'),            -- e-mail, normalised
		        (4, 1, 2, '::ffff:198.51.100.2', NULL, NULL),                  -- mapped IPv4
		        (5, 1, 1, NULL, NULL, 'onlymail2@googlemail.com'),             -- Gmail dots
		        (6, 2, 10, '10.3.0.250', NULL, NULL),                          -- same /24
		        (7, 2, 20, '2001:db8:2:1234::77', NULL, NULL),                 -- same /48
		        (8, 3, 2, '192.0.2.7', NULL, NULL),                            -- ip, v2
		        (9, 3, 2, NULL, NULL, 'voter.7@example.org'),                  -- e-mail, v2
		        (10, 3, 1, NULL, 'user8', NULL))                               -- user, v2
		        AS t(n, c, e, ip, u, em),
		       LATERAL vote_guard.cast_vote(c, e, ip, u, em) r}),
		join(',',
			'duplicate_ip/409/6', 'duplicate_user/409/6', 'duplicate_email/409/6',
			'duplicate_ip/409/6', 'duplicate_email/409/7', 'duplicate_ip/409/4',
			'duplicate_ip/409/3', 'duplicate_ip/409/4', 'duplicate_email/409/4',
			'duplicate_user/409/4'),
		"$db: voters of the dump are duplicates (secrets v1 and v2 restored)");

	# request ids came along: a retry is a replay of the original vote
	is( query(
			$db, q{
		SELECT r.error_code || '/' || r.replayed || '/' || r.vote_id
		  FROM vote_guard.cast_vote(1, 2, '203.0.113.77', 'someone-new', NULL, 'req-1-5') r}),
		"ok/true/$before{replay_vote}",
		"$db: a retried request_id replays the original vote (contest 1)");
	is( query(
			$db, q{
		SELECT r.error_code || '/' || r.replayed || '/' || r.vote_id
		  FROM vote_guard.cast_vote(3, 2, '203.0.113.77', NULL, NULL, 'req-3-4') r}),
		"ok/true/$before{replay_vote_c3}",
		"$db: a retried request_id replays the original vote (contest 3, v2)");

	# a closed contest stays closed
	is( query(
			$db, q{
		SELECT r.error_code FROM vote_guard.cast_vote(4, 1, '203.0.113.5', 'new-user') r}),
		'contest_closed', "$db: closed contest stays closed");

	# new voters are ok; vote ids continue after the dumped sequence
	my $new = query(
		$db, q{
		SELECT string_agg(r.error_code || '/' || r.vote_count || '/' || r.replayed, ',' ORDER BY n)
		       || ' ' || min(r.vote_id)
		  FROM (VALUES (1, 1, 3, '203.0.113.1'::inet, 'new-1', 'new.1@example.com'),
		               (2, 2, 10, '10.99.0.1', NULL, 'new.2@example.com'),
		               (3, 3, 1, '203.0.113.1', 'new-1', 'new.1@example.com')) AS t(n, c, e, ip, u, em),
		       LATERAL vote_guard.cast_vote(c, e, ip, u, em) r});
	my ($codes, $min_id) = split / /, $new;
	my ($r3) = query($db,
		"SELECT votes FROM vote_guard.results(1) WHERE entry_id = 3");
	is($codes, 'ok/7/false,ok/5/false,ok/5/false',
		"$db: new voters are ok and counted (v1, prefixes, v2)");
	cmp_ok($min_id, '>', $before{seq_last},
		"$db: new vote ids continue after the dumped sequence value");
	is($r3, '7', "$db: results() counts the new vote");
	is( query(
			$db,
			q{SELECT count(*) FROM vote_guard.verify(1) v, vote_guard.verify(2) w, vote_guard.verify(3) x
			   WHERE v.drift <> 0 OR w.drift <> 0 OR x.drift <> 0}),
		'0',
		"$db: verify() drift 0 after new votes");

	# a contest created after restore continues the ids and uses version 3
	is( query(
			$db, q{
		SELECT vote_guard.create_contest('after restore') || '/' || secret_version
		  FROM vote_guard.contests WHERE id = 4}),
		'5/2', "$db: new contest gets id 5 (contest sequence restored)");
	is(query($db, 'SELECT secret_version FROM vote_guard.contests WHERE id = 5'),
		'3', "$db: new contest uses the newest restored version");
	$before{new_contest_keys}{$db} = query(
		$db, q{
		SELECT encode(vote_guard.ip_key(5, '192.0.2.7'), 'hex') || ' '
		    || encode(vote_guard.email_key(5, 'voter.7@example.org'), 'hex')});
}

# The source creates its contest 5 now: same id, same version 3, so the
# same voter has the same keys there as in every restored database.
is(query($src, q{SELECT vote_guard.create_contest('after restore')}),
	'5', 'source: next contest is 5');
my $src_keys5 = query(
	$src, q{
	SELECT encode(vote_guard.ip_key(5, '192.0.2.7'), 'hex') || ' '
	    || encode(vote_guard.email_key(5, 'voter.7@example.org'), 'hex')});
for my $db (sort keys %restores)
{
	ok(defined $before{new_contest_keys}{$db} && $before{new_contest_keys}{$db} eq $src_keys5,
		"$db: secret version 3 (unused at dump time) restored: keys equal");
}

# A restore into a database whose generated version 1 is already in use
# must not replace it: the dumped version 1 then conflicts and the restore
# stops with an error instead of silently changing a contest's keys.
run_client('vg_used: createdb', 'createdb', @conn, 'vg_used');
query('vg_used', q{
	CREATE EXTENSION vote_guard;
	SELECT vote_guard.create_contest('local');});
my $used_v1 = query('vg_used', $secrets_sql);
{
	my ($out, $err) = ('', '');
	my $ran = IPC::Run::run(
		[ 'pg_restore', @conn, '--data-only', '--table=secrets', '-d', 'vg_used', $custom ],
		'>', \$out, '2>', \$err);
	ok(!$ran, 'restore of secrets over a used version 1 fails');
	like($err, qr/vote_guard secret version 1 is already used by contests of this database/,
		'... with an error that says why');
	like($err, qr/HINT:  Restore into a database where the extension has just been created/,
		'... and what to do');
	ok(query('vg_used', $secrets_sql) eq $used_v1,
		'... and the used version 1 is unchanged');
}

$node->stop;
done_testing();
