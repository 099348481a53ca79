# vote_guard: votes in flight when the server crashes.
#
# Part 1: immediate shutdown (SIGQUIT to the postmaster, no checkpoint) while
#   - one session holds an uncommitted vote,
#   - a second session is waiting on that vote's unique index entry (same voter),
#   - a third session has just committed a vote,
#   - a fourth has a vote in a prepared transaction.
# Part 2: SIGKILL of the backend that holds an uncommitted vote; the
#   postmaster resets every backend and runs crash recovery
#   (restart_after_crash = on).
#
# After each restart: uncommitted votes are gone, committed (and prepared,
# once committed) votes are there, counters agree with the votes (verify()
# drift 0), the voter of a lost vote can vote again, a committed voter cannot.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# background_psql came to PostgreSQL 15 in a minor release
plan skip_all => 'PostgreSQL::Test::Cluster has no background_psql in this release'
  unless PostgreSQL::Test::Cluster->can('background_psql');

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
max_prepared_transactions = 5
restart_after_crash = on
});
$node->start;

sub query { return $node->safe_psql('postgres', $_[0]); }

# every entry of a contest: "entry:count" from results(), and verify()'s drift
sub results_of
{
	my ($c) = @_;
	return query(
		"SELECT string_agg(entry_id || ':' || votes, ',' ORDER BY entry_id) FROM vote_guard.results($c)"
	);
}

sub drift_ok
{
	my ($c, $name) = @_;
	is( query(
			"SELECT count(*) FILTER (WHERE drift <> 0 OR counted <> actual) || '/' || count(*)"
			  . " FROM vote_guard.verify($c)"),
		'0/3',
		$name);
}

# cast_vote as SQL returning "code/replayed"
sub cast_sql
{
	my ($c, $e, $ip, $user, $email, $rid) = @_;
	my @args = map { defined $_ ? "'$_'" : 'NULL' } ($ip, $user, $email, $rid);
	return "SELECT r.error_code || '/' || r.replayed FROM vote_guard.cast_vote($c, $e, "
	  . join(', ', @args) . ') r';
}

# end a background session whose server may have gone away
sub close_session
{
	my ($s) = @_;
	eval {
		$s->{run}->pump_nb();
		$s->{stdin} .= "\\q\n" if $s->{run}->pumpable();
		$s->{run}->finish;
		1;
	} or note "session ended: $@";
	return;
}

query(q{
	CREATE EXTENSION vote_guard;
	SELECT vote_guard.create_contest('immediate stop');
	SELECT vote_guard.add_entry(1, e) FROM generate_series(1, 3) e;
	SELECT vote_guard.create_contest('backend killed');
	SELECT vote_guard.add_entry(2, e) FROM generate_series(1, 3) e;
});

# committed before anything happens: two votes per entry in each contest
is( query(q{
	SELECT string_agg(r.error_code, ',')
	  FROM generate_series(1, 2) c, generate_series(1, 6) i,
	       LATERAL vote_guard.cast_vote(c, i % 3 + 1, ('192.0.2.' || i)::inet,
	                                    'pre' || i, 'pre' || i || '@example.org') r}),
	join(',', ('ok') x 12),
	'12 votes committed before the crashes');

########################################################################
# Part 1: immediate shutdown
########################################################################

# an uncommitted vote
my $lost = $node->background_psql('postgres', on_error_stop => 0);
$lost->query_safe('BEGIN');
is($lost->query_safe(cast_sql(1, 1, '198.51.100.1', 'lost', 'lost@example.org', 'req-lost')),
	'ok/false', 'uncommitted vote is ok inside its transaction');

# the same voter again, in flight: waits for the uncommitted one
my $waiter = $node->background_psql('postgres', on_error_stop => 0);
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
$waiter->query_until(qr/casting/,
	"\\echo casting\n" . cast_sql(1, 2, '198.51.100.1', 'lost', undef, 'req-waiter') . ";\n");
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $waiter_pid"),
	'second vote of that voter waits for the first');

# a vote committed just before the crash (autocommit and explicit COMMIT)
my $kept = $node->background_psql('postgres', on_error_stop => 0);
is($kept->query_safe(cast_sql(1, 3, '198.51.100.2', 'kept', 'kept@example.org', 'req-kept')),
	'ok/false', 'autocommit vote ok');
$kept->query_safe('BEGIN');
is( $kept->query_safe(
		cast_sql(1, 3, '198.51.100.3', 'kept2', 'kept2@example.org', 'req-kept2')),
	'ok/false',
	'explicit transaction vote ok');
$kept->query_safe('COMMIT');

# a vote in a prepared transaction
my $prepared = $node->background_psql('postgres', on_error_stop => 0);
$prepared->query_safe('BEGIN');
is( $prepared->query_safe(
		cast_sql(1, 2, '198.51.100.4', 'prepared', 'prepared@example.org', 'req-prepared')),
	'ok/false',
	'prepared vote ok');
$prepared->query_safe("PREPARE TRANSACTION 'vg_prepared'");

$node->stop('immediate');
close_session($_) for ($lost, $waiter, $kept, $prepared);
$node->start;

is( query(
		q{SELECT count(*) FROM vote_guard.votes
		   WHERE user_id = 'lost' OR request_id IN ('req-lost', 'req-waiter')}),
	'0',
	'after immediate stop: the uncommitted and the waiting vote are gone');
is( query(
		q{SELECT string_agg(user_id, ',' ORDER BY user_id) FROM vote_guard.votes
		   WHERE user_id IN ('kept', 'kept2')}),
	'kept,kept2',
	'after immediate stop: committed votes are there');
is(query(q{SELECT gid FROM pg_prepared_xacts}),
	'vg_prepared', 'after immediate stop: the prepared transaction survived');
is(results_of(1), '1:2,2:2,3:4',
	'after immediate stop: results count committed votes only');
drift_ok(1, 'after immediate stop: verify() drift 0');

# the lost voter votes again, with the same request_id: a new vote, no replay
is(query(cast_sql(1, 1, '198.51.100.1', 'lost', 'lost@example.org', 'req-lost')),
	'ok/false', 'the voter of the lost vote can vote again (same request_id)');
is(query(cast_sql(1, 1, '198.51.100.2', undef, undef, undef)),
	'duplicate_ip/false', 'a committed voter is still a duplicate');
is(query(cast_sql(1, 1, undef, undef, 'Kept2+x@Example.org', 'req-other')),
	'duplicate_email/false', 'a committed voter is still a duplicate (e-mail)');
is(query(cast_sql(1, 1, '203.0.113.9', undef, undef, 'req-kept')),
	'ok/true', 'a committed request_id is still replayed');

query(q{COMMIT PREPARED 'vg_prepared'});
is(query(q{SELECT count(*) FROM vote_guard.votes WHERE user_id = 'prepared'}),
	'1', 'the prepared vote is there once committed');
is(results_of(1), '1:3,2:3,3:4', 'results after COMMIT PREPARED');
drift_ok(1, 'verify() drift 0 after COMMIT PREPARED');
is(query(cast_sql(1, 3, '198.51.100.4', undef, undef, undef)),
	'duplicate_ip/false', 'the prepared voter is a duplicate now');

########################################################################
# Part 2: kill -9 of a backend holding an uncommitted vote
########################################################################

my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $victim_pid = $victim->query_safe('SELECT pg_backend_pid()');
$victim->query_safe('BEGIN');
is($victim->query_safe(cast_sql(2, 1, '198.51.100.1', 'killed', 'killed@example.org', 'req-killed')),
	'ok/false', 'vote ok in the backend that will be killed');

my $bystander = $node->background_psql('postgres', on_error_stop => 0);
$bystander->query_safe('BEGIN');
is( $bystander->query_safe(
		cast_sql(2, 2, '198.51.100.2', 'bystander', 'bystander@example.org', 'req-bystander')),
	'ok/false',
	'uncommitted vote in another backend');

is(query(cast_sql(2, 3, '198.51.100.3', 'survivor', 'survivor@example.org', 'req-survivor')),
	'ok/false', 'committed vote before the kill');

my $log_offset = -s $node->logfile;
ok(kill('KILL', $victim_pid), 'backend with the uncommitted vote killed');
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
ok($node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'),
	'server is back after crash recovery');
close_session($_) for ($victim, $bystander);

is( query(
		q{SELECT count(*) FROM vote_guard.votes
		   WHERE user_id IN ('killed', 'bystander') OR request_id IN ('req-killed', 'req-bystander')}),
	'0',
	'after the crash: the uncommitted votes are gone');
is(query(q{SELECT count(*) FROM vote_guard.votes WHERE user_id = 'survivor'}),
	'1', 'after the crash: the committed vote is there');
is(results_of(2), '1:2,2:2,3:3', 'after the crash: results count committed votes only');
drift_ok(2, 'after the crash: verify() drift 0');

is(query(cast_sql(2, 1, '198.51.100.1', 'killed', 'killed@example.org', 'req-killed')),
	'ok/false', 'the voter of the killed backend can vote again');
is(query(cast_sql(2, 2, '198.51.100.2', 'bystander', 'bystander@example.org', 'req-bystander')),
	'ok/false', 'the other lost voter can vote again');
is(query(cast_sql(2, 1, undef, 'survivor', undef, undef)),
	'duplicate_user/false', 'the committed voter is still a duplicate');
is(results_of(2), '1:3,2:3,3:3', 'results after the new votes');
drift_ok(2, 'verify() drift 0 after the new votes');
drift_ok(1, 'contest 1 untouched by the second crash: drift 0');
is(results_of(1), '1:3,2:3,3:4', 'contest 1 results unchanged by the second crash');

$node->stop;
done_testing();
