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
 * earlier votes are read (vg_voter_votes) and the slots chosen.  The
 * policy trigger does the same for the owner's direct INSERT and UPDATE
 * (vg_policy_write).
 *
 * Times become numbers here, by one rule.  A vote window or a cooldown is
 * its length in microseconds, a day 24 hours and a month 30 days: the value
 * PostgreSQL compares intervals by, computed as exactly (vg_interval_usecs),
 * so the contests' CHECKs (1 second to 100 years) bound it.  Window numbers
 * are floor((t - opens_at) / vote_window), computed without overflow for
 * every finite time, and a time's window must fit in window_no (int4);
 * opens_at, closes_at and a vote's created_at are finite (create_contest and
 * the tables' checks, the policy trigger).  A contest takes votes only while
 * its window numbers last: create_contest refuses a closes_at after the end
 * of window 2147483647 and an open-ended contest whose windows have already
 * run out; an open-ended contest whose windows run out later is closed from
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
#include "common/hashfn.h"
#include "common/int.h"
#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "lib/qunique.h"
#include "storage/lockdefs.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "vg_policy.h"
#include "vg_storage.h"
#include "vg_utils.h"


/*
 * Take a contest's lock for the rest of the transaction: shared by the votes
 * of the contest, exclusive for a change of the contest row or its entries.
 */
void
vg_lock_contest(int64 contest_id, bool exclusive)
{
	vg_advisory_xact_lock((uint64) contest_id, VG_LOCK_CLASS_CONTEST,
						  exclusive ? ExclusiveLock : ShareLock);
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
 * times, without overflow.  False when a time is not finite or the number
 * does not fit in 64 bits (windows of a few microseconds over millennia).
 */
bool
vg_window_number(TimestampTz opens_at, int64 window_usecs, TimestampTz t,
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
	/* with windows of a few microseconds the difference can overflow */
	if (pg_sub_s64_overflow(qt, qo, w) ||
		pg_sub_s64_overflow(*w, rt < ro ? 1 : 0, w))
		return false;
	return true;
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
	if (!vg_window_number(c->opens_at, c->window_usecs, t, &w) ||
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

/* retry_at, when the time exists (infinity: never, no retry_at) */
static void
set_retry_at(VgDecision *d, TimestampTz t)
{
	d->has_retry_at = !TIMESTAMP_NOT_FINITE(t);
	d->retry_at = t;
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
		vg_advisory_xact_lock(tags[i], VG_LOCK_CLASS_VOTER, ExclusiveLock);
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
 * An order-independent digest of a voter's votes: which votes, for which
 * entry, in which window and slots, sharing which vectors.
 */
static uint64
votes_digest(const VgPastVote *votes, int n)
{
	uint64		digest = n;
	int			r;

	for (r = 0; r < n; r++)
	{
		const VgPastVote *p = &votes[r];
		uint64		h = (uint64) p->vote_id;
		int			i;

		h = hash_combine64(h, (uint64) p->entry_id);
		h = hash_combine64(h, (uint64) p->window_no);
		for (i = 0; i < VG_NUM_VECTORS; i++)
		{
			h = hash_combine64(h, (uint64) p->match[i]);
			h = hash_combine64(h, (uint64) p->slot[i]);
		}
		digest += hash_bytes_uint32_extended((uint32) h, h >> 32);
	}
	return digest;
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
 *
 * Under REPEATABLE READ and SERIALIZABLE the voter's votes are read with the
 * transaction's snapshot, which may predate a vote, a move or a retraction
 * that committed while this call waited for the voter's locks.  Deciding on
 * that stale view could break a limit no index guards (per-entry limits,
 * cooldowns), so the votes are read once more with the newest snapshot, and
 * any difference is a serialization failure: the client retries.
 */
void
vg_decide(int64 contest_id, int64 entry_id, const VgContest *c, VgVoter *v,
		  Datum request_id, TimestampTz t, int64 exclude_vote_id,
		  VgDecision *d)
{
	int32		w;
	bool		has_w = vg_window_no(c, t, &w);
	int			n = c->votes_per_voter;
	int			count[VG_NUM_VECTORS] = {0};
	int			entry_count[VG_NUM_VECTORS] = {0};
	bool	   *used;
	bool		in_cooldown = false;
	TimestampTz latest = DT_NOBEGIN;
	/* votes after this time are within reach of the cooldown */
	TimestampTz since = c->cooldown_usecs > 0 ?
		vg_time_add(t, -c->cooldown_usecs) : DT_NOEND;
	int			limit_vec = -1;
	VgPastVote *votes;
	int			nvotes;
	int			r;
	int			i;

	memset(d, 0, sizeof(*d));
	d->code = VG_OK;

	/* no window (t after the last one): only the request id matters */
	if (!has_w)
		w = 0;
	nvotes = vg_voter_votes(contest_id, v, request_id, w, since,
							exclude_vote_id, false, &votes);
	if (IsolationUsesXactSnapshot())
	{
		VgPastVote *now;
		int			nnow = vg_voter_votes(contest_id, v, request_id, w, since,
										  exclude_vote_id, true, &now);

		if (votes_digest(now, nnow) != votes_digest(votes, nvotes))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to a concurrent vote of the same voter"),
					 errhint("Retry the transaction.")));
		pfree(now);
	}

	/* used[i * (n + 1) + s]: slot s of vector i is taken in this window */
	used = palloc0(sizeof(bool) * VG_NUM_VECTORS * (n + 1));

	for (r = 0; r < nvotes; r++)
	{
		const VgPastVote *p = &votes[r];
		bool		any = false;

		if (p->is_request)
		{
			d->replay = true;
			d->replay_vote_id = p->vote_id;
			d->replay_entry_id = p->entry_id;
			pfree(used);
			pfree(votes);
			return;
		}
		for (i = 0; i < VG_NUM_VECTORS; i++)
		{
			int			slot;

			if (!p->match[i])
				continue;
			any = true;
			if (!has_w || p->window_no != w)
				continue;
			count[i]++;
			if (p->entry_id == entry_id)
				entry_count[i]++;
			slot = p->slot[i];
			if (slot >= 1 && slot <= n)
				used[i * (n + 1) + slot] = true;
		}
		if (any && c->cooldown_usecs > 0 &&
			p->created_at > since &&
			p->created_at < vg_time_add(t, c->cooldown_usecs))
		{
			in_cooldown = true;
			if (p->created_at > latest)
				latest = p->created_at;
		}
	}
	pfree(votes);

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

/*
 * The owner's direct write of a vote (INSERT: oldtup NULL; UPDATE) obeys the
 * contest's policy: the window and slots of the row are derived here (the
 * values written are ignored); a write the policy forbids fails with
 * check_violation.  Returns the row to write.  (The policy trigger; SPI need
 * not be connected.)
 */
HeapTuple
vg_policy_write(Relation rel, HeapTuple oldtup, HeapTuple newtup)
{
	TupleDesc	desc = RelationGetDescr(rel);
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

	check_text_column(rel, newtup, "user_id", VG_MAX_USER_ID_CHARS);
	check_text_column(rel, newtup, "request_id", VG_MAX_REQUEST_ID_CHARS);
	created = DatumGetTimestampTz(heap_getattr(newtup, votes_attnum(desc, "created_at"),
											   desc, &isnull));
	if (TIMESTAMP_NOT_FINITE(created))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("created_at of a vote must be a finite time"),
				 errtableconstraint(rel, "votes_created_at_check")));

	contest_id = DatumGetInt64(heap_getattr(newtup, votes_attnum(desc, "contest_id"),
											desc, &isnull));
	entry_id = DatumGetInt64(heap_getattr(newtup, votes_attnum(desc, "entry_id"),
										  desc, &isnull));

	if (oldtup != NULL)
	{
		if (DatumGetInt64(heap_getattr(oldtup, votes_attnum(desc, "contest_id"),
									   desc, &isnull)) != contest_id)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a vote cannot move to another contest"),
					 errhint("Delete the vote and insert a new one.")));
		if (!policy_columns_changed(oldtup, newtup, desc))
			return newtup;
		exclude = DatumGetInt64(heap_getattr(oldtup, votes_attnum(desc, "vote_id"),
											 desc, &isnull));
	}

	vg_spi_connect();
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
				 errtableconstraint(rel, "votes_created_at_check")));
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
	return heap_modify_tuple_by_cols(newtup, desc, 1 + VG_NUM_VECTORS,
									 cols, vals, nulls);
}
