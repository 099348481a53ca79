# vote_guard: an entry's counter slot rows at their limits.
#
# Part 1: every slot held.  64 prepared transactions with a vote each
#   hold the 64 counter rows of one entry (each vote took the first row
#   the ones before it did not hold).  The next vote has no free row and
#   waits for its own backend's slot (lock_timeout ends the wait); once the
#   prepared votes are committed or rolled back it goes through, and the
#   entry still has 64 rows.
# Part 2: a counter row whose page is full.  Many votes for one entry in one
#   transaction leave every old version of the row in place, so updates stop
#   fitting on the page and move to new pages: each new version needs its own
#   primary key entry, which amcheck's heapallindexed check verifies, and
#   every vote_count (read through that index) must still be exact.
# After each part: counts equal votes (verify() drift 0), and a restart
# keeps them.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $slots = 64;    # VG_COUNTER_SLOTS

my $node = PostgreSQL::Test::Cluster->new('slots');
$node->init;
$node->append_conf('postgresql.conf', "max_prepared_transactions = 70\n");
$node->start;

sub query { return $node->safe_psql('postgres', $_[0]); }

sub drift_ok
{
	my ($c, $name) = @_;
	is( query(
			"SELECT count(*) FILTER (WHERE drift <> 0 OR counted <> actual) || '/' || count(*)"
			  . " FROM vote_guard.verify($c)"),
		'0/1',
		$name);
}

sub slot_rows
{
	my ($c) = @_;
	return query(
		"SELECT count(*) || ' rows, slots ' || coalesce(min(slot), -1) || '-' || coalesce(max(slot), -1)"
		  . " || ', ' || coalesce(sum(votes), 0) || ' votes' FROM vote_guard.counters WHERE contest_id = $c");
}

query('CREATE EXTENSION vote_guard');

# ---------------------------------------------------------------- part 1
my $c = query("SELECT vote_guard.create_contest('slots')");
query("SELECT vote_guard.add_entry($c, 1)");
# one committed vote, and the other slot rows as a hot entry leaves them
# (made here directly: rows made by transactions still open are not seen,
# so voters that do not overlap in time would not make them)
is(query("SELECT vote_count FROM vote_guard.cast_vote($c, 1, '10.0.0.100')"), '1', 'first vote');
query(
	"INSERT INTO vote_guard.counters (contest_id, entry_id, slot, votes)"
	  . " SELECT $c, 1, s, 0 FROM generate_series(0, $slots - 1) s ON CONFLICT DO NOTHING");
my $full = "$slots rows, slots 0-" . ($slots - 1);
is(slot_rows($c), "$full, 1 votes", "$slots slot rows");

for my $i (1 .. $slots)
{
	is( query(
			"BEGIN;"
			  . " SELECT vote_count FROM vote_guard.cast_vote($c, 1, '10.0.0.$i');"
			  . " PREPARE TRANSACTION 'slot$i';"),
		'2',
		"prepared vote $i takes a free row, counts the committed vote and its own");
}
is(query("SELECT count(*) FROM pg_prepared_xacts"), $slots, "$slots prepared votes");

my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"SET lock_timeout = '300ms'; SELECT success FROM vote_guard.cast_vote($c, 1, '10.0.1.1')");
isnt($ret, 0, 'with every slot row held, the next vote waits');
like($stderr, qr/lock timeout/, '... for a row lock (lock_timeout ended the wait)');
is(query("SELECT count(*) FROM vote_guard.votes WHERE contest_id = $c"),
	'1', 'the timed-out vote left nothing behind');

# the first half commits, the second rolls back
for my $i (1 .. $slots)
{
	query(($i <= $slots / 2 ? 'COMMIT' : 'ROLLBACK') . " PREPARED 'slot$i'");
}
is( query("SELECT success || '/' || vote_count FROM vote_guard.cast_vote($c, 1, '10.0.1.1')"),
	'true/' . ($slots / 2 + 2),
	'once the holders are gone the vote goes through, with the exact count');
is(slot_rows($c), "$full, " . ($slots / 2 + 2) . ' votes',
	"the entry has $slots slot rows (0 to " . ($slots - 1) . '), no more');
drift_ok($c, 'part 1: counts equal votes');

# ---------------------------------------------------------------- part 2
my $d = query("SELECT vote_guard.create_contest('full page')");
query("SELECT vote_guard.add_entry($d, 1)");
my $n = 1500;
is( query(
		"SELECT count(*) FILTER (WHERE r.success) || '/'"
		  . " || count(*) FILTER (WHERE r.vote_count = g) FROM generate_series(1, $n) g,"
		  . " LATERAL vote_guard.cast_vote($d, 1, '10.1.0.0'::inet + g) r"),
	"$n/$n",
	"$n votes in one statement: every vote_count exact");
query('CREATE EXTENSION amcheck');
is( query(
		"SELECT pg_relation_size('vote_guard.counters') > 2 * current_setting('block_size')::int"),
	't',
	'the versions of the row filled more than two pages (updates left the page)');
($ret, $stdout, $stderr) = $node->psql('postgres',
	"SELECT bt_index_parent_check('vote_guard.counters_pkey', heapallindexed => true)");
is($ret . $stderr, '0',
	'amcheck: every counter row version has its primary key entry');
like(slot_rows($d), qr/^1 rows, slots (\d+)-\1, $n votes$/, 'one voter at a time: one slot row');
my $part2 = slot_rows($d);
drift_ok($d, 'part 2: counts equal votes');

# ---------------------------------------------------------------- restart
$node->restart;
is(slot_rows($c) . '; ' . slot_rows($d),
	"$full, " . ($slots / 2 + 2) . " votes; $part2",
	'counters as they were after a restart');
drift_ok($c, 'part 1 after restart: counts equal votes');
drift_ok($d, 'part 2 after restart: counts equal votes');

$node->stop;
done_testing();
