# vote_guard: the data and checks that test/upgrade/update.pl and
# test/upgrade/pg_upgrade.pl share: a database filled through the 1.0 API
# (the oldest released one, so every later version can be filled with it),
# the queries that must answer the same before and after an upgrade, and
# the catalog comparison (test/upgrade/catalog.sql).
package VgUpgrade;

use strict;
use warnings;

use Exporter 'import';
our @EXPORT = qw($fill $cast $cast_expected $owner_writes $owner_expected $known_sql
  $known_expected $replay_sql $replay_expected $state_sql $drift_sql $drift_expected
  new_votes_sql $new_expected catalog_diff);

# Contests:
#  1 default policy (ip, user, email), 3 entries
#  2 user only, login required, 3 votes a day, 1 per entry, 4 entries
#  3 user only, allow_change (votes changed and retracted), 2 entries
#  4 ip and email, /24, cooldown 1 hour, created after rotate_secrets (version 2)
#  5 default policy, closed after its votes
our $fill = q{
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
our $cast = q{
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
our $owner_writes = q{
	INSERT INTO vote_guard.votes (contest_id, entry_id, user_id)
	VALUES (1, 2, 'direct-user');
	INSERT INTO vote_guard.votes (contest_id, entry_id, ip_key)
	VALUES (1, 3, vote_guard.ip_key(1, '203.0.113.200'));
	SELECT r.error_code FROM vote_guard.change_vote(3, 1, 'mover1', 2) r;
	SELECT r.error_code FROM vote_guard.retract_vote(3, 'mover2') r;
	SELECT vote_guard.close_contest(5) IS NOT NULL;
};

# Known voters, each a duplicate (or refused) of a vote made above.
our $known_sql = q{
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
our $known_expected = join(',',
	'1:duplicate_ip', '2:duplicate_user', '3:duplicate_email', '4:duplicate_user',
	'5:duplicate_ip', '6:limit_reached', '7:duplicate_ip', '8:duplicate_email',
	'9:contest_closed');

# A replayed request id answers with the original vote.
our $replay_sql = q{
	SELECT r.error_code || '/' || r.replayed || '/' || (r.vote_id = v.vote_id)
	  FROM vote_guard.cast_vote(1, 2, '203.0.113.77', 'someone-new', NULL, 'req-1-5') r,
	       vote_guard.votes v
	 WHERE v.contest_id = 1 AND v.request_id = 'req-1-5'};

# Every contest's results (entry, votes: the columns every version has)
# and the vote rows (a digest).
our $state_sql = q{
	SELECT string_agg(c.id || ':' || r.entry_id || '=' || r.votes, ',' ORDER BY c.id, r.entry_id)
	       || ' votes ' || (SELECT count(*) || ':' || md5(string_agg(
	              concat_ws('/', v.contest_id, v.vote_id, v.entry_id, v.created_at, v.window_no,
	                        v.ip_slot, v.user_slot, v.email_slot, encode(v.ip_key, 'hex'),
	                        v.user_id, encode(v.email_key, 'hex'), v.request_id),
	              ';' ORDER BY v.contest_id, v.vote_id))
	                         FROM vote_guard.votes v)
	  FROM vote_guard.contests c, LATERAL vote_guard.results(c.id) r};

our $drift_sql = q{
	SELECT count(*) || ' entries, ' || count(*) FILTER (WHERE v.drift <> 0) || ' drifting'
	  FROM vote_guard.contests c, LATERAL vote_guard.verify(c.id) v};

our $entries = 3 + 4 + 2 + 2 + 1;

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
our $new_expected = '1:ok,2:ok,3:ok,4:ok';

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

our $cast_expected = '41 ok, others: none';
our $owner_expected = "ok\nok\nt";
our $replay_expected = 'ok/true/true';
our $drift_expected = "$entries entries, 0 drifting";

1;
