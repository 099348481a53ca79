# vote_guard: ALTER EXTENSION vote_guard UPDATE from every released version
# gives the same extension as a fresh CREATE EXTENSION, with the data still
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

use lib dirname(__FILE__);
use VgUpgrade;

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
	is(query($db, $cast), $cast_expected, "$db: 41 votes of new voters");
	is(query($db, $owner_writes), $owner_expected, "$db: owner's inserts, a changed and a retracted vote, a closing");

	# the library of default_version serves the old schema
	is(query($db, $known_sql), $known_expected, "$db on $from: the known voters are duplicates");
	is(query($db, $replay_sql), $replay_expected, "$db on $from: a request id replays");
	is(query($db, $drift_sql), $drift_expected, "$db on $from: verify() drift 0");
	is(query($db, new_votes_sql('before', 21)), $new_expected, "$db on $from: new voters are counted");

	# a session that voted on the old schema stays connected through the
	# update (background_psql came to PostgreSQL 15 in a minor release; without
	# it the session votes as any other)
	my $kept = $node->can('background_psql') ? $node->background_psql($db, on_error_stop => 0) : undef;
	my $kept_query = sub {
		my ($sql) = @_;
		return $kept ? $kept->query_safe($sql) : query($db, $sql);
	};
	is($kept_query->(q{SELECT r.error_code FROM vote_guard.cast_vote(1, 2, '203.0.113.31', 'kept-1') r}),
		'ok', "$db on $from: a session votes");
	my $state = query($db, $state_sql);
	like($state, qr/^1:1=\d+,/, "$db on $from: results() of every contest");

	query($db, 'ALTER EXTENSION vote_guard UPDATE');
	is(query($db, q{SELECT extversion FROM pg_extension WHERE extname = 'vote_guard'}),
		$default, "$db: updated to $default");

	my $diff = catalog_diff(query($db, $catalog_sql), $fresh_catalog);
	ok($diff eq '', "$db: the catalog after the update equals a fresh install's")
	  or diag("catalog lines only after the update (-) or only in a fresh install (+):\n$diff");
	next if $ENV{VG_UPGRADE_CATALOG_ONLY};

	# the data still answers
	my $after_state = query($db, $state_sql);
	is($after_state, $state, "$db after the update: results and vote rows unchanged");
	is(query($db, $known_sql), $known_expected, "$db after the update: the known voters are duplicates");
	is(query($db, $replay_sql), $replay_expected, "$db after the update: a request id replays");
	is(query($db, $drift_sql), $drift_expected, "$db after the update: verify() drift 0");
	is($kept_query->(q{SELECT r.error_code FROM vote_guard.cast_vote(1, 2, '203.0.113.31', 'kept-1') r}),
		'duplicate_ip', "$db after the update: the kept session sees its voter as a duplicate");
	is($kept_query->(q{SELECT r.error_code FROM vote_guard.cast_vote(1, 2, '203.0.113.32', 'kept-2') r}),
		'ok', "$db after the update: the kept session votes");
	$kept->quit if $kept;
	is(query($db, new_votes_sql('after', 22)), $new_expected, "$db after the update: new voters are counted");
	is(query($db, $drift_sql), $drift_expected, "$db after the new votes: verify() drift 0");
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
	is(query($rdb, $drift_sql), $drift_expected, "$rdb: verify() drift 0");
	is(query($rdb, new_votes_sql('restored', 23)), $new_expected, "$rdb: new voters are counted");
	$diff = catalog_diff(query($rdb, $catalog_sql), $fresh_catalog);
	ok($diff eq '', "$rdb: the catalog equals a fresh install's")
	  or diag("catalog lines only in the restored database (-) or only in a fresh install (+):\n$diff");
}

$node->stop;
done_testing();
