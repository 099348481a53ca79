# vote_guard: the voting policies under 64 concurrent clients (pgbench).
#
# For each policy a contest gets 64 clients x 30 calls from 200 users whose
# vectors overlap: an IP per 2 or 3 users, an e-mail (in two spellings) per 2
# users of different IP groups, random entries out of 5, a request_id on half
# of the calls.  Every call is logged in the same transaction as its vote
# (INSERT INTO vg_plog SELECT ... FROM vote_guard.cast_vote(...)), so the log
# holds exactly the answers of the committed calls.  Afterwards:
#
#  - no vector (ip key, user_id, e-mail key) has more than votes_per_voter
#    votes in a window, nor more than per_entry_limit for one entry, nor two
#    votes closer than the cooldown;
#  - ok answers (not replayed) minus ok retractions == vote rows, and each
#    vote is the one its answer reported; verify() drift 0 for every entry;
#  - every rejection is backed by the votes (no false limit or cooldown);
#  - pgbench finishes every transaction: no errors, no deadlocks, and under
#    READ COMMITTED no serialization failures.
#
# (a)  votes_per_voter 3, per_entry_limit 1 (approval voting)
# (b)  2 votes per day, 2 per entry, contest opened 36 hours ago
# (c)  5 votes, cooldown 1 hour (only the first vote of a voter counts)
# (d)  allow_change, 2 votes, 1 per entry: cast, change_vote, retract_vote
# (d1) allow_change with the default policy (no voter locks)
# (e)  default policy (one vote per voter)
# (a-rr) (a) again under REPEATABLE READ, pgbench retrying serialization
#     failures (--max-tries)

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $clients = 64;
my $jobs = 2;
my $tx = 30;                    # per client
my $total = $clients * $tx;    # 1920 calls per run
my $users = 200;
my $entries = 5;

my $node = PostgreSQL::Test::Cluster->new('policy_stress');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = " . ($clients + 20) . "\n");
$node->start;

sub query { return $node->safe_psql('postgres', $_[0]); }

# User u: user_id u<u>; IP 10.9.0.<g> with g = floor((u-1)*2/5)+1, so the
# IP groups hold 3, 2, 3, 2, ... users; e-mail m<n>@example.com with
# n = (u-1) % 100 + 1, spelled M<n>+t<u>@Example.COM by the users above 100
# (the same key after normalisation), so users u and u+100 share it.
query(qq{
	CREATE EXTENSION vote_guard;
	CREATE TABLE vg_voters AS
	SELECT u, 'u' || u AS user_id,
	       ('10.9.0.' || ((u - 1) * 2 / 5 + 1))::inet AS ip,
	       CASE WHEN u <= 100 THEN 'm' || u || '\@example.com'
	            ELSE 'M' || (u - 100) || '+t' || u || '\@Example.COM' END AS email
	  FROM generate_series(1, $users) u;
	CREATE UNIQUE INDEX ON vg_voters (u);
	CREATE TABLE vg_plog (
	    contest   bigint NOT NULL,
	    op        text NOT NULL,
	    u         int NOT NULL,
	    entry     int,
	    old_entry int,
	    rq        text,
	    LIKE vote_guard.vote_result,
	    at        timestamptz NOT NULL DEFAULT clock_timestamp());
});
is( query(q{
	SELECT count(DISTINCT ip) || '/' || max(n) || '/' || min(n)
	  FROM (SELECT ip, count(*) OVER (PARTITION BY ip) n FROM vg_voters) s}),
	'80/3/2', 'IP groups of 2 and 3 users');
is( query(q{
	SELECT count(DISTINCT vote_guard.normalize_email(email)) FROM vg_voters}),
	'100', 'every e-mail shared by two users');

my $tmp = PostgreSQL::Test::Utils::tempdir;

# cast for a random user and entry; request_id on half of the calls
my $cast_sql = q{
INSERT INTO vg_plog (contest, op, u, entry, rq, success, error_code, http_status,
                     vote_count, vote_id, retry_at, replayed)
SELECT :c, 'cast', w.u, :e, q.rq, r.*
  FROM vg_voters w
 CROSS JOIN LATERAL (SELECT CASE WHEN :rq <= 10
                                 THEN 'r' || :c || '-' || w.u || '-' || :rq END AS rq) q
 CROSS JOIN LATERAL vote_guard.cast_vote(:c, :e, w.ip, w.user_id, w.email, q.rq) r
 WHERE w.u = :u;
};
my $vars = qq{
\\set u random(1, $users)
\\set e random(1, $entries)
\\set o random(1, $entries)
\\set rq random(1, 20)
\\set op random(1, 10)
};

my %scripts = (
	cast => $vars . $cast_sql,
	cast_rr => $vars
	  . "BEGIN ISOLATION LEVEL REPEATABLE READ;\n"
	  . $cast_sql
	  . "COMMIT;\n",
	# 5/10 cast, 3/10 change (1/10 without old_entry), 2/10 retract
	# (1/10 without entry_id)
	change => $vars . qq{
\\if :op <= 5
$cast_sql
\\elif :op <= 8
INSERT INTO vg_plog (contest, op, u, entry, old_entry, success, error_code,
                     http_status, vote_count, vote_id, retry_at, replayed)
SELECT :c, 'change', w.u, :e, q.o, r.*
  FROM vg_voters w
 CROSS JOIN LATERAL (SELECT (CASE WHEN :op = 6 THEN NULL ELSE :o END)::bigint AS o) q
 CROSS JOIN LATERAL vote_guard.change_vote(:c, :e, w.user_id, q.o) r
 WHERE w.u = :u;
\\else
INSERT INTO vg_plog (contest, op, u, old_entry, success, error_code,
                     http_status, vote_count, vote_id, retry_at, replayed)
SELECT :c, 'retract', w.u, q.o, r.*
  FROM vg_voters w
 CROSS JOIN LATERAL (SELECT (CASE WHEN :op = 9 THEN NULL ELSE :o END)::bigint AS o) q
 CROSS JOIN LATERAL vote_guard.retract_vote(:c, w.user_id, q.o) r
 WHERE w.u = :u;
\\endif
});

# Run pgbench for contest $c with one of the scripts; returns its output.
sub run_pgbench
{
	my ($name, $c, $script, @opts) = @_;
	my $retries = grep { /^--max-tries/ } @opts;
	my $file = "$tmp/$script.sql";
	PostgreSQL::Test::Utils::append_to_file($file, $scripts{$script})
	  unless -e $file;
	my @cmd = (
		'pgbench', '--no-vacuum', "--client=$clients", "--jobs=$jobs",
		"--transactions=$tx", '--failures-detailed', '--verbose-errors',
		"--define=c=$c", @opts, "--file=$file",
		'-h', $node->host, '-p', $node->port, 'postgres');
	my ($out, $err) = ('', '');
	IPC::Run::run(\@cmd, '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	note "$name: pgbench output:\n$out";
	is($rc, 0, "$name: pgbench exits 0") or diag $err;
	like($out, qr{number of transactions actually processed: $total/$total},
		"$name: every transaction processed");
	like($out, qr{number of failed transactions: 0 \(},
		"$name: no failed transaction");
	like($out, qr{number of deadlock failures: 0 \(},
		"$name: no deadlock failures");
	my @deadlocks = $err =~ /(deadlock detected)/g;
	is(scalar(@deadlocks), 0, "$name: no deadlock reported");
	# with --verbose-errors every error is a line "... ERROR:  <message>"
	my @errors = $err =~ /^(.*(?:ERROR|FATAL|PANIC|error:|aborted).*)$/mg;
	my @serialization = grep { /ERROR:  could not serialize access/ } @errors;
	my @other = grep { !/ERROR:  could not serialize access/ } @errors;
	is(join("\n", @other), '', "$name: no error other than serialization failures");
	is(scalar(@serialization), 0, "$name: no serialization failure under READ COMMITTED")
	  unless $retries;
	return ($out, scalar(@serialization));
}

my %policy_sql = (
	a => q{votes_per_voter => 3, per_entry_limit => 1},
	b => q{opens_at => now() - interval '36 hours', votes_per_voter => 2,
	       per_entry_limit => 2, vote_window => '1 day'},
	c => q{votes_per_voter => 5, cooldown => '1 hour'},
	d => q{votes_per_voter => 2, per_entry_limit => 1, allow_change => true},
	d1 => q{allow_change => true},
	e => q{dedupe_on => '{ip,user,email}'},
	'a-rr' => q{votes_per_voter => 3, per_entry_limit => 1},
);

sub create_contest
{
	my ($name) = @_;
	my $c = query(qq{SELECT vote_guard.create_contest('$name', $policy_sql{$name})});
	query(qq{SELECT vote_guard.add_entry($c, e) FROM generate_series(1, $entries) e});
	return $c;
}

# Check the invariants of contest $c after its run.
#  n, m: votes per vector per window, per (vector, entry); max_n, max_m:
#  what the run must have reached; cooldown (SQL interval) or undef; codes:
#  the error codes each op may answer; deletes: retract_vote was called.
sub check_contest
{
	my ($name, $c, %p) = @_;
	my ($n, $m) = ($p{n}, $p{m});
	my $cooldown = $p{cooldown} // '0';

	is(query(qq{SELECT count(*) FROM vg_plog WHERE contest = $c}),
		$total, "$name: every committed call is logged once");

	# the answers are well-formed: known codes per op, status, success
	my $codes = join(', ',
		map { my $op = $_; map { "('$op', '$_')" } @{ $p{codes}{$op} } }
		  sort keys %{ $p{codes} });
	is( query(qq{
		SELECT count(*) FROM vg_plog l
		  LEFT JOIN (VALUES $codes) k(op, code)
		         ON k.op = l.op AND k.code = l.error_code
		  LEFT JOIN (VALUES ('ok', 200), ('duplicate_ip', 409), ('duplicate_user', 409),
		                    ('duplicate_email', 409), ('limit_reached', 429),
		                    ('cooldown', 429), ('invalid_input', 400),
		                    ('vote_not_found', 404)) s(code, status)
		         ON s.code = l.error_code
		 WHERE l.contest = $c
		   AND (k.code IS NULL OR s.status IS DISTINCT FROM l.http_status
		        OR l.success IS DISTINCT FROM (l.error_code = 'ok')
		        OR (l.error_code = 'ok') IS DISTINCT FROM (l.vote_id IS NOT NULL)
		        OR (l.error_code = 'ok' AND l.vote_count IS NULL)
		        OR l.replayed IS NULL OR (l.replayed AND l.error_code <> 'ok'))}),
		'0', "$name: every answer has an expected code, status and columns");
	note "$name: answers: " . query(qq{
		SELECT string_agg(op || ' ' || error_code || CASE WHEN replayed THEN ' (replay)' ELSE '' END
		                  || ': ' || n, ', ' ORDER BY op, error_code, replayed)
		  FROM (SELECT op, error_code, replayed, count(*) n FROM vg_plog
		         WHERE contest = $c GROUP BY 1, 2, 3) s});
	is( query(qq{
		SELECT count(*) FILTER (WHERE error_code = 'ok') > 0
		       AND count(*) FILTER (WHERE error_code IN ('limit_reached', 'cooldown',
		                            'duplicate_ip', 'duplicate_user', 'duplicate_email')) > 0
		  FROM vg_plog WHERE contest = $c AND op = 'cast'}),
		't', "$name: the run had both accepted and refused votes");

	# the policy: per vector and window, per vector, window and entry
	my $vec = qq{
		vec AS (
		  SELECT v.vote_id, v.entry_id, v.window_no, v.created_at, x.kind, x.k
		    FROM vote_guard.votes v
		   CROSS JOIN LATERAL (VALUES ('ip', encode(v.ip_key, 'hex')), ('user', v.user_id),
		                              ('email', encode(v.email_key, 'hex'))) x(kind, k)
		   WHERE v.contest_id = $c AND x.k IS NOT NULL)};
	is( query(qq{
		WITH $vec,
		w AS (SELECT count(*) n FROM vec GROUP BY kind, k, window_no),
		we AS (SELECT count(*) n FROM vec GROUP BY kind, k, window_no, entry_id)
		SELECT (SELECT count(*) FROM w WHERE n > $n) || '/' ||
		       (SELECT count(*) FROM we WHERE n > $m) || '/' ||
		       (SELECT max(n) FROM w) || '/' || (SELECT max(n) FROM we)}),
		"0/0/$p{max_n}/$p{max_m}",
		"$name: no vector over $n votes per window or $m per entry (and the limits were reached)"
	);
	is( query(qq{
		SELECT count(*) FROM vote_guard.votes
		 WHERE contest_id = $c
		   AND (ip_key IS NULL OR user_id IS NULL OR email_key IS NULL)}),
		'0', "$name: every vote has its three vectors");
	if ($p{cooldown})
	{
		is( query(qq{
			WITH $vec
			SELECT count(*) FROM vec a
			  JOIN vec b ON a.kind = b.kind AND a.k = b.k AND a.vote_id < b.vote_id
			 WHERE b.created_at - a.created_at < interval '$p{cooldown}'
			   AND a.created_at - b.created_at < interval '$p{cooldown}'}),
			'0', "$name: no two votes of a vector closer than $p{cooldown}");
	}
	is( query(qq{
		SELECT count(*) FILTER (WHERE v.window_no <> $p{window_no})
		       + count(*) FILTER (WHERE v.window_no <> CASE WHEN c.vote_window IS NULL THEN 0
		              ELSE floor(extract(epoch FROM v.created_at - c.opens_at)
		                         / extract(epoch FROM c.vote_window)) END)
		  FROM vote_guard.votes v JOIN vote_guard.contests c ON c.id = v.contest_id
		 WHERE v.contest_id = $c}),
		'0', "$name: every vote is in window $p{window_no}");

	# ok casts - ok retractions == rows
	is( query(qq{
		SELECT count(*) FILTER (WHERE op = 'cast' AND error_code = 'ok' AND NOT replayed)
		       - count(*) FILTER (WHERE op = 'retract' AND error_code = 'ok')
		  FROM vg_plog WHERE contest = $c}),
		query(qq{SELECT count(*) FROM vote_guard.votes WHERE contest_id = $c}),
		"$name: ok casts (not replayed) - ok retractions == vote rows");
	# each vote id answered once; the rows are the cast ones not retracted
	is( query(qq{
		WITH casts AS (SELECT vote_id FROM vg_plog
		                WHERE contest = $c AND op = 'cast' AND error_code = 'ok' AND NOT replayed),
		     retracts AS (SELECT vote_id FROM vg_plog
		                   WHERE contest = $c AND op = 'retract' AND error_code = 'ok')
		SELECT (SELECT count(*) - count(DISTINCT vote_id) FROM casts) || '/' ||
		       (SELECT count(*) - count(DISTINCT vote_id) FROM retracts) || '/' ||
		       (SELECT count(*) FROM retracts WHERE vote_id NOT IN (SELECT vote_id FROM casts)) || '/' ||
		       (SELECT count(*) FROM (SELECT vote_id FROM casts EXCEPT SELECT vote_id FROM retracts) x
		          FULL JOIN (SELECT vote_id FROM vote_guard.votes WHERE contest_id = $c) v
		          USING (vote_id) WHERE x.vote_id IS NULL OR v.vote_id IS NULL)}),
		'0/0/0/0',
		"$name: vote ids answered once; the rows are exactly the cast ones not retracted");

	# each vote is the voter's, with the request_id and, after the moves,
	# the entry its answers reported (the log's clock orders the moves of a
	# vote: each waited for the previous one's commit on the row lock)
	my $keys = qq{
		keys AS (SELECT w.u, w.user_id, vote_guard.ip_key($c, w.ip) AS ik,
		                vote_guard.email_key($c, w.email) AS ek
		           FROM vg_voters w)};
	is( query(qq{
		WITH $keys,
		last_move AS (
		  SELECT DISTINCT ON (vote_id) vote_id, entry FROM vg_plog
		   WHERE contest = $c AND op = 'change' AND error_code = 'ok'
		   ORDER BY vote_id, at DESC)
		SELECT count(*) FROM vote_guard.votes v
		  LEFT JOIN vg_plog l ON l.contest = $c AND l.op = 'cast' AND l.error_code = 'ok'
		                     AND NOT l.replayed AND l.vote_id = v.vote_id
		  LEFT JOIN keys k ON k.u = l.u
		  LEFT JOIN last_move m ON m.vote_id = v.vote_id
		 WHERE v.contest_id = $c
		   AND (l.u IS NULL OR v.user_id <> k.user_id OR v.ip_key <> k.ik
		        OR v.email_key <> k.ek OR v.request_id IS DISTINCT FROM l.rq
		        OR v.entry_id <> coalesce(m.entry, l.entry))}),
		'0', "$name: each vote is its voter's, with its request_id and entry");
	is( query(qq{
		SELECT count(*) FROM vg_plog l
		  LEFT JOIN vg_plog c ON c.contest = $c AND c.op = 'cast' AND c.error_code = 'ok'
		                     AND NOT c.replayed AND c.vote_id = l.vote_id
		 WHERE l.contest = $c AND l.op <> 'cast' AND l.error_code = 'ok'
		   AND (c.u IS DISTINCT FROM l.u OR c.at > l.at)}),
		'0', "$name: changes and retractions touched only the user's own votes");

	if ($p{deletes} || $p{moves})
	{
		# the vote's entry just before a move or retraction that named one
		my $wrong = query(qq{
			WITH ev AS (
			  SELECT l.*, lag(coalesce(l.entry, -1)) OVER (PARTITION BY l.vote_id ORDER BY l.at) AS before
			    FROM vg_plog l
			   WHERE l.contest = $c AND l.error_code = 'ok' AND NOT l.replayed)
			SELECT op || ' (user ' || u || ', entry ' || old_entry || ') acted on vote '
			       || vote_id || ', which was then for entry ' || coalesce(before::text, '?')
			  FROM ev
			 WHERE op IN ('change', 'retract') AND old_entry IS NOT NULL
			   AND before IS DISTINCT FROM old_entry});
		is($wrong, '',
			"$name: change_vote/retract_vote given an entry acted on a vote for that entry");
	}
	else
	{
		# no vote left the table: every rejection is backed by the votes
		is( query(qq{
			WITH $keys,
			vv AS (SELECT * FROM vote_guard.votes WHERE contest_id = $c)
			SELECT count(*) FROM vg_plog l JOIN keys k USING (u)
			 WHERE l.contest = $c AND l.op = 'cast'
			   AND l.error_code IN ('limit_reached', 'duplicate_ip', 'duplicate_user',
			                        'duplicate_email')
			   AND NOT ((SELECT count(*) FROM vv WHERE vv.ip_key = k.ik) >= $n
			         OR (SELECT count(*) FROM vv WHERE vv.user_id = k.user_id) >= $n
			         OR (SELECT count(*) FROM vv WHERE vv.email_key = k.ek) >= $n
			         OR (SELECT count(*) FROM vv WHERE vv.ip_key = k.ik AND vv.entry_id = l.entry) >= $m
			         OR (SELECT count(*) FROM vv WHERE vv.user_id = k.user_id AND vv.entry_id = l.entry) >= $m
			         OR (SELECT count(*) FROM vv WHERE vv.email_key = k.ek AND vv.entry_id = l.entry) >= $m)}),
			'0', "$name: every limit refusal is backed by a vector at its limit");
		is( query(qq{
			WITH $keys,
			vv AS (SELECT * FROM vote_guard.votes WHERE contest_id = $c)
			SELECT count(*) FROM vg_plog l JOIN keys k USING (u)
			 WHERE l.contest = $c AND l.op = 'cast'
			   AND NOT CASE l.error_code
			       WHEN 'duplicate_ip' THEN EXISTS (SELECT FROM vv WHERE vv.ip_key = k.ik)
			       WHEN 'duplicate_user' THEN EXISTS (SELECT FROM vv WHERE vv.user_id = k.user_id)
			       WHEN 'duplicate_email' THEN EXISTS (SELECT FROM vv WHERE vv.email_key = k.ek)
			       WHEN 'cooldown' THEN EXISTS (
			            SELECT FROM vv WHERE (vv.ip_key = k.ik OR vv.user_id = k.user_id
			                                  OR vv.email_key = k.ek)
			                             AND vv.created_at + interval '$cooldown' = l.retry_at)
			       WHEN 'limit_reached' THEN l.retry_at IS NOT DISTINCT FROM $p{limit_retry_at}
			       ELSE true END}),
			'0', "$name: duplicates name a vector that voted; cooldown and limit retry_at are right");
		is( query(qq{
			SELECT count(*) FROM vg_plog l
			  LEFT JOIN vote_guard.votes v ON v.contest_id = $c AND v.request_id = l.rq
			 WHERE l.contest = $c AND l.replayed
			   AND (v.vote_id IS DISTINCT FROM l.vote_id)}),
			'0', "$name: every replay returns the vote of its request_id");
	}

	is( query(qq{
		SELECT count(*) FILTER (WHERE drift <> 0 OR counted <> actual) || '/' || count(*)
		       || '/' || sum(actual)
		  FROM vote_guard.verify($c)}),
		"0/$entries/" . query(qq{SELECT count(*) FROM vote_guard.votes WHERE contest_id = $c}),
		"$name: verify() drift 0 for every entry");
}

my %ok_refusals = (
	a => [ 'ok', 'limit_reached' ],
	b => [ 'ok', 'limit_reached' ],
	c => [ 'ok', 'limit_reached', 'cooldown' ],
	e => [ 'ok', 'duplicate_ip', 'duplicate_user', 'duplicate_email' ],
);

# (a) approval: 3 votes, at most 1 per entry
my $ca = create_contest('a');
run_pgbench('(a)', $ca, 'cast');
check_contest('(a)', $ca, n => 3, m => 1, max_n => 3, max_m => 1, window_no => 0,
	codes => { cast => $ok_refusals{a} }, limit_retry_at => 'NULL');

# (b) 2 votes a day, 2 per entry; opened 36 hours ago: window 1, which
# ends 48 hours after opens_at
my $cb = create_contest('b');
run_pgbench('(b)', $cb, 'cast');
check_contest('(b)', $cb, n => 2, m => 2, max_n => 2, max_m => 2, window_no => 1,
	codes => { cast => $ok_refusals{b} },
	limit_retry_at => "(SELECT opens_at + interval '48 hours' FROM vote_guard.contests WHERE id = $cb)");

# (c) cooldown 1 hour: one vote per vector in the run; a second vote for the
# same entry is limit_reached (per_entry_limit 1, no windows: retry_at null)
my $cc = create_contest('c');
run_pgbench('(c)', $cc, 'cast');
check_contest('(c)', $cc, n => 5, m => 1, max_n => 1, max_m => 1, window_no => 0,
	cooldown => '1 hour', codes => { cast => $ok_refusals{c} },
	limit_retry_at => 'NULL');

# (d) allow_change, 2 votes, 1 per entry: casts, moves and retractions
my $cd = create_contest('d');
run_pgbench('(d)', $cd, 'change');
check_contest('(d)', $cd, n => 2, m => 1, max_n => 2, max_m => 1, window_no => 0,
	deletes => 1, moves => 1,
	codes => {
		cast => [ 'ok', 'limit_reached' ],
		change => [ 'ok', 'limit_reached', 'vote_not_found', 'invalid_input' ],
		retract => [ 'ok', 'vote_not_found', 'invalid_input' ],
	});
is( query(qq{
	SELECT count(DISTINCT op) FROM vg_plog WHERE contest = $cd AND error_code = 'ok'}),
	'3', '(d) casts, moves and retractions all succeeded sometimes');

# (d1) allow_change with one vote per voter: no voter locks, the indexes decide
my $cd1 = create_contest('d1');
run_pgbench('(d1)', $cd1, 'change');
check_contest('(d1)', $cd1, n => 1, m => 1, max_n => 1, max_m => 1, window_no => 0,
	deletes => 1, moves => 1,
	codes => {
		cast => [ 'ok', 'duplicate_ip', 'duplicate_user', 'duplicate_email' ],
		change => [ 'ok', 'vote_not_found' ],
		retract => [ 'ok', 'vote_not_found' ],
	});

# (e) default: one vote per voter
my $ce = create_contest('e');
run_pgbench('(e)', $ce, 'cast');
check_contest('(e)', $ce, n => 1, m => 1, max_n => 1, max_m => 1, window_no => 0,
	codes => { cast => $ok_refusals{e} }, limit_retry_at => 'NULL');

# (a-rr) (a) under REPEATABLE READ: a vote committed after the snapshot is a
# serialization failure (40001), retried by pgbench, never a wrong count
my $crr = create_contest('a-rr');
my ($out, $nerr) = run_pgbench('(a-rr)', $crr, 'cast_rr', '--max-tries=1000');
my ($retried) = $out =~ /number of transactions retried: (\d+)/;
ok(defined $retried, '(a-rr) pgbench reports retries');
note "(a-rr) transactions retried: " . ($retried // '?') . ", serialization errors: $nerr";
check_contest('(a-rr)', $crr, n => 3, m => 1, max_n => 3, max_m => 1, window_no => 0,
	codes => { cast => $ok_refusals{a} }, limit_retry_at => 'NULL');

# the server saw no deadlock in any run
unlike(slurp_file($node->logfile), qr/deadlock detected/, 'no deadlock in the server log');

$node->stop;
done_testing();
