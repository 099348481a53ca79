# vote_guard on a streaming replica, through a promotion.
#
# Part 1: a primary with votes and a hot standby streaming from it.  On the
#   standby results() and verify() answer as on the primary; cast_vote,
#   change_vote and retract_vote raise SQLSTATE 25006 with vote_guard's
#   message and hint whatever their arguments (a valid vote, invalid_input,
#   contest_not_found, a replay): never a row.
# Part 2: the standby becomes synchronous (synchronous_standby_names,
#   synchronous_commit = remote_apply).  A client casts votes one by one in
#   autocommit; the primary is stopped in immediate mode while it does and
#   the standby is promoted.  Every vote acknowledged to the client is on
#   the promoted server; counters agree with the votes; voters from before
#   the promotion are still duplicates, a replayed request_id is still
#   replayed, and new voters vote.  (Without synchronous_standby_names the
#   check of acknowledged votes failed in two runs of three here: the last
#   acknowledged votes were missing after the promotion.)

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->start;

# cast_vote (no e-mail) as SQL returning "code/replayed"
sub cast_sql
{
	my ($c, $e, $ip, $user, $rid) = @_;
	my @args = map { defined $_ ? "'$_'" : 'NULL' } ($ip, $user, undef, $rid);
	return "SELECT r.error_code || '/' || r.replayed FROM vote_guard.cast_vote($c, $e, "
	  . join(', ', @args) . ') r';
}

$primary->safe_psql(
	'postgres', q{
	CREATE EXTENSION vote_guard;
	SELECT vote_guard.create_contest('before the standby', allow_change => true);
	SELECT vote_guard.add_entry(1, e) FROM generate_series(1, 3) e;
	SELECT vote_guard.create_contest('through the failover');
	SELECT vote_guard.add_entry(2, e) FROM generate_series(1, 3) e;
});
is( $primary->safe_psql(
		'postgres', q{
	SELECT string_agg(r.error_code, ',')
	  FROM generate_series(1, 6) i,
	       LATERAL vote_guard.cast_vote(1, i % 3 + 1, ('192.0.2.' || i)::inet,
	                                    'pre' || i, request_id => 'req-pre' || i) r}),
	join(',', ('ok') x 6),
	'6 votes on the primary');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# votes after the backup arrive by streaming
is($primary->safe_psql('postgres', cast_sql(1, 1, '192.0.2.50', 'streamed', 'req-streamed')),
	'ok/false', 'a vote on the primary after the backup');
$primary->wait_for_catchup($standby);

########################################################################
# Part 1: reads and refused writes on the hot standby
########################################################################

my $results = q{SELECT string_agg(entry_id || ':' || votes, ',' ORDER BY entry_id)
	FROM vote_guard.results(1)};
my $verify = q{SELECT string_agg(entry_id || ':' || counted || ':' || actual || ':' || drift,
	',' ORDER BY entry_id) FROM vote_guard.verify(1)};
is($standby->safe_psql('postgres', $results), '1:3,2:2,3:2',
	'standby: results() counts the streamed votes');
is($standby->safe_psql('postgres', $verify),
	$primary->safe_psql('postgres', $verify),
	'standby: verify() answers as on the primary');

my $votes_sql = 'SELECT count(*) FROM vote_guard.votes';
my $votes_before = $standby->safe_psql('postgres', $votes_sql);
my %refused = (
	'a new vote' => [ 'cast_vote', cast_sql(1, 2, '198.51.100.1', 'new') ],
	'a duplicate' => [ 'cast_vote', cast_sql(1, 2, '192.0.2.1', 'pre1') ],
	'a replay' => [ 'cast_vote', cast_sql(1, 2, '192.0.2.1', 'pre1', 'req-pre1') ],
	'invalid_input' => [ 'cast_vote', cast_sql(0, 2, '198.51.100.1') ],
	'contest_not_found' => [ 'cast_vote', cast_sql(99, 2, '198.51.100.1') ],
	'a move' => [ 'change_vote', q{SELECT * FROM vote_guard.change_vote(1, 3, 'pre1')} ],
	'change_vote, invalid_input' =>
	  [ 'change_vote', q{SELECT * FROM vote_guard.change_vote(1, 3, NULL)} ],
	'a retraction' => [ 'retract_vote', q{SELECT * FROM vote_guard.retract_vote(1, 'pre1')} ],
	'retract_vote, contest_not_found' =>
	  [ 'retract_vote', q{SELECT * FROM vote_guard.retract_vote(99, 'pre1')} ]);
foreach my $case (sort keys %refused)
{
	my ($fn, $sql) = @{ $refused{$case} };
	my ($ret, $out, $err) = $standby->psql(
		'postgres', $sql,
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	isnt($ret, 0, "standby, $case: $fn fails");
	is($out, '', "standby, $case: no row");
	like(
		$err,
		qr/ERROR:  25006: vote_guard\.$fn cannot run on a standby server.*HINT:  Send votes to the primary server\./s,
		"standby, $case: 25006 from vote_guard with its hint");
}
is($standby->safe_psql('postgres', $votes_sql),
	$votes_before, 'standby: nothing was written');

########################################################################
# Part 2: synchronous standby, failover with votes in flight
########################################################################

$primary->append_conf(
	'postgresql.conf', q{
synchronous_standby_names = 'standby'
synchronous_commit = remote_apply
});
$primary->reload;
ok( $primary->poll_query_until(
		'postgres',
		q{SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby'}),
	'the standby is synchronous');

# one client, one vote per statement in autocommit: psql prints a vote's id
# only once the server has acknowledged its commit
my $n = 5000;
my $script = $primary->basedir . '/votes.sql';
open my $fh, '>', $script or die "$script: $!";
print $fh "SELECT vote_id FROM vote_guard.cast_vote(2, $_ % 3 + 1, NULL, 'sync$_');\n"
  for 1 .. $n;
close $fh;
my ($acked_file, $client_err) = ($primary->basedir . '/acked.txt', '');
my $client = IPC::Run::start(
	[
		'psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1',
		'-d', $primary->connstr('postgres'), '-f', $script
	],
	'>', $acked_file, '2>', \$client_err);

ok( $primary->poll_query_until(
		'postgres', 'SELECT count(*) >= 300 FROM vote_guard.votes WHERE contest_id = 2'),
	'votes are flowing');
$primary->stop('immediate');
$client->finish;
note "client: $client_err";

open $fh, '<', $acked_file or die "$acked_file: $!";
my @acked = grep { /^\d+$/ } map { chomp; $_ } <$fh>;
close $fh;
# one client: when the 300th vote was visible, the 299 before it had been
# answered (its answer may not have left before the stop)
cmp_ok(scalar @acked, '>=', 299, 'at least 299 votes acknowledged before the stop');
cmp_ok(scalar @acked, '<', $n, 'the stop came while votes were being cast');

$standby->promote;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 'f', 'standby promoted');

# every acknowledged vote is there, each once, for the voter that cast it
my $ids = join(',', @acked);
is( $standby->safe_psql(
		'postgres', qq{
	SELECT count(*) FROM vote_guard.votes v
	  JOIN unnest('{$ids}'::bigint[]) a(id) ON a.id = v.vote_id
	 WHERE v.contest_id = 2}),
	scalar @acked,
	'after failover: every acknowledged vote is present');
cmp_ok($standby->safe_psql('postgres', 'SELECT count(*) FROM vote_guard.votes WHERE contest_id = 2'),
	'<=', scalar(@acked) + 1, 'after failover: at most the one vote in flight beyond them');
is( $standby->safe_psql(
		'postgres', q{SELECT count(*) FILTER (WHERE drift <> 0 OR counted <> actual)
		                FROM vote_guard.contests c, vote_guard.verify(c.id)}),
	'0',
	'after failover: verify() drift 0');

# votes continue on the promoted server, dedupe intact
my $last = $acked[-1];
my $last_user = $standby->safe_psql('postgres',
	"SELECT user_id FROM vote_guard.votes WHERE vote_id = $last");
is($standby->safe_psql('postgres', cast_sql(2, 1, undef, $last_user)),
	'duplicate_user/false', 'promoted: the last acknowledged voter is a duplicate');
is($standby->safe_psql('postgres', cast_sql(1, 3, '192.0.2.1', undef)),
	'duplicate_ip/false', 'promoted: a voter of before the standby is a duplicate (ip key)');
is($standby->safe_psql('postgres', cast_sql(1, 3, '203.0.113.1', 'pre2')),
	'duplicate_user/false', 'promoted: a voter of before the standby is a duplicate (user)');
is($standby->safe_psql('postgres', cast_sql(1, 3, '203.0.113.2', 'other', 'req-streamed')),
	'ok/true', 'promoted: a streamed request_id is replayed');
is($standby->safe_psql('postgres', cast_sql(2, 1, '203.0.113.3', 'after')),
	'ok/false', 'promoted: a new voter votes');
cmp_ok(
	$standby->safe_psql('postgres',
		q{SELECT vote_id FROM vote_guard.votes WHERE user_id = 'after'}),
	'>', $last, 'promoted: new vote ids follow the old ones');
is($standby->safe_psql('postgres', q{SELECT error_code FROM vote_guard.change_vote(1, 3, 'pre1')}),
	'ok', 'promoted: change_vote works');
is( $standby->safe_psql(
		'postgres', q{SELECT count(*) FILTER (WHERE drift <> 0)
		                FROM vote_guard.contests c, vote_guard.verify(c.id)}),
	'0',
	'promoted: verify() drift 0 after the new votes');

$standby->stop;
done_testing();
