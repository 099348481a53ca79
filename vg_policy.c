/*-------------------------------------------------------------------------
 *
 * vg_policy.c
 *	  Contest policies: how many votes a voter has, per window and per entry,
 *	  and how often.
 *
 * Every vote row carries its window number (0 without vote windows) and, for
 * each of its vectors, a slot 1 .. votes_per_voter.  The unique indexes on
 * (contest_id, vector, window_no, slot) make "N votes per vector per window"
 * a constraint.  With one vote per voter and no cooldown that is the whole
 * policy, and cast_vote needs no lock beyond the index.  Otherwise (several
 * votes, per-entry limits, cooldowns: rules over several rows and vectors)
 * the voter's vectors are locked first, with transaction-scoped advisory
 * locks of vote_guard's own class taken in a fixed order, then the voter's
 * earlier votes are read and the slots chosen.  The policy trigger does the
 * same for the owner's direct INSERT and UPDATE.
 *
 * Times become numbers here, by one rule.  A vote window or a cooldown is
 * its length in microseconds, a day 24 hours and a month 30 days: the value
 * PostgreSQL compares intervals by, computed as exactly (128 bits), so the
 * contests' CHECKs (1 second to 100 years) bound it.  Window numbers are
 * floor((t - opens_at) / vote_window), computed without overflow for every
 * finite time, and a time's window must fit in window_no (int4); opens_at,
 * closes_at and a vote's created_at are finite (create_contest and the
 * tables' checks, the policy trigger).  A contest takes votes only while its
 * window numbers last: create_contest refuses a closes_at after the end of
 * window 2147483647 and an open-ended contest whose windows have already run
 * out; an open-ended contest whose windows run out later is closed from
 * then on (vg_window_no fails, cast_vote answers contest_closed).  Every
 * time computed from these (retry_at, the reach of a cooldown) is
 * overflow-checked: outside the valid timestamps it is -infinity or
 * infinity where it bounds a comparison, and no retry_at (null, "never")
 * where it would be an answer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "common/int128.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/qunique.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "catalog/namespace.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "vote_guard.h"


static SPIPlanPtr plan_contest = NULL;
static SPIPlanPtr plan_contest_share = NULL;
static SPIPlanPtr plan_state = NULL;

/*
 * Contests as last read, per backend (READ COMMITTED only).  Any change to a
 * contest row sends a relcache invalidation for vote_guard.contests (the
 * contests trigger), which empties the cache of every backend at commit.
 * The change also holds the contest's lock in exclusive mode until after
 * that, and a vote reads the cache only once it holds the lock in share mode
 * and has taken in the invalidations: it never sees a stale contest.
 */
typedef struct ContestCacheEntry
{
	int64		contest_id;		/* hash key */
	VgContest	contest;
} ContestCacheEntry;

#define CONTEST_CACHE_MAX	10000

static HTAB *contest_cache = NULL;
static Oid	contests_relid = InvalidOid;
static bool contest_callback_registered = false;

#define CONTEST_QUERY \
	"SELECT c.opens_at, c.closes_at, c.closed_at IS NOT NULL," \
	"       'ip' OPERATOR(pg_catalog.=) ANY (c.dedupe_on)," \
	"       'user' OPERATOR(pg_catalog.=) ANY (c.dedupe_on)," \
	"       'email' OPERATOR(pg_catalog.=) ANY (c.dedupe_on)," \
	"       c.ipv4_prefix, c.ipv6_prefix, c.require_user," \
	"       c.votes_per_voter, c.per_entry_limit, c.vote_window, c.cooldown," \
	"       c.allow_change, c.secret_version" \
	"  FROM vote_guard.contests c" \
	" WHERE c.id OPERATOR(pg_catalog.=) $1"

/*
 * The voter's votes that matter now: those of its vectors in the window,
 * those within reach of a cooldown, and the one with the request id.
 * Each OR arm is served by one of the partial unique indexes.
 */
#define STATE_QUERY \
	"SELECT v.vote_id, v.entry_id, v.window_no, v.created_at," \
	"       COALESCE(v.request_id OPERATOR(pg_catalog.=) $5, false)," \
	"       COALESCE(v.ip_key OPERATOR(pg_catalog.=) $2, false)," \
	"       COALESCE(v.user_id OPERATOR(pg_catalog.=) $3, false)," \
	"       COALESCE(v.email_key OPERATOR(pg_catalog.=) $4, false)," \
	"       v.ip_slot, v.user_slot, v.email_slot" \
	"  FROM vote_guard.votes v" \
	" WHERE v.contest_id OPERATOR(pg_catalog.=) $1" \
	"   AND ((v.ip_key OPERATOR(pg_catalog.=) $2" \
	"         AND (v.window_no OPERATOR(pg_catalog.=) $6" \
	"              OR v.created_at OPERATOR(pg_catalog.>) $7))" \
	"        OR (v.user_id OPERATOR(pg_catalog.=) $3" \
	"            AND (v.window_no OPERATOR(pg_catalog.=) $6" \
	"                 OR v.created_at OPERATOR(pg_catalog.>) $7))" \
	"        OR (v.email_key OPERATOR(pg_catalog.=) $4" \
	"            AND (v.window_no OPERATOR(pg_catalog.=) $6" \
	"                 OR v.created_at OPERATOR(pg_catalog.>) $7))" \
	"        OR v.request_id OPERATOR(pg_catalog.=) $5)" \
	"   AND ($8::pg_catalog.int8 IS NULL OR v.vote_id OPERATOR(pg_catalog.<>) $8)"

static void
prepare_policy_plans(void)
{
	Oid			contest_args[1] = {INT8OID};
	Oid			state_args[8] = {INT8OID, BYTEAOID, TEXTOID, BYTEAOID, TEXTOID,
	INT4OID, TIMESTAMPTZOID, INT8OID};

	if (plan_state != NULL)
		return;
	plan_contest = vg_prepare_kept(CONTEST_QUERY, 1, contest_args);
	plan_contest_share = vg_prepare_kept(CONTEST_QUERY " FOR SHARE OF c",
										 1, contest_args);
	plan_state = vg_prepare_kept(STATE_QUERY, 8, state_args);
}

/*
 * An interval's length in microseconds, a day 24 hours and a month 30 days,
 * computed as interval_cmp_value computes it (128 bits: the fields may be
 * far apart and still add up to little).  False when it is not positive or
 * does not fit in 64 bits.
 */
static bool
interval_usecs_ok(const Interval *iv, int64 *usecs)
{
	INT128		span = int64_to_int128(iv->time);

	/* |month| * 30 + |day| < 2^37: no overflow in 64 bits */
	int128_add_int64_mul_int64(&span,
							   (int64) iv->month * DAYS_PER_MONTH + iv->day,
							   USECS_PER_DAY);
	if (int128_compare(span, int64_to_int128(0)) <= 0 ||
		int128_compare(span, int64_to_int128(PG_INT64_MAX)) > 0)
		return false;
	*usecs = int128_to_int64(span);
	return true;
}

/*
 * A contest's vote_window or cooldown in microseconds (0: none).  The
 * contests' CHECKs keep both within 1 second (or 1 microsecond) and 100
 * years.
 */
static int64
interval_usecs(Datum d, bool isnull, const char *column)
{
	int64		usecs;

	if (isnull)
		return 0;
	if (!interval_usecs_ok(DatumGetIntervalP(d), &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s of a contest out of range", column)));
	return usecs;
}

/* floor(a / b) and the remainder that goes with it (b > 0) */
static int64
floor_div(int64 a, int64 b, int64 *rem)
{
	int64		q = a / b;

	*rem = a % b;
	if (*rem < 0)
	{
		q--;
		*rem += b;
	}
	return q;
}

/*
 * The number of the window of length window_usecs (> 0) from opens_at that
 * t falls in: floor((t - opens_at) / window_usecs), for any two finite
 * times, without overflow.  False when a time is not finite.
 */
static bool
window_number(TimestampTz opens_at, int64 window_usecs, TimestampTz t,
			  int64 *w)
{
	int64		rt,
				ro,
				qt,
				qo;

	if (TIMESTAMP_NOT_FINITE(opens_at) || TIMESTAMP_NOT_FINITE(t))
		return false;
	/* t = qt * W + rt, opens_at = qo * W + ro, 0 <= rt, ro < W */
	qt = floor_div(t, window_usecs, &rt);
	qo = floor_div(opens_at, window_usecs, &ro);
	/* |qt|, |qo| <= 2^63 / 10^6: no overflow */
	*w = qt - qo - (rt < ro ? 1 : 0);
	return true;
}

/*
 * t + usecs when that is a valid timestamp; otherwise -infinity or infinity,
 * on the side it falls (t finite).
 */
TimestampTz
vg_time_add(TimestampTz t, int64 usecs)
{
	TimestampTz r;

	if (pg_add_s64_overflow(t, usecs, &r))
		return usecs < 0 ? DT_NOBEGIN : DT_NOEND;
	if (r < MIN_TIMESTAMP)
		return DT_NOBEGIN;
	if (r >= END_TIMESTAMP)
		return DT_NOEND;
	return r;
}

PG_FUNCTION_INFO_V1(vg_window_number_fn);

/*
 * vote_guard.window_number(opens_at timestamptz, vote_window interval,
 *                          at timestamptz) RETURNS bigint
 *
 * The number of the vote window that "at" falls in, as cast_vote numbers
 * them; null when a time is infinite or vote_window is not positive (or
 * longer than 2^63 microseconds).  The contests' CHECK uses it.
 */
Datum
vg_window_number_fn(PG_FUNCTION_ARGS)
{
	TimestampTz opens_at = PG_GETARG_TIMESTAMPTZ(0);
	Interval   *window = PG_GETARG_INTERVAL_P(1);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	int64		usecs;
	int64		w;

	if (!interval_usecs_ok(window, &usecs) ||
		!window_number(opens_at, usecs, at, &w))
		PG_RETURN_NULL();
	PG_RETURN_INT64(w);
}

static void
contest_cache_callback(Datum arg, Oid relid)
{
	if (contest_cache != NULL &&
		(relid == InvalidOid || relid == contests_relid))
	{
		hash_destroy(contest_cache);
		contest_cache = NULL;
	}
}

/* The cached copy of a contest, or NULL. */
static ContestCacheEntry *
contest_cache_lookup(int64 contest_id, bool enter)
{
	bool		found;

	if (!contest_callback_registered)
	{
		CacheRegisterRelcacheCallback(contest_cache_callback, (Datum) 0);
		contest_callback_registered = true;
	}
	/* changes committed before this call's contest lock was granted */
	AcceptInvalidationMessages();

	if (contest_cache == NULL ||
		(enter && hash_get_num_entries(contest_cache) >= CONTEST_CACHE_MAX))
	{
		if (!enter)
			return NULL;
		if (contest_cache != NULL)
			hash_destroy(contest_cache);
		contest_cache = vg_backend_cache_create("vote_guard contests",
												sizeof(ContestCacheEntry),
												"contests", &contests_relid);
	}
	return hash_search(contest_cache, &contest_id,
					   enter ? HASH_ENTER : HASH_FIND, &found);
}

/*
 * Read a contest's settings (SPI connected).  Under READ COMMITTED they come
 * from the backend's cache when it has them.  Under REPEATABLE READ and
 * SERIALIZABLE the contest row is read and locked FOR SHARE, so a change
 * committed after the snapshot (a close) is a serialization failure instead
 * of going unseen.  False: no such contest.
 */
bool
vg_load_contest(int64 contest_id, VgContest *c)
{
	Datum		args[1] = {Int64GetDatum(contest_id)};
	bool		isnull;
	Datum		d;
	bool		snapshot_mode = IsolationUsesXactSnapshot();
	ContestCacheEntry *cached;

	if (!snapshot_mode && (cached = contest_cache_lookup(contest_id, false)) != NULL)
	{
		*c = cached->contest;
		return true;
	}

	prepare_policy_plans();
	vg_execute(snapshot_mode ? plan_contest_share : plan_contest,
			   args, NULL, SPI_OK_SELECT, 1);
	if (SPI_processed == 0)
		return false;

	c->opens_at = DatumGetTimestampTz(vg_spi_value(0, 1, &isnull));
	c->closes_at = DatumGetTimestampTz(vg_spi_value(0, 2, &isnull));
	c->has_closes_at = !isnull;
	c->closed = DatumGetBool(vg_spi_value(0, 3, &isnull));
	c->dedupe[VG_VEC_IP] = DatumGetBool(vg_spi_value(0, 4, &isnull));
	c->dedupe[VG_VEC_USER] = DatumGetBool(vg_spi_value(0, 5, &isnull));
	c->dedupe[VG_VEC_EMAIL] = DatumGetBool(vg_spi_value(0, 6, &isnull));
	c->ipv4_prefix = DatumGetInt32(vg_spi_value(0, 7, &isnull));
	c->ipv6_prefix = DatumGetInt32(vg_spi_value(0, 8, &isnull));
	c->require_user = DatumGetBool(vg_spi_value(0, 9, &isnull));
	c->votes_per_voter = DatumGetInt32(vg_spi_value(0, 10, &isnull));
	c->per_entry_limit = DatumGetInt32(vg_spi_value(0, 11, &isnull));
	d = vg_spi_value(0, 12, &isnull);
	c->window_usecs = interval_usecs(d, isnull, "vote_window");
	d = vg_spi_value(0, 13, &isnull);
	c->cooldown_usecs = interval_usecs(d, isnull, "cooldown");
	c->allow_change = DatumGetBool(vg_spi_value(0, 14, &isnull));
	c->secret_version = DatumGetInt32(vg_spi_value(0, 15, &isnull));

	if (!snapshot_mode)
		contest_cache_lookup(contest_id, true)->contest = *c;
	return true;
}

/*
 * Does the policy need the voter's locks?  One vote per vector per window is
 * exactly what the unique indexes say; anything more is checked under locks.
 */
bool
vg_policy_needs_locks(const VgContest *c)
{
	return c->votes_per_voter > 1 || c->cooldown_usecs > 0;
}

/*
 * The number of the fixed vote window that t falls in (0 without windows).
 * False when t is infinite or its window number does not fit in window_no:
 * at or after opens_at, the contest's windows have run out.
 */
bool
vg_window_no(const VgContest *c, TimestampTz t, int32 *window_no)
{
	int64		w;

	if (c->window_usecs <= 0)
	{
		*window_no = 0;
		return !TIMESTAMP_NOT_FINITE(t);
	}
	if (!window_number(c->opens_at, c->window_usecs, t, &w) ||
		w > PG_INT32_MAX || w < PG_INT32_MIN)
		return false;
	*window_no = (int32) w;
	return true;
}

/* The window of t for a contest known to be open at t. */
int32
vg_window_no_open(const VgContest *c, TimestampTz t)
{
	int32		w;

	if (!vg_window_no(c, t, &w))
		elog(ERROR, "vote window number of an open contest out of range");
	return w;
}

static int
cmp_uint64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Lock every vector of a voter in a contest, exclusively, until the end of
 * the transaction.  The locks are taken in the order of their tags, so two
 * voters that share vectors cannot deadlock.  A lock tag is a 64-bit hash of
 * the vector; a collision only makes two voters wait for each other.
 */
void
vg_lock_voter(int64 contest_id, const VgVoter *v)
{
	uint64		tags[VG_NUM_VECTORS];
	int			ntags = 0;
	int			i;

	for (i = 0; i < VG_NUM_VECTORS; i++)
	{
		/* user_id is text, the other keys bytea: both are varlenas */
		struct varlena *key;
		uint64		seed;

		if (!v->has[i])
			continue;
		key = (struct varlena *) DatumGetPointer(v->key[i]);
		seed = hash_bytes_uint32_extended((uint32) i, (uint64) contest_id);
		tags[ntags++] = hash_bytes_extended((const unsigned char *) VARDATA_ANY(key),
											VARSIZE_ANY_EXHDR(key), seed);
	}
	qsort(tags, ntags, sizeof(uint64), cmp_uint64);
	ntags = qunique(tags, ntags, sizeof(uint64), cmp_uint64);

	for (i = 0; i < ntags; i++)
	{
		LOCKTAG		tag;

		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
							 (uint32) (tags[i] >> 32), (uint32) tags[i],
							 VG_LOCK_CLASS_VOTER);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
}

static VgCode
duplicate_code(VgVector vec)
{
	switch (vec)
	{
		case VG_VEC_IP:
			return VG_DUPLICATE_IP;
		case VG_VEC_USER:
			return VG_DUPLICATE_USER;
		default:
			return VG_DUPLICATE_EMAIL;
	}
}

/*
 * An order-independent digest of the voter's votes that the last state query
 * returned: which votes, for which entry, in which slots.
 */
static uint64
state_digest(void)
{
	uint64		digest = SPI_processed;
	uint64		r;

	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		uint64		h = (uint64) DatumGetInt64(vg_spi_value(r, 1, &isnull));
		int			col;

		/* entry, window, slots */
		for (col = 2; col <= 11; col++)
		{
			Datum		d = vg_spi_value(r, col, &isnull);

			if (col == 4 || col == 5 || isnull)
				continue;		/* created_at never changes; flags are derived */
			h = hash_combine64(h, (uint64) DatumGetInt64(d));
		}
		digest += hash_bytes_uint32_extended((uint32) h, h >> 32);
	}
	return digest;
}

/*
 * Under REPEATABLE READ and SERIALIZABLE the voter's votes are read with the
 * transaction's snapshot, which may predate a vote, a move or a retraction
 * that committed while this call waited for the voter's locks.  Deciding on
 * that stale view could break a limit no index guards (per-entry limits,
 * cooldowns), so the votes are read once more with the newest snapshot, and
 * any difference is a serialization failure: the client retries.
 */
static void
check_state_current(Datum *args, const char *nulls, uint64 digest)
{
	int			ret;

	ret = SPI_execute_snapshot(plan_state, args, nulls, GetLatestSnapshot(),
							   InvalidSnapshot, true, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute_snapshot failed: %s", SPI_result_code_string(ret));
	if (state_digest() != digest)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent vote of the same voter"),
				 errhint("Retry the transaction.")));
}

/* retry_at, when the time exists (infinity: never, no retry_at) */
static void
set_retry_at(VgDecision *d, TimestampTz t)
{
	d->has_retry_at = !TIMESTAMP_NOT_FINITE(t);
	d->retry_at = t;
}

/*
 * Decide a vote of voter v for entry_id at time t from the voter's earlier
 * votes (SPI connected; under the voter's locks where the policy needs them).
 *
 * d->replay is set when a vote with request_id exists (request_id may be 0
 * for none).  Otherwise d->code is VG_OK and v->slot[] holds the lowest free
 * slot of each vector, or the code says why not: the first vector (ip, user,
 * email) at its limit gives duplicate_<vector> for a one-vote contest without
 * windows and limit_reached otherwise (retry_at: the next window, if any),
 * and a vote of any vector within the cooldown gives cooldown (retry_at: when
 * it ends).  exclude_vote_id (0: none) is a vote to leave out, the one an
 * UPDATE changes.  A time after the contest's last window gives
 * contest_closed (callers check the window first where that can happen).
 */
void
vg_decide(int64 contest_id, int64 entry_id, const VgContest *c, VgVoter *v,
		  Datum request_id, TimestampTz t, int64 exclude_vote_id,
		  VgDecision *d)
{
	Datum		args[8];
	char		nulls[8];
	int32		w;
	bool		has_w = vg_window_no(c, t, &w);
	int			n = c->votes_per_voter;
	int			count[VG_NUM_VECTORS] = {0};
	int			entry_count[VG_NUM_VECTORS] = {0};
	bool	   *used;
	bool		in_cooldown = false;
	TimestampTz latest = DT_NOBEGIN;
	int			limit_vec = -1;
	uint64		r;
	int			i;

	memset(d, 0, sizeof(*d));
	d->code = VG_OK;

	args[0] = Int64GetDatum(contest_id);
	nulls[0] = ' ';
	for (i = 0; i < VG_NUM_VECTORS; i++)
	{
		args[1 + i] = v->key[i];
		nulls[1 + i] = v->has[i] ? ' ' : 'n';
	}
	args[4] = request_id;
	nulls[4] = request_id != (Datum) 0 ? ' ' : 'n';
	/* no window (t after the last one): only the request id can match */
	args[5] = Int32GetDatum(has_w ? w : 0);
	nulls[5] = has_w ? ' ' : 'n';
	/* votes after this time are within reach of the cooldown */
	args[6] = TimestampTzGetDatum(c->cooldown_usecs > 0 ?
								  vg_time_add(t, -c->cooldown_usecs) : DT_NOEND);
	nulls[6] = ' ';
	args[7] = Int64GetDatum(exclude_vote_id);
	nulls[7] = exclude_vote_id != 0 ? ' ' : 'n';

	prepare_policy_plans();
	if (IsolationUsesXactSnapshot())
	{
		uint64		digest;

		vg_execute(plan_state, args, nulls, SPI_OK_SELECT, 0);
		digest = state_digest();
		check_state_current(args, nulls, digest);
	}
	vg_execute(plan_state, args, nulls, SPI_OK_SELECT, 0);

	/* used[i * (n + 1) + s]: slot s of vector i is taken in this window */
	used = palloc0(sizeof(bool) * VG_NUM_VECTORS * (n + 1));

	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		vote_entry = DatumGetInt64(vg_spi_value(r, 2, &isnull));
		int32		vote_window = DatumGetInt32(vg_spi_value(r, 3, &isnull));
		TimestampTz created = DatumGetTimestampTz(vg_spi_value(r, 4, &isnull));
		bool		any = false;

		if (DatumGetBool(vg_spi_value(r, 5, &isnull)))
		{
			d->replay = true;
			d->replay_vote_id = DatumGetInt64(vg_spi_value(r, 1, &isnull));
			d->replay_entry_id = vote_entry;
			pfree(used);
			return;
		}
		for (i = 0; i < VG_NUM_VECTORS; i++)
		{
			int			slot;

			if (!DatumGetBool(vg_spi_value(r, 6 + i, &isnull)))
				continue;
			any = true;
			if (!has_w || vote_window != w)
				continue;
			count[i]++;
			if (vote_entry == entry_id)
				entry_count[i]++;
			slot = DatumGetInt16(vg_spi_value(r, 9 + i, &isnull));
			if (slot >= 1 && slot <= n)
				used[i * (n + 1) + slot] = true;
		}
		if (any && c->cooldown_usecs > 0 &&
			created > vg_time_add(t, -c->cooldown_usecs) &&
			created < vg_time_add(t, c->cooldown_usecs))
		{
			in_cooldown = true;
			if (created > latest)
				latest = created;
		}
	}

	for (i = 0; i < VG_NUM_VECTORS && limit_vec < 0; i++)
	{
		if (v->has[i] &&
			(count[i] >= n || entry_count[i] >= c->per_entry_limit))
			limit_vec = i;
	}

	if (!has_w)
		d->code = VG_CONTEST_CLOSED;	/* no window left to vote in */
	else if (limit_vec >= 0)
	{
		if (n == 1 && c->window_usecs == 0)
			d->code = duplicate_code((VgVector) limit_vec);
		else
		{
			d->code = VG_LIMIT_REACHED;
			if (c->window_usecs > 0)
			{
				/* the start of the next window, if there is one */
				int64		span;
				TimestampTz next = DT_NOEND;

				if (w < PG_INT32_MAX &&
					!pg_mul_s64_overflow((int64) w + 1, c->window_usecs, &span))
					next = vg_time_add(c->opens_at, span);
				if (in_cooldown)
				{
					TimestampTz end = vg_time_add(latest, c->cooldown_usecs);

					if (end > next)
						next = end;
				}
				set_retry_at(d, next);
			}
		}
	}
	else if (in_cooldown)
	{
		d->code = VG_COOLDOWN;
		set_retry_at(d, vg_time_add(latest, c->cooldown_usecs));
	}
	else
	{
		for (i = 0; i < VG_NUM_VECTORS; i++)
		{
			int			s = 1;

			while (s < n && used[i * (n + 1) + s])
				s++;
			v->slot[i] = (int16) s;
		}
	}
	pfree(used);
}

/* attribute number of a votes column, by name */
static int
votes_attnum(TupleDesc desc, const char *name)
{
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "vote_guard.votes has no column \"%s\"", name);
	return attnum;
}

static const char *const vector_columns[VG_NUM_VECTORS] = {"ip_key", "user_id", "email_key"};
static const char *const slot_columns[VG_NUM_VECTORS] = {"ip_slot", "user_slot", "email_slot"};

/* Did an UPDATE change anything the policy depends on? */
static bool
policy_columns_changed(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc)
{
	static const char *const cols[] = {
		"entry_id", "ip_key", "user_id", "email_key", "created_at",
		"window_no", "ip_slot", "user_slot", "email_slot"
	};
	size_t		i;

	for (i = 0; i < lengthof(cols); i++)
	{
		int			attnum = votes_attnum(desc, cols[i]);
		Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
		bool		n1,
					n2;
		Datum		d1 = heap_getattr(oldtup, attnum, desc, &n1);
		Datum		d2 = heap_getattr(newtup, attnum, desc, &n2);

		if (n1 != n2)
			return true;
		if (!n1 && !datumIsEqual(d1, d2, att->attbyval, att->attlen))
			return true;
	}
	return false;
}

static const char *
code_name(VgCode code)
{
	switch (code)
	{
		case VG_DUPLICATE_IP:
			return "duplicate_ip";
		case VG_DUPLICATE_USER:
			return "duplicate_user";
		case VG_DUPLICATE_EMAIL:
			return "duplicate_email";
		case VG_LIMIT_REACHED:
			return "limit_reached";
		case VG_COOLDOWN:
			return "cooldown";
		default:
			return "ok";
	}
}

/*
 * user_id and request_id of a row written to votes: 1 to 256 characters, as
 * cast_vote requires of its arguments.  (Not a CHECK constraint: see the
 * votes table in the install script.)
 */
static void
check_text_column(Relation rel, HeapTuple tup, const char *column, int max_chars)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		isnull;
	Datum		d = heap_getattr(tup, votes_attnum(desc, column), desc, &isnull);

	if (!isnull && !vg_text_length_ok(DatumGetTextPP(d), max_chars))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("%s of a vote must be 1 to %d characters long",
						column, max_chars),
				 errtableconstraint(rel, psprintf("votes_%s_check", column))));
}

PG_FUNCTION_INFO_V1(vg_votes_policy_trigger);

/*
 * BEFORE INSERT OR UPDATE (row) on votes: the owner's direct writes obey the
 * contest's policy.  The window and slots of the row are derived here (the
 * values written are ignored); a write the policy forbids fails with
 * check_violation.  cast_vote's and change_vote's own writes, decided under
 * the same locks, pass straight through.
 */
Datum
vg_votes_policy_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newtup;
	VgContest	c;
	VgVoter		v;
	VgDecision	d;
	bool		isnull;
	int64		contest_id,
				entry_id,
				exclude = 0;
	TimestampTz created;
	int32		window_no;
	int			cols[1 + VG_NUM_VECTORS];
	Datum		vals[1 + VG_NUM_VECTORS];
	bool		nulls[1 + VG_NUM_VECTORS] = {false};
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("vote_guard.votes_policy_trigger() must be called as a trigger")));

	desc = RelationGetDescr(trigdata->tg_relation);
	newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;
	if (vg_trusted_write & VG_WRITE_DECIDED)
		return PointerGetDatum(newtup);

	check_text_column(trigdata->tg_relation, newtup, "user_id", VG_MAX_USER_ID_CHARS);
	check_text_column(trigdata->tg_relation, newtup, "request_id", VG_MAX_REQUEST_ID_CHARS);
	created = DatumGetTimestampTz(heap_getattr(newtup, votes_attnum(desc, "created_at"),
											   desc, &isnull));
	if (TIMESTAMP_NOT_FINITE(created))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("created_at of a vote must be a finite time"),
				 errtableconstraint(trigdata->tg_relation, "votes_created_at_check")));

	contest_id = DatumGetInt64(heap_getattr(newtup, votes_attnum(desc, "contest_id"),
											desc, &isnull));
	entry_id = DatumGetInt64(heap_getattr(newtup, votes_attnum(desc, "entry_id"),
										  desc, &isnull));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	oldtup = trigdata->tg_trigtuple;

		if (DatumGetInt64(heap_getattr(oldtup, votes_attnum(desc, "contest_id"),
									   desc, &isnull)) != contest_id)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a vote cannot move to another contest"),
					 errhint("Delete the vote and insert a new one.")));
		if (!policy_columns_changed(oldtup, newtup, desc))
			return PointerGetDatum(newtup);
		exclude = DatumGetInt64(heap_getattr(oldtup, votes_attnum(desc, "vote_id"),
											 desc, &isnull));
	}

	SPI_connect();
	/* hold off a removal of the entry, as cast_vote does */
	if (!IsolationUsesXactSnapshot())
		vg_lock_contest(contest_id, false);
	if (!vg_load_contest(contest_id, &c) || !vg_entry_exists(contest_id, entry_id))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("entry " INT64_FORMAT " of contest " INT64_FORMAT " does not exist",
						entry_id, contest_id),
				 errhint("Add it with vote_guard.add_entry() first.")));

	if (!vg_window_no(&c, created, &window_no))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("created_at of a vote is outside the vote windows of contest " INT64_FORMAT,
						contest_id),
				 errdetail("Window numbers from opens_at must lie between %d and %d.",
						   PG_INT32_MIN, PG_INT32_MAX),
				 errtableconstraint(trigdata->tg_relation, "votes_created_at_check")));
	for (i = 0; i < VG_NUM_VECTORS; i++)
	{
		Datum		key = heap_getattr(newtup, votes_attnum(desc, vector_columns[i]),
									   desc, &isnull);

		v.has[i] = !isnull;
		v.key[i] = isnull ? (Datum) 0 : key;
		v.slot[i] = 1;
	}

	if (vg_policy_needs_locks(&c))
	{
		vg_lock_voter(contest_id, &v);
		vg_decide(contest_id, entry_id, &c, &v, (Datum) 0, created, exclude, &d);
		if (d.code != VG_OK)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("vote breaks the policy of contest " INT64_FORMAT ": %s",
							contest_id, code_name(d.code)),
					 errdetail("cast_vote would have answered %s for this voter.",
							   code_name(d.code))));
	}
	SPI_finish();

	cols[0] = votes_attnum(desc, "window_no");
	vals[0] = Int32GetDatum(window_no);
	for (i = 0; i < VG_NUM_VECTORS; i++)
	{
		cols[1 + i] = votes_attnum(desc, slot_columns[i]);
		vals[1 + i] = Int16GetDatum(v.slot[i]);
	}
	newtup = heap_modify_tuple_by_cols(newtup, desc, 1 + VG_NUM_VECTORS,
									   cols, vals, nulls);
	return PointerGetDatum(newtup);
}
