# vote_guard: many concurrent cast_vote calls (pgbench, 64 clients).
#
# Every call is logged in the same transaction as the vote it may cast
# (INSERT INTO vg_log SELECT ... FROM vote_guard.cast_vote(...)), so the log
# holds exactly the answers of the committed calls.  pgbench must finish
# without a single failed transaction: duplicates are answers, not errors.
#
# (a) 100 voters, each hammered by concurrent calls for random entries, with
#     one of three request_ids: exactly one vote per voter, one ok per vote,
#     every other call a replay of that vote or duplicate_ip.
# (b) 300 users whose vectors overlap: an IP (as IPv4 or IPv4-mapped IPv6)
#     per 3 users, an e-mail (in two spellings) per 2 users of different IP
#     groups: no key twice, no two accepted users sharing an IP group or an
#     e-mail, every rejection backed by an accepted vote, counters exact.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $clients = 64;
my $tx_a = 30;    # per client: 1920 calls
my $tx_b = 40;    # per client: 2560 calls

my $node = PostgreSQL::Test::Cluster->new('concurrency');
$node->init;
$node->append_conf('postgresql.conf', "max_connections = " . ($clients + 20) . "\n");
$node->start;

sub query { return $node->safe_psql('postgres', $_[0]); }

query(q{
	CREATE EXTENSION vote_guard;
	SELECT vote_guard.create_contest('hammered voters');
	SELECT vote_guard.add_entry(1, e) FROM generate_series(1, 5) e;
	SELECT vote_guard.create_contest('overlapping voters');
	SELECT vote_guard.add_entry(2, e) FROM generate_series(1, 5) e;
	CREATE TABLE vg_log (
	    run   text NOT NULL,
	    voter int NOT NULL,
	    entry int NOT NULL,
	    rq    int,
	    LIKE vote_guard.vote_result);
});
is( query(q{
	SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
	 WHERE attrelid = 'vg_log'::regclass AND attnum > 0}),
	'run,voter,entry,rq,success,error_code,http_status,vote_count,vote_id,retry_at,replayed',
	'log table has the vote_result columns');

########################################################################
# (a) 100 voters hammered
########################################################################

# voter v: 10.1.0.v, user u<v>, v<v>@example.com, request id req-<v>-<1..3>
$node->pgbench(
	"--no-vacuum --client=$clients --jobs=4 --transactions=$tx_a",
	0,
	[
		qr{number of transactions actually processed: @{[$clients * $tx_a]}/@{[$clients * $tx_a]}},
		qr{number of failed transactions: 0 \(0\.000%\)}
	],
	[qr{^$}],
	'(a) pgbench, 100 hammered voters',
	{
		'003_voters_a' => q{
\set v random(1, 100)
\set e random(1, 5)
\set rq random(1, 3)
INSERT INTO vg_log
SELECT 'a', :v, :e, :rq, r.*
  FROM vote_guard.cast_vote(1, :e, ('10.1.0.' || :v)::inet, 'u' || :v,
                            'v' || :v || '@example.com', 'req-' || :v || '-' || :rq) r;
}
	});

is(query(q{SELECT count(*) FROM vg_log WHERE run = 'a'}),
	$clients * $tx_a, '(a) every call is logged');
my ($replays, $dups) = split /\|/, query(q{
	SELECT count(*) FILTER (WHERE replayed), count(*) FILTER (WHERE error_code <> 'ok')
	  FROM vg_log WHERE run = 'a'});
ok($replays > 0 && $dups > 0, '(a) the run exercised both replays and duplicates');
note "(a) replays: $replays, duplicates: $dups";
is( query(q{
	SELECT count(*) || '/' || count(DISTINCT user_id) || '/' || count(DISTINCT ip_key)
	       || '/' || count(DISTINCT email_key) || '/' || count(DISTINCT request_id)
	  FROM vote_guard.votes WHERE contest_id = 1}),
	'100/100/100/100/100',
	'(a) exactly 100 votes, one per voter');
is( query(q{
	SELECT count(*) FROM vote_guard.votes v
	  LEFT JOIN vg_log l ON l.run = 'a' AND l.vote_id = v.vote_id AND NOT l.replayed
	 WHERE v.contest_id = 1
	   AND (l.voter IS NULL
	        OR v.user_id <> 'u' || l.voter
	        OR v.entry_id <> l.entry
	        OR v.request_id <> 'req-' || l.voter || '-' || l.rq
	        OR v.ip_key <> vote_guard.ip_key(1, ('10.1.0.' || l.voter)::inet)
	        OR v.email_key <> vote_guard.email_key(1, 'v' || l.voter || '@example.com'))}),
	'0',
	'(a) each vote is the one its ok answer reported (voter, entry, request_id, keys)');
is( query(q{
	SELECT count(*) FILTER (WHERE error_code = 'ok' AND NOT replayed)
	       || '/' || count(DISTINCT voter) FILTER (WHERE error_code = 'ok' AND NOT replayed)
	  FROM vg_log WHERE run = 'a'}),
	query(q{SELECT count(*) || '/' || count(*) FROM vote_guard.votes WHERE contest_id = 1}),
	'(a) ok (not replayed) answers == votes, one per voter');
is( query(q{
	SELECT count(*) FROM vg_log l
	  JOIN vote_guard.votes v ON v.contest_id = 1 AND v.user_id = 'u' || l.voter
	 WHERE l.run = 'a' AND l.replayed
	   AND NOT (l.success AND l.error_code = 'ok' AND l.http_status = 200
	            AND l.vote_id = v.vote_id
	            AND v.request_id = 'req-' || l.voter || '-' || l.rq)}),
	'0',
	'(a) every replay returns the voter\'s vote and carries its request_id');
is( query(q{
	SELECT count(*) FROM vg_log l
	  JOIN vote_guard.votes v ON v.contest_id = 1 AND v.user_id = 'u' || l.voter
	 WHERE l.run = 'a' AND l.error_code <> 'ok'
	   AND NOT (NOT l.success AND l.error_code = 'duplicate_ip' AND l.http_status = 409
	            AND l.vote_id IS NULL AND NOT l.replayed
	            AND v.request_id <> 'req-' || l.voter || '-' || l.rq)}),
	'0',
	'(a) every other answer is duplicate_ip/409 for a request_id other than the vote\'s');
is( query(q{
	SELECT count(*) FROM vg_log
	 WHERE run = 'a' AND NOT (error_code = 'ok' OR error_code = 'duplicate_ip')}),
	'0', '(a) no other codes');
# vote_count: the requested entry's count as the call saw it (ok: with its
# own vote; duplicate: maybe 0), for a replay the count of the vote's entry
is( query(q{
	SELECT count(*) FROM vg_log l
	  JOIN vote_guard.votes v ON v.contest_id = 1 AND v.user_id = 'u' || l.voter
	  JOIN vote_guard.results(1) asked ON asked.entry_id = l.entry
	  JOIN vote_guard.results(1) voted ON voted.entry_id = v.entry_id
	 WHERE l.run = 'a'
	   AND NOT CASE WHEN l.replayed THEN l.vote_count BETWEEN 1 AND voted.votes
	                WHEN l.success THEN l.vote_count BETWEEN 1 AND asked.votes
	                ELSE l.vote_count BETWEEN 0 AND asked.votes END}),
	'0',
	'(a) every vote_count is within the final count of its entry');
is( query(q{
	SELECT count(*) FILTER (WHERE drift <> 0 OR counted <> actual) || '/' || count(*)
	       || '/' || sum(counted)
	  FROM vote_guard.verify(1)}),
	'0/5/100', '(a) verify() drift 0 for every entry, 100 counted');
is(query(q{SELECT sum(votes) FROM vote_guard.results(1)}), '100', '(a) results() sum to 100');

########################################################################
# (b) 300 users with overlapping vectors
########################################################################

# user k (1..300):
#   IP group g = (k-1)/3 -> 10.2.0.g, written ::ffff:10.2.0.g when k % 3 = 0
#   e-mail group m = ((7k) % 300)/2; 7 is invertible mod 300, so every group
#   has two users, k and k+43 (mod 300), never of the same IP group; the
#   second spells it " EM<m>+k<k>@Example.COM"
#   user u<k>, no request_id
$node->pgbench(
	"--no-vacuum --client=$clients --jobs=4 --transactions=$tx_b",
	0,
	[
		qr{number of transactions actually processed: @{[$clients * $tx_b]}/@{[$clients * $tx_b]}},
		qr{number of failed transactions: 0 \(0\.000%\)}
	],
	[qr{^$}],
	'(b) pgbench, 300 overlapping voters',
	{
		'003_voters_b' => q{
\set k random(1, 300)
\set e random(1, 5)
\set g (:k - 1) / 3
\set p (:k * 7) % 300
\set m :p / 2
INSERT INTO vg_log
SELECT 'b', :k, :e, NULL, r.*
  FROM vote_guard.cast_vote(2, :e,
         (CASE WHEN :k % 3 = 0 THEN '::ffff:' ELSE '' END || '10.2.0.' || :g)::inet,
         'u' || :k,
         CASE WHEN :p % 2 = 1 THEN ' EM' || :m || '+k' || :k || '@Example.COM'
              ELSE 'em' || :m || '@example.com' END) r;
}
	});

query(q{
	CREATE VIEW users_b AS
	SELECT k, (k - 1) / 3 AS g, ((k * 7) % 300) / 2 AS m,
	       (CASE WHEN k % 3 = 0 THEN '::ffff:' ELSE '' END || '10.2.0.' || (k - 1) / 3)::inet AS ip,
	       'em' || ((k * 7) % 300) / 2 || '@example.com' AS email
	  FROM generate_series(1, 300) k;
	CREATE VIEW accepted_b AS
	SELECT u.* FROM vg_log l JOIN users_b u ON u.k = l.voter
	 WHERE l.run = 'b' AND l.error_code = 'ok';
});

is(query(q{SELECT count(*) FROM vg_log WHERE run = 'b'}),
	$clients * $tx_b, '(b) every call is logged');
my $votes_b = query(q{SELECT count(*) FROM vote_guard.votes WHERE contest_id = 2});
cmp_ok($votes_b, '>', 0, '(b) some votes were accepted');
note "(b) accepted votes: $votes_b";

for my $col (qw(ip_key user_id email_key))
{
	is( query(qq{
		SELECT count(*) FROM (
		    SELECT $col FROM vote_guard.votes
		     WHERE contest_id = 2 AND $col IS NOT NULL
		     GROUP BY $col HAVING count(*) > 1) d}),
		'0',
		"(b) no $col appears twice in the contest");
}
is( query(q{
	SELECT count(*) FROM vote_guard.votes WHERE contest_id = 2
	   AND (ip_key IS NULL OR user_id IS NULL OR email_key IS NULL OR request_id IS NOT NULL)}),
	'0', '(b) every vote carries its three keys');

is( query(q{
	SELECT count(*) FILTER (WHERE error_code = 'ok' AND NOT replayed AND success
	                        AND http_status = 200 AND vote_id IS NOT NULL)
	       || '/' || count(*) FILTER (WHERE replayed)
	  FROM vg_log WHERE run = 'b'}),
	"$votes_b/0",
	'(b) ok answers == vote rows, no replays');
is( query(q{
	SELECT count(*) FROM vg_log l
	 WHERE l.run = 'b' AND l.error_code = 'ok'
	   AND NOT EXISTS (SELECT 1 FROM vote_guard.votes v
	                    WHERE v.contest_id = 2 AND v.vote_id = l.vote_id
	                      AND v.user_id = 'u' || l.voter AND v.entry_id = l.entry)}),
	'0',
	'(b) every ok answer is a vote of that user for that entry');
is( query(q{
	SELECT count(*) FROM vg_log
	 WHERE run = 'b' AND error_code <> 'ok'
	   AND NOT (error_code IN ('duplicate_ip', 'duplicate_email')
	            AND http_status = 409 AND NOT success AND NOT replayed AND vote_id IS NULL)}),
	'0',
	'(b) every other answer is duplicate_ip or duplicate_email (409)');

# the same, on raw identities: the keys must group what the rules group
is(query(q{SELECT count(*) - count(DISTINCT g) FROM accepted_b}),
	'0', '(b) no two accepted users share an IP group (IPv4 and mapped IPv6 are one)');
is(query(q{SELECT count(*) - count(DISTINCT m) FROM accepted_b}),
	'0', '(b) no two accepted users share an e-mail (both spellings are one)');
is( query(q{
	SELECT count(*) FROM vote_guard.votes v JOIN users_b u ON v.user_id = 'u' || u.k
	 WHERE v.contest_id = 2
	   AND (v.ip_key <> vote_guard.ip_key(2, u.ip)
	        OR v.email_key <> vote_guard.email_key(2, u.email))}),
	'0',
	'(b) stored keys are ip_key()/email_key() of the user\'s IP group and e-mail');

# every rejection is backed by an accepted vote of the vector it names;
# duplicate_email also means no vote held the caller's IP group
is( query(q{
	SELECT count(*) FROM vg_log l JOIN users_b u ON u.k = l.voter
	 WHERE l.run = 'b'
	   AND ((l.error_code = 'duplicate_ip'
	         AND NOT EXISTS (SELECT 1 FROM accepted_b a WHERE a.g = u.g))
	     OR (l.error_code = 'duplicate_email'
	         AND NOT EXISTS (SELECT 1 FROM accepted_b a WHERE a.m = u.m AND a.k <> u.k)))}),
	'0',
	'(b) every duplicate names a vector an accepted vote holds');

# nobody who called was left out without a reason
is( query(q{
	SELECT count(*) FROM users_b u
	 WHERE EXISTS (SELECT 1 FROM vg_log l WHERE l.run = 'b' AND l.voter = u.k)
	   AND NOT EXISTS (SELECT 1 FROM accepted_b a WHERE a.g = u.g OR a.m = u.m)}),
	'0',
	'(b) every caller voted or collides with an accepted vote');

is( query(q{
	SELECT count(*) FILTER (WHERE drift <> 0 OR counted <> actual) || '/' || count(*)
	       || '/' || sum(counted)
	  FROM vote_guard.verify(2)}),
	"0/5/$votes_b", '(b) verify() drift 0 for every entry');
is( query(q{
	SELECT count(*) FROM vote_guard.results(2) r
	 WHERE r.votes <> (SELECT count(*) FROM vg_log l
	                    WHERE l.run = 'b' AND l.error_code = 'ok' AND l.entry = r.entry_id)}),
	'0',
	'(b) each entry\'s count equals its ok answers');

# contest 1 untouched by (b)
is( query(q{
	SELECT count(*) FILTER (WHERE drift <> 0) || '/' || sum(counted) FROM vote_guard.verify(1)}),
	'0/100', 'contest 1 still exact after (b)');

$node->stop;
done_testing();
