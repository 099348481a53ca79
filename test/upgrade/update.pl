# vote_guard: ALTER EXTENSION vote_guard UPDATE from every released version
# gives the extension a fresh CREATE EXTENSION gives, with the data still
# answering.  Suite "upgrade" of test/run-all.sh.
#
# 1. The released scripts are the released bytes (test/upgrade/released:
#    their SHA-256, pinned at each release; the tree's copy and the
#    installed copy are both checked).
# 2. For each released version V older than default_version, in a database
#    of its own: CREATE EXTENSION vote_guard VERSION 'V', filled through V's
#    API (contests of several policies, two secret versions, a closed
#    contest, an owner's direct inserts, changed and retracted votes); the
#    installed library (the new one) must answer on V's schema; then ALTER
#    EXTENSION vote_guard UPDATE while a session that voted stays connected,
#    and the catalog (test/upgrade/catalog.sql) must equal that of a fresh
#    CREATE EXTENSION vote_guard: the differences are printed.  Afterwards
#    the known voters are still duplicates, counts and results unchanged,
#    verify() drift 0, new votes counted, in the kept session too, and a
#    pg_dump of the updated database restores into a new one that answers
#    the same.
#
# VG_UPGRADE_CATALOG_ONLY=1 stops after the catalog comparison.

use strict;
use warnings;

use Digest::SHA;
use File::Basename qw(dirname);
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $here = dirname(__FILE__);
my $top = "$here/../..";

########################################################################
# Released scripts
########################################################################

# "sha256  file" lines; # comments
my @pinned;
open(my $fh, '<', "$here/released") or die "$here/released: $!";
while (my $line = <$fh>)
{
	next if $line =~ /^\s*(#|$)/;
	$line =~ /^([0-9a-f]{64})\s+(vote_guard--[0-9.]+(?:--[0-9.]+)?\.sql)\s*$/
	  or die "$here/released: bad line: $line";
	push @pinned, [ $1, $2 ];
}
close $fh;
ok(@pinned > 0, 'released scripts are pinned');

my $sharedir = `pg_config --sharedir`;
chomp $sharedir;

sub sha256_file
{
	my ($path) = @_;
	return undef unless -f $path;
	return Digest::SHA->new(256)->addfile($path, 'b')->hexdigest;
}

# The version a script leads to: vote_guard--A.sql or vote_guard--X--A.sql.
sub script_target
{
	my ($name) = @_;
	$name =~ /^vote_guard--(?:[0-9.]+--)?([0-9.]+)\.sql$/ or die "not a script: $name";
	return $1;
}

sub version_cmp
{
	my @a = split /\./, $_[0];
	my @b = split /\./, $_[1];
	while (@a || @b)
	{
		my $c = (shift(@a) // 0) <=> (shift(@b) // 0);
		return $c if $c;
	}
	return 0;
}

my %released;
for my $p (@pinned)
{
	my ($sum, $name) = @$p;
	is(sha256_file("$top/$name"), $sum, "$name in the tree is the released one")
	  or diag("$name differs from the script released with version "
		  . script_target($name)
		  . ": a released script is never edited; put the change into an upgrade script");
	is(sha256_file("$sharedir/extension/$name"), $sum, "$name as installed is the released one");
	$released{ script_target($name) } = 1;
}
my @released = sort { version_cmp($a, $b) } keys %released;

my $control = slurp_file("$top/vote_guard.control");
my ($default) = $control =~ /^\s*default_version\s*=\s*'([^']+)'/m;
ok(defined $default, "default_version is $default");
is((slurp_file("$sharedir/extension/vote_guard.control") =~ /^\s*default_version\s*=\s*'([^']+)'/m)[0],
	$default, 'the installed control file has the same default_version');

# every script in the tree whose version is released is pinned: a script
# added to a released version would change what that version installs
my %pinned_name = map { $_->[1] => 1 } @pinned;
for my $path (sort glob("$top/vote_guard--*.sql"))
{
	(my $name = $path) =~ s{.*/}{};
	next unless $released{ script_target($name) };
	ok($pinned_name{$name}, "$name (leads to released " . script_target($name) . ") is pinned");
}

########################################################################
# The cluster, and a fresh install of default_version
########################################################################

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;

sub query
{
	my ($db, $sql) = @_;
	return $node->safe_psql($db, $sql);
}

my $catalog_sql = slurp_file("$here/catalog.sql");

$node->safe_psql('postgres', 'CREATE DATABASE vg_fresh');
query('vg_fresh', 'CREATE EXTENSION vote_guard');
is(query('vg_fresh', q{SELECT extversion FROM pg_extension WHERE extname = 'vote_guard'}),
	$default, "fresh install is $default");
my $fresh_catalog = query('vg_fresh', $catalog_sql);
my $fresh_lines = () = $fresh_catalog =~ /\n/g;
cmp_ok($fresh_lines, '>', 200, "the catalog of a fresh install has $fresh_lines lines");

# Lines only in the first ("-") or only in the second ("+").
sub catalog_diff
{
	my ($a, $b) = @_;
	my (%a, %b);
	$a{$_}++ for split /\n/, $a;
	$b{$_}++ for split /\n/, $b;
	my @diff;
	for my $l (sort keys %a) { push @diff, "- $l" if ($b{$l} // 0) < $a{$l}; }
	for my $l (sort keys %b) { push @diff, "+ $l" if ($a{$l} // 0) < $b{$l}; }
	return join("\n", @diff);
}

########################################################################
# Filling a database through the 1.0 API
########################################################################

# Contests:
#  1 default policy (ip, user, email), 3 entries
#  2 user only, login required, 3 votes a day, 1 per entry, 4 entries
#  3 user only, allow_change (votes changed and retracted), 2 entries
#  4 ip and email, /24, cooldown 1 hour, created after rotate_secrets (version 2)
#  5 default policy, closed after its votes
my $fill = q{
	SELECT vote_guard.create_contest('default policy');
	SELECT vote_guard.add_entry(1, e, 'entry ' || e) FROM generate_series(1, 3) e;
	SELECT vote_guard.create_contest('three a day', dedupe_on => '{user}', require_user => true,
	                                 votes_per_voter => 3, per_entry_limit => 1,
	                                 vote_window => '1 day');
	SELECT vote_guard.add_entry(2, e, NULL) FROM generate_series(1, 4) e;
	SELECT vote_guard.create_contest('changeable', dedupe_on => '{user}', allow_change => true);
	SELECT vote_guard.add_entry(3, e, 'option ' || e) FROM generate_series(1, 2) e;
	SELECT vote_guard.rotate_secrets();
	SELECT vote_guard.create_contest('prefix and cooldown', dedupe_on => '{ip,email}',
	                                 ipv4_prefix => 24, cooldown => '1 hour');
	SELECT vote_guard.add_entry(4, 10, 'ten'), vote_guard.add_entry(4, 20, 'twenty');
	SELECT vote_guard.create_contest('closed');
	SELECT vote_guard.add_entry(5, 1, 'only');
};

# Every call here is a new voter (within its policy): all ok.
my $cast = q{
	WITH calls (n, c, e, ip, u, em, rid) AS (
	    SELECT i, 1::bigint, (i % 3 + 1)::bigint, ('192.0.2.' || i)::inet, 'user' || i,
	           'Voter.' || i || '+tag@Example.org', 'req-1-' || i
	      FROM generate_series(1, 15) i
	    UNION ALL
	    SELECT 100 + i, 2, e, NULL, 'multi' || i, NULL, NULL
	      FROM generate_series(1, 4) i, generate_series(1, 3) e
	    UNION ALL
	    SELECT 200 + i, 3, i % 2 + 1, NULL, 'mover' || i, NULL, NULL FROM generate_series(1, 6) i
	    UNION ALL
	    SELECT 300 + i, 4, CASE WHEN i % 2 = 0 THEN 10 ELSE 20 END, ('10.' || i || '.0.5')::inet,
	           NULL, 'p' || i || '@example.net', 'req-4-' || i
	      FROM generate_series(1, 5) i
	    UNION ALL
	    SELECT 400 + i, 5, 1, ('198.51.100.' || i)::inet, 'closer' || i, NULL, NULL
	      FROM generate_series(1, 3) i
	)
	SELECT count(*) FILTER (WHERE r.error_code = 'ok') || ' ok, others: '
	       || COALESCE(string_agg(n || ':' || r.error_code, ',' ORDER BY n)
	                   FILTER (WHERE r.error_code <> 'ok'), 'none')
	  FROM calls, LATERAL vote_guard.cast_vote(c, e, ip, u, em, rid) r};

# The owner's direct writes (the policy and counter triggers take them),
# a changed and a retracted vote, and the closing.
my $owner_writes = q{
	INSERT INTO vote_guard.votes (contest_id, entry_id, user_id)
	VALUES (1, 2, 'direct-user');
	INSERT INTO vote_guard.votes (contest_id, entry_id, ip_key)
	VALUES (1, 3, vote_guard.ip_key(1, '203.0.113.200'));
	SELECT r.error_code FROM vote_guard.change_vote(3, 1, 'mover1', 2) r;
	SELECT r.error_code FROM vote_guard.retract_vote(3, 'mover2') r;
	SELECT vote_guard.close_contest(5) IS NOT NULL;
};

# Known voters, each a duplicate (or refused) of a vote made above.
my $known_sql = q{
	SELECT string_agg(n || ':' || r.error_code, ',' ORDER BY n)
	  FROM (VALUES
	        (1, 1::bigint, 3::bigint, '192.0.2.7'::inet, NULL::text, NULL::text),  -- ip
	        (2, 1, 1, NULL, 'user7', NULL),                                 -- user
	        (3, 1, 2, NULL, NULL, 'VOTER.7+other@example.ORG'),             -- e-mail
	        (4, 1, 1, NULL, 'direct-user', NULL),                           -- owner's insert
	        (5, 1, 1, '203.0.113.200', NULL, NULL),                         -- owner's ip_key
	        (6, 2, 4, NULL, 'multi1', NULL),                                -- three a day used
	        (7, 4, 20, '10.3.0.77', NULL, NULL),                            -- same /24, v2
	        (8, 4, 10, '203.0.113.9', NULL, 'p2@example.net'),              -- e-mail, v2
	        (9, 5, 1, '203.0.113.10', 'new-closer', NULL))                  -- closed
	        AS t(n, c, e, ip, u, em),
	       LATERAL vote_guard.cast_vote(c, e, ip, u, em) r};
my $known_expected = join(',',
	'1:duplicate_ip', '2:duplicate_user', '3:duplicate_email', '4:duplicate_user',
	'5:duplicate_ip', '6:limit_reached', '7:duplicate_ip', '8:duplicate_email',
	'9:contest_closed');

# A replayed request id answers with the original vote.
my $replay_sql = q{
	SELECT r.error_code || '/' || r.replayed || '/' || (r.vote_id = v.vote_id)
	  FROM vote_guard.cast_vote(1, 2, '203.0.113.77', 'someone-new', NULL, 'req-1-5') r,
	       vote_guard.votes v
	 WHERE v.contest_id = 1 AND v.request_id = 'req-1-5'};

# Every contest's results (entry, votes: the columns every version has)
# and the vote rows (a digest).
my $state_sql = q{
	SELECT string_agg(c.id || ':' || r.entry_id || '=' || r.votes, ',' ORDER BY c.id, r.entry_id)
	       || ' votes ' || (SELECT count(*) || ':' || md5(string_agg(
	              concat_ws('/', v.contest_id, v.vote_id, v.entry_id, v.created_at, v.window_no,
	                        v.ip_slot, v.user_slot, v.email_slot, encode(v.ip_key, 'hex'),
	                        v.user_id, encode(v.email_key, 'hex'), v.request_id),
	              ';' ORDER BY v.contest_id, v.vote_id))
	                         FROM vote_guard.votes v)
	  FROM vote_guard.contests c, LATERAL vote_guard.results(c.id) r};

my $drift_sql = q{
	SELECT count(*) || ' entries, ' || count(*) FILTER (WHERE v.drift <> 0) || ' drifting'
	  FROM vote_guard.contests c, LATERAL vote_guard.verify(c.id) v};

my $entries = 3 + 4 + 2 + 2 + 1;

# New voters, one per contest still open: all ok.
sub new_votes_sql
{
	my ($tag, $n) = @_;
	return qq{
	SELECT string_agg(n || ':' || r.error_code, ',' ORDER BY n)
	  FROM (VALUES
	        (1, 1::bigint, 1::bigint, '203.0.113.$n'::inet, '$tag-a', '$tag.a\@example.com'),
	        (2, 2, 4, NULL, '$tag-b', NULL),
	        (3, 3, 1, NULL, '$tag-c', NULL),
	        (4, 4, 10, '10.200.$n.1', NULL, '$tag.d\@example.com')) AS t(n, c, e, ip, u, em),
	       LATERAL vote_guard.cast_vote(c, e, ip, u, em) r};
}
my $new_expected = '1:ok,2:ok,3:ok,4:ok';

########################################################################
# Each released version older than default_version
########################################################################

my @from = grep { version_cmp($_, $default) < 0 } @released;
ok(@from > 0, 'released versions to update from: ' . join(', ', @from))
  or diag("default_version $default is released: pin it and test the next one");

for my $from (@from)
{
	(my $db = "vg_from_$from") =~ s/\./_/g;
	note "updating from $from in $db";
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	query($db, "CREATE EXTENSION vote_guard VERSION '$from'");
	is(query($db, q{SELECT extversion FROM pg_extension WHERE extname = 'vote_guard'}),
		$from, "$db: installed $from");

	query($db, $fill);
	is(query($db, q{SELECT string_agg(id || ':' || secret_version, ',' ORDER BY id) FROM vote_guard.contests}),
		'1:1,2:1,3:1,4:2,5:2', "$db: five contests, the last two on secret version 2");
	is(query($db, $cast), '41 ok, others: none', "$db: 41 votes of new voters");
	is(query($db, $owner_writes), "ok\nok\nt", "$db: owner's inserts, a changed and a retracted vote, a closing");

	# the library of default_version serves the old schema
	is(query($db, $known_sql), $known_expected, "$db on $from: the known voters are duplicates");
	is(query($db, $replay_sql), 'ok/true/true', "$db on $from: a request id replays");
	is(query($db, $drift_sql), "$entries entries, 0 drifting", "$db on $from: verify() drift 0");
	is(query($db, new_votes_sql('before', 21)), $new_expected, "$db on $from: new voters are counted");

	# a session that voted on the old schema stays connected through the update
	my $kept = $node->background_psql($db, on_error_stop => 0);
	is($kept->query_safe(q{SELECT r.error_code FROM vote_guard.cast_vote(1, 2, '203.0.113.31', 'kept-1') r}),
		'ok', "$db on $from: a session votes");
	my $state = query($db, $state_sql);
	like($state, qr/^1:1=\d+,/, "$db on $from: results() of every contest");

	query($db, 'ALTER EXTENSION vote_guard UPDATE');
	is(query($db, q{SELECT extversion FROM pg_extension WHERE extname = 'vote_guard'}),
		$default, "$db: updated to $default");

	my $diff = catalog_diff(query($db, $catalog_sql), $fresh_catalog);
	is($diff, '', "$db: the catalog after the update equals a fresh install's")
	  or diag("catalog lines only after the update (-) or only in a fresh install (+):\n$diff");
	next if $ENV{VG_UPGRADE_CATALOG_ONLY};

	# the data still answers
	my $after_state = query($db, $state_sql);
	is($after_state, $state, "$db after the update: results and vote rows unchanged");
	is(query($db, $known_sql), $known_expected, "$db after the update: the known voters are duplicates");
	is(query($db, $replay_sql), 'ok/true/true', "$db after the update: a request id replays");
	is(query($db, $drift_sql), "$entries entries, 0 drifting", "$db after the update: verify() drift 0");
	is($kept->query_safe(q{SELECT r.error_code FROM vote_guard.cast_vote(1, 2, '203.0.113.31', 'kept-1') r}),
		'duplicate_ip', "$db after the update: the kept session sees its voter as a duplicate");
	is($kept->query_safe(q{SELECT r.error_code FROM vote_guard.cast_vote(1, 2, '203.0.113.32', 'kept-2') r}),
		'ok', "$db after the update: the kept session votes");
	$kept->quit;
	is(query($db, new_votes_sql('after', 22)), $new_expected, "$db after the update: new voters are counted");
	is(query($db, $drift_sql), "$entries entries, 0 drifting", "$db after the new votes: verify() drift 0");
	$state = query($db, $state_sql);

	# dump and restore of the updated database
	my $dump = $node->basedir . "/$db.dump";
	my @conn = ('-h', $node->host, '-p', $node->port);
	my ($out, $err) = ('', '');
	ok(IPC::Run::run([ 'pg_dump', @conn, '-Fc', '-d', $db, '-f', $dump ], '>', \$out, '2>', \$err),
		"$db: pg_dump") or diag($err);
	$node->safe_psql('postgres', "CREATE DATABASE ${db}_restored");
	($out, $err) = ('', '');
	my $restored = IPC::Run::run([ 'pg_restore', @conn, '--exit-on-error', '-d', "${db}_restored", $dump ],
		'>', \$out, '2>', \$err);
	ok($restored && $err !~ /\b(ERROR|WARNING)\b/, "$db: pg_restore") or diag($err);
	my $rdb = "${db}_restored";
	is(query($rdb, $state_sql), $state, "$rdb: results and vote rows as dumped");
	is(query($rdb, $known_sql), $known_expected, "$rdb: the known voters are duplicates");
	is(query($rdb, $drift_sql), "$entries entries, 0 drifting", "$rdb: verify() drift 0");
	is(query($rdb, new_votes_sql('restored', 23)), $new_expected, "$rdb: new voters are counted");
	is(catalog_diff(query($rdb, $catalog_sql), $fresh_catalog), '',
		"$rdb: the catalog equals a fresh install's");
}

$node->stop;
done_testing();
