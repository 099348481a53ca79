# vote_guard: faults in the middle of a 64-client storm.
#
# Four phases; in each, fault_storm.py (psycopg 3, one thread per client,
# autocommit) runs 64 clients for a few seconds against four fresh contests,
# 16 clients each, voters drawn from 200 users whose vectors overlap (an IP
# per 2 or 3 users, an e-mail in two spellings per 2 users):
#
#   one       one vote per voter (the default policy)
#   window    3 votes per 4-second window, 1 per entry
#   cooldown  20 votes, a 2-second cooldown
#   change    allow_change, 2 votes, 1 per entry: cast_vote, change_vote and
#             retract_vote mixed
#
# Every client logs every answer it received (vote_id, contest, entry, voter,
# code) as it arrives; an eighth of them run with statement_timeout, an
# eighth with lock_timeout, an eighth with both.  The faults:
#
#   terminate  random backends running a vote, pg_terminate_backend, again
#              and again
#   cancel     random backends running a vote, pg_cancel_backend, again and
#              again
#   crash1, crash2  the server stopped in immediate mode mid-storm and
#              started again; the clients reconnect
#
# After each phase, over every contest so far: no vector over its contest's
# limits per window and per entry, no two votes of a vector inside a
# cooldown, every vote in the window its time says; verify() drift 0 on
# every contest (no vote without its count, no count without its vote);
# every accepted answer a client received is in the table by vote_id, for
# its voter (unless a retraction of that voter was accepted or may have
# committed), those received before the crash included; only the errors the
# faults explain; and the next cast_vote of a new voter is ok.  Figures:
# calls, faults, answers by code, as notes.

use strict;
use warnings;

use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $python = '/usr/bin/python3';
plan skip_all => "$python with psycopg 3 is needed (Debian: python3-psycopg)"
  unless system($python, '-c', 'import psycopg') == 0;

my $driver = dirname(__FILE__) . '/fault_storm.py';
my $clients = 64;
my $entries = 5;

my $node = PostgreSQL::Test::Cluster->new('fault_storm');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = " . ($clients + 30) . "\n");
$node->start;

sub query { return $node->safe_psql('postgres', $_[0]); }

query(q{
	CREATE EXTENSION vote_guard;
	CREATE TABLE vg_log (
	    seq       int NOT NULL,
	    phase     text NOT NULL,
	    client    int NOT NULL,
	    op        text NOT NULL,
	    contest   bigint NOT NULL,
	    u         int NOT NULL,
	    entry     int,
	    old_entry int,
	    code      text NOT NULL,
	    vote_id   bigint,
	    replayed  boolean,
	    rq        text,
	    PRIMARY KEY (phase, seq));
	CREATE TABLE vg_faults (phase text, kind text, n int);
});

my %policy = (
	one => q{dedupe_on => '{ip,user,email}'},
	window => q{votes_per_voter => 3, vote_window => '4 seconds'},
	cooldown => q{votes_per_voter => 20, per_entry_limit => 20, cooldown => '2 seconds'},
	change => q{votes_per_voter => 2, per_entry_limit => 1, allow_change => true},
);
my @kinds = qw(one window cooldown change);
my $tmp = PostgreSQL::Test::Utils::tempdir;
my @contests;

# Start the storm of phase $phase on new contests; returns the handle, the
# log file and the contests.
sub start_storm
{
	my ($phase, $seconds) = @_;
	my %c;
	for my $k (@kinds)
	{
		$c{$k} = query(qq{SELECT vote_guard.create_contest('$phase $k', $policy{$k})});
		query(qq{SELECT vote_guard.add_entry($c{$k}, e) FROM generate_series(1, $entries) e});
		push @contests, $c{$k};
	}
	my $log = "$tmp/$phase.csv";
	my @cmd = (
		$python, $driver, '--host', $node->host, '--port', $node->port,
		'--phase', $phase, '--log', $log, '--clients', $clients,
		'--seconds', $seconds, '--max-calls', 200000,
		'--seed', scalar(@contests),
		map { ('--contest', "$_=$c{$_}") } @kinds);
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(\@cmd, '>', \$out, '2>', \$err);
	return { h => $h, out => \$out, err => \$err, log => $log, c => \%c, phase => $phase };
}

sub finish_storm
{
	my ($s) = @_;
	$s->{h}->finish;
	is($? >> 8, 0, "$s->{phase}: the clients ran to their end")
	  or diag ${ $s->{err} };
	my ($summary) = ${ $s->{out} } =~ /^(calls .*)$/m;
	note "$s->{phase}: clients: " . ($summary // '?');
	query(qq{COPY vg_log FROM '$s->{log}' (FORMAT csv)});
	return;
}

sub lines_of
{
	my ($file) = @_;
	open my $fh, '<', $file or return 0;
	my $n = 0;
	$n++ while <$fh>;
	close $fh;
	return $n;
}

# A loop in the server that signals random backends running a vote, 10
# times a second for about $seconds, and records how many it hit.
sub signal_loop
{
	my ($phase, $fn, $seconds) = @_;
	my $rounds = int($seconds * 10);
	query(qq{
		DO \$\$
		DECLARE n int; total int := 0;
		BEGIN
		  FOR i IN 1 .. $rounds LOOP
		    SELECT count(*) FILTER (WHERE $fn(pid)) INTO n
		      FROM (SELECT pid FROM pg_stat_activity
		             WHERE application_name = 'vg_storm' AND state = 'active'
		               AND query ~ 'vote_guard\\.(cast|change|retract)_vote'
		             ORDER BY random() LIMIT 2) s;
		    total := total + n;
		    COMMIT;    -- a fresh pg_stat_activity
		    PERFORM pg_sleep(0.1);
		  END LOOP;
		  INSERT INTO vg_faults VALUES ('$phase', '$fn', total);
		END
		\$\$});
	my $n = query(qq{SELECT n FROM vg_faults WHERE phase = '$phase'});
	note "$phase: $fn hit $n voting backends";
	return $n;
}

# The invariants over every contest so far, and the next vote after the
# fault.  $cut: the log lines written before the fault (crash phases).
sub check_after
{
	my ($s, $cut) = @_;
	my $phase = $s->{phase};
	my $all = join(',', @contests);

	note "$phase: answers: " . query(qq{
		SELECT string_agg(op || ' ' || code || ': ' || n, ', ' ORDER BY op, code)
		  FROM (SELECT op, code, count(*) n FROM vg_log WHERE phase = '$phase'
		         GROUP BY 1, 2) s});
	is( query(qq{
		SELECT count(*) FILTER (WHERE code = 'ok') > 0
		       AND count(*) FILTER (WHERE code IN ('duplicate_ip', 'duplicate_user',
		                            'duplicate_email', 'limit_reached', 'cooldown')) > 0
		  FROM vg_log WHERE phase = '$phase'}),
		't', "$phase: votes were accepted and refused");
	# the errors the faults explain: cancels and timeouts, terminations,
	# lost connections, the crash; no deadlock, no serialization failure,
	# no internal error
	is( query(qq{
		SELECT coalesce(string_agg(DISTINCT code, ', '), '') FROM vg_log
		 WHERE phase = '$phase' AND code LIKE 'E%'
		   AND code NOT IN ('E57014', 'E57014t', 'E55P03', 'E57P01', 'E57P02', 'E57P03',
		                    'Econn')}),
		'', "$phase: no error but cancels, timeouts, terminations and lost connections");

	# the policy, per contest, vector and window
	my $vec = qq{
		vec AS (
		  SELECT v.contest_id, v.vote_id, v.entry_id, v.window_no, v.created_at, x.kind, x.k
		    FROM vote_guard.votes v
		   CROSS JOIN LATERAL (VALUES ('ip', encode(v.ip_key, 'hex')), ('user', v.user_id),
		                              ('email', encode(v.email_key, 'hex'))) x(kind, k)
		   WHERE v.contest_id IN ($all) AND x.k IS NOT NULL)};
	is( query(qq{
		WITH $vec,
		w AS (SELECT contest_id, count(*) n FROM vec GROUP BY contest_id, kind, k, window_no),
		we AS (SELECT contest_id, count(*) n FROM vec
		        GROUP BY contest_id, kind, k, window_no, entry_id)
		SELECT (SELECT count(*) FROM w JOIN vote_guard.contests c ON c.id = w.contest_id
		         WHERE w.n > c.votes_per_voter) || '/' ||
		       (SELECT count(*) FROM we JOIN vote_guard.contests c ON c.id = we.contest_id
		         WHERE we.n > c.per_entry_limit)}),
		'0/0', "$phase: no vector over its contest's limit per window, nor per entry");
	is( query(qq{
		WITH $vec
		SELECT count(*) FROM vec a
		  JOIN vec b ON a.contest_id = b.contest_id AND a.kind = b.kind AND a.k = b.k
		            AND a.vote_id < b.vote_id
		  JOIN vote_guard.contests c ON c.id = a.contest_id
		 WHERE c.cooldown IS NOT NULL
		   AND b.created_at - a.created_at < c.cooldown
		   AND a.created_at - b.created_at < c.cooldown}),
		'0', "$phase: no two votes of a vector inside the cooldown");
	is( query(qq{
		SELECT count(*) FROM vote_guard.votes v JOIN vote_guard.contests c ON c.id = v.contest_id
		 WHERE v.contest_id IN ($all)
		   AND v.window_no <> CASE WHEN c.vote_window IS NULL THEN 0
		       ELSE floor(extract(epoch FROM v.created_at - c.opens_at)
		                  / extract(epoch FROM c.vote_window)) END}),
		'0', "$phase: every vote is in the window of its time");
	is( query(qq{
		SELECT count(DISTINCT window_no) > 1 FROM vote_guard.votes
		 WHERE contest_id = $s->{c}{window}}),
		't', "$phase: the window contest's votes span windows");

	# counters and votes
	is( query(qq{
		SELECT count(*) FILTER (WHERE drift <> 0 OR counted <> actual) || '/' || count(*)
		  FROM unnest('{$all}'::bigint[]) c, vote_guard.verify(c)}),
		'0/' . ($entries * @contests), "$phase: verify() drift 0 on every entry of every contest");

	# every accepted answer received is in the table, for its voter; a vote
	# may be gone only if a retraction of that voter answered ok for it or
	# ended in an error (it may have committed)
	my $missing = qq{
		SELECT l.* FROM vg_log l
		 WHERE l.code = 'ok' AND l.op IN ('cast', 'change')
		   AND NOT EXISTS (SELECT FROM vote_guard.votes v
		                    WHERE v.contest_id = l.contest AND v.vote_id = l.vote_id
		                      AND v.user_id = 'u' || l.u)
		   AND NOT EXISTS (SELECT FROM vg_log r
		                    WHERE r.contest = l.contest AND r.u = l.u AND r.op = 'retract'
		                      AND ((r.code = 'ok' AND r.vote_id = l.vote_id)
		                           OR r.code LIKE 'E%'))};
	is(query(qq{SELECT count(*) FROM ($missing) m}), '0',
		"$phase: every accepted answer received is in the table");
	is( query(qq{
		SELECT count(*) FROM vg_log l
		  JOIN vote_guard.votes v ON v.contest_id = l.contest AND v.vote_id = l.vote_id
		  JOIN vote_guard.contests c ON c.id = l.contest
		 WHERE l.phase = '$phase' AND l.code = 'ok' AND l.op = 'cast'
		   AND NOT l.replayed AND NOT c.allow_change AND v.entry_id <> l.entry}),
		'0', "$phase: each accepted vote is for the entry its answer was for");
	if (defined $cut)
	{
		my $before = query(qq{
			SELECT count(*) FROM vg_log
			 WHERE phase = '$phase' AND seq <= $cut AND code = 'ok' AND op IN ('cast', 'change')});
		ok($before > 0, "$phase: accepted answers were received before the crash");
		is( query(qq{SELECT count(*) FROM ($missing) m
		              WHERE m.phase = '$phase' AND m.seq <= $cut}),
			'0', "$phase: the $before accepted answers received before the crash are in the table");
	}

	# the next vote works
	my $n = 0;
	for my $k (@kinds)
	{
		$n++;
		is( query(qq{
			SELECT error_code FROM vote_guard.cast_vote($s->{c}{$k}, 1, '10.99.0.$n',
			       'next-$phase', 'next-$phase\@example.org')}),
			'ok', "$phase: the next cast_vote in the $k contest is ok");
	}
	return;
}

# (a) terminations
my $s = start_storm('terminate', 10);
sleep 1;
ok(signal_loop('terminate', 'pg_terminate_backend', 8) > 0, 'terminate: backends terminated');
finish_storm($s);
isnt(query(q{SELECT count(*) FROM vg_log WHERE phase = 'terminate' AND code IN ('E57P01', 'Econn')}),
	'0', 'terminate: clients saw their connections terminated');
check_after($s);

# (b) cancels (and the timeouts that run in every phase)
$s = start_storm('cancel', 10);
sleep 1;
ok(signal_loop('cancel', 'pg_cancel_backend', 8) > 0, 'cancel: statements cancelled');
finish_storm($s);
isnt(query(q{SELECT count(*) FROM vg_log WHERE phase = 'cancel' AND code = 'E57014'}),
	'0', 'cancel: clients saw their statements cancelled');
check_after($s);
note 'timeouts in all phases: ' . query(q{
	SELECT count(*) FILTER (WHERE code = 'E57014t') || ' statement_timeout, '
	       || count(*) FILTER (WHERE code = 'E55P03') || ' lock_timeout' FROM vg_log});

# (c) immediate stop in the middle of the storm, twice
for my $phase (qw(crash1 crash2))
{
	$s = start_storm($phase, 8);
	sleep 3;
	$node->stop('immediate');
	my $cut = lines_of($s->{log});
	usleep(500_000);
	$node->start;
	finish_storm($s);
	isnt(query(qq{SELECT count(*) FROM vg_log WHERE phase = '$phase' AND seq > $cut
	              AND code = 'ok'}),
		'0', "$phase: the clients reconnected and voted after the restart");
	check_after($s, $cut);
}

# the figures, also on prove's (and so run-all.sh's) output
diag 'fault storm: ' . query(q{
	SELECT count(*) || ' calls, ' || count(*) FILTER (WHERE code = 'ok') || ' ok, '
	       || count(*) FILTER (WHERE code LIKE 'E%') || ' errors ('
	       || count(*) FILTER (WHERE code = 'E57014t') || ' statement_timeout, '
	       || count(*) FILTER (WHERE code = 'E55P03') || ' lock_timeout); faults: '
	       || (SELECT string_agg(phase || ' ' || n, ', ') FROM vg_faults)
	       || ', 2 immediate stops' FROM vg_log})
  . (Test::More->builder->is_passing
	? '; duplicates beyond the policy 0, drift 0, accepted answers lost 0'
	: '; CHECKS FAILED');

unlike(slurp_file($node->logfile), qr/deadlock detected/, 'no deadlock in the server log');

$node->stop;
done_testing();
