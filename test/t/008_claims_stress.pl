# vote_guard: limited claims under contention.
#
# claims_stress.py runs 64 clients for a few seconds against one entry with
# a capacity N (N = 1, 10, 1000), against a contest with a capacity over
# five entries, and with the owner's direct INSERTs and DELETEs: voters roll
# back some of their accepted votes, retract and change.  Then new voters
# fill what is left.  In every scenario: the committed votes never went
# above N (sampled), no answer ok said more than N, exactly N stay after the
# fill (no place sold twice, none lost), verify() drift 0, and no error but
# the expected refusals of the owner's writes.
use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $python = '/usr/bin/python3';
plan skip_all => "$python with psycopg 3 is needed (Debian: python3-psycopg)"
  unless system($python, '-c', 'import psycopg') == 0;

my $driver = dirname(__FILE__) . '/claims_stress.py';
my $clients = 64;

my $node = PostgreSQL::Test::Cluster->new('claims_stress');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = " . ($clients + 20) . "\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION vote_guard');

my @runs = (
	[ 'entry', 1 ], [ 'entry', 10 ], [ 'entry', 1000 ],
	[ 'contest', 10 ], [ 'contest', 1000 ],
	[ 'owner', 1 ], [ 'owner', 10 ], [ 'owner', 1000 ]);

for my $run (@runs)
{
	my ($scenario, $cap) = @$run;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[
			$python, $driver,
			'--host' => $node->host,
			'--port' => $node->port,
			'--scenario' => $scenario,
			'--capacity' => $cap,
			'--clients' => $clients,
			'--seconds' => 3
		],
		'>' => \$stdout,
		'2>' => \$stderr);
	ok($ok, "$scenario N=$cap: the clients ran") or diag($stderr);
	my %r = map { /^(\w+) (-?\d+)$/ ? ($1 => $2) : () } split /\n/, $stdout;
	note("$scenario N=$cap: " . join(', ', map { "$_ $r{$_}" }
		  grep { defined $r{$_} } qw(calls ok full rolled_back retracted changed refused_23514)));
	cmp_ok($r{max_seen} // 1e18, '<=', $cap, "$scenario N=$cap: never more than N committed");
	is($r{over_answer}, 0, "$scenario N=$cap: no ok answer counted more than N");
	is($r{final}, $cap, "$scenario N=$cap: exactly N stay once the rest is filled");
	is($r{drift}, 0, "$scenario N=$cap: verify() drift 0");
	is($r{errors}, 0, "$scenario N=$cap: no unexpected error")
	  or diag(join("\n", grep { /^# error/ } split /\n/, $stdout));
}

$node->stop;
done_testing();
