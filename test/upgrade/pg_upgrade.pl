# vote_guard: pg_upgrade from an older PostgreSQL major with votes in place.
# Suite "pg_upgrade" of test/run-all.sh: as root, run-all.sh builds the older
# major (VG_OLD_MAJOR, default 15) with test/old-major.sh, builds vote_guard
# for it, and passes its directory as VG_OLD_INSTALL.  test/other-majors.sh
# runs it in the PostgreSQL 17 chroot.
#
# The old cluster holds two databases: vg (CREATE EXTENSION vote_guard, the
# default version) and vg_oldest (the oldest released version), each filled
# as test/upgrade/update.pl fills them.  pg_upgrade (the new major's) moves
# them into a new cluster; there the known voters are still duplicates,
# results and vote rows unchanged, verify() drift 0, new votes counted, the
# catalog equal to a fresh CREATE EXTENSION's; vg_oldest is then updated
# with ALTER EXTENSION vote_guard UPDATE and compared too.

use strict;
use warnings;

use Cwd qw(getcwd);
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use lib dirname(__FILE__);
use VgUpgrade;

my $here = dirname(__FILE__);
my $old_install = $ENV{VG_OLD_INSTALL};
BAIL_OUT('VG_OLD_INSTALL names no PostgreSQL installation: run the pg_upgrade suite '
	  . 'through test/run-all.sh as root (test/old-major.sh builds one)')
  if !$old_install || !-x "$old_install/bin/postgres";

my $catalog_sql = slurp_file("$here/catalog.sql");
my $oldest = $ENV{VG_OLDEST_RELEASED} // '1.0';
my @locale = ('--locale=C.UTF-8', '--encoding=UTF8');

my $old = PostgreSQL::Test::Cluster->new('old', install_path => $old_install);
my $new = PostgreSQL::Test::Cluster->new('new');
my ($old_major) = $old->pg_version =~ /^(\d+)/;
my ($new_major) = $new->pg_version =~ /^(\d+)/;
note "pg_upgrade from PostgreSQL " . $old->pg_version . " to " . $new->pg_version;
cmp_ok($old_major, '<', $new_major, "PostgreSQL $old_major to $new_major");

$old->init(extra => \@locale);
$old->start;

my %before;
for my $db (qw(vg vg_oldest))
{
	$old->safe_psql('postgres', "CREATE DATABASE $db");
	$old->safe_psql($db,
		$db eq 'vg' ? 'CREATE EXTENSION vote_guard' : "CREATE EXTENSION vote_guard VERSION '$oldest'");
	$old->safe_psql($db, $fill);
	is($old->safe_psql($db, $cast), $cast_expected, "$db on $old_major: votes of new voters");
	is($old->safe_psql($db, $owner_writes), $owner_expected,
		"$db on $old_major: owner's inserts, a changed and a retracted vote, a closing");
	is($old->safe_psql($db, $known_sql), $known_expected, "$db on $old_major: the known voters are duplicates");
	is($old->safe_psql($db, $drift_sql), $drift_expected, "$db on $old_major: verify() drift 0");
	$before{$db}{version} =
	  $old->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'vote_guard'});
	$before{$db}{state} = $old->safe_psql($db, $state_sql);
	$before{$db}{seq} = $old->safe_psql($db, 'SELECT last_value FROM vote_guard.votes_vote_id_seq');
}
$old->stop;

# PostgreSQL 18's initdb turns data checksums on, which pg_upgrade refuses
# from a cluster without them
$new->init(extra => [ @locale, $new_major >= 18 ? ('--no-data-checksums') : () ]);
# pg_upgrade from the new major's bindir, with the old and new servers on
# their own ports
my $new_bindir = $new->config_data('--bindir');
my $old_bindir = "$old_install/bin";
my $out = $new->basedir . '/pg_upgrade';
mkdir $out;
{
	my $cwd = getcwd();
	chdir $out or die "chdir $out: $!";
	command_ok(
		[
			"$new_bindir/pg_upgrade", '--no-sync',
			'-d', $old->data_dir, '-D', $new->data_dir,
			'-b', $old_bindir, '-B', $new_bindir,
			'-s', $new->host, '-p', $old->port, '-P', $new->port,
			'--copy'
		],
		"pg_upgrade $old_major -> $new_major");
	chdir $cwd or die "chdir $cwd: $!";
}
$new->start;

$new->safe_psql('postgres', 'CREATE DATABASE vg_fresh');
$new->safe_psql('vg_fresh', 'CREATE EXTENSION vote_guard');
my $fresh_catalog = $new->safe_psql('vg_fresh', $catalog_sql);

for my $db (qw(vg vg_oldest))
{
	is($new->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'vote_guard'}),
		$before{$db}{version}, "$db on $new_major: extension version $before{$db}{version} kept");
	is($new->safe_psql($db, $state_sql), $before{$db}{state},
		"$db on $new_major: results and vote rows unchanged");
	is($new->safe_psql($db, 'SELECT last_value FROM vote_guard.votes_vote_id_seq'),
		$before{$db}{seq}, "$db on $new_major: the vote id sequence kept");
	is($new->safe_psql($db, $known_sql), $known_expected, "$db on $new_major: the known voters are duplicates");
	is($new->safe_psql($db, $replay_sql), $replay_expected, "$db on $new_major: a request id replays");
	is($new->safe_psql($db, $drift_sql), $drift_expected, "$db on $new_major: verify() drift 0");
	is($new->safe_psql($db, new_votes_sql('upgraded', 24)), $new_expected,
		"$db on $new_major: new voters are counted");
	is($new->safe_psql($db, $drift_sql), $drift_expected, "$db on $new_major: verify() drift 0 after new votes");
	if ($db eq 'vg_oldest' && $before{$db}{version} ne $new->safe_psql('vg_fresh',
			q{SELECT extversion FROM pg_extension WHERE extname = 'vote_guard'}))
	{
		$new->safe_psql($db, 'ALTER EXTENSION vote_guard UPDATE');
		is($new->safe_psql($db, $known_sql), $known_expected,
			"$db on $new_major: the known voters are duplicates after ALTER EXTENSION UPDATE");
		is($new->safe_psql($db, new_votes_sql('updated', 25)), $new_expected,
			"$db on $new_major: new voters are counted after ALTER EXTENSION UPDATE");
		is($new->safe_psql($db, $drift_sql), $drift_expected,
			"$db on $new_major: verify() drift 0 after ALTER EXTENSION UPDATE");
	}
	my $diff = catalog_diff($new->safe_psql($db, $catalog_sql), $fresh_catalog);
	ok($diff eq '', "$db on $new_major: the catalog equals a fresh install's")
	  or diag("catalog lines only in $db (-) or only in a fresh install (+):\n$diff");
}

$new->stop;
done_testing();
