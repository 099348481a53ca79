/*-------------------------------------------------------------------------
 *
 * vote_guard.c
 *	  cast_vote(), change_vote() and retract_vote(): race-free votes in one
 *	  call each; and the key functions.
 *
 * The order of work in cast_vote:
 *
 *	0. in a read-only transaction (a hot standby's included) the call is
 *	   refused with SQLSTATE 25006 before anything else: votes are writes;
 *	1. arguments are checked without touching a table (invalid_input);
 *	2. the contest's lock is taken in share mode (READ COMMITTED), and the
 *	   contest read from the backend's cache (under REPEATABLE READ and
 *	   SERIALIZABLE: read with FOR SHARE of its row, as the transaction's
 *	   snapshot may predate a close);
 *	3. time window, login and identity rules give their codes; the entry
 *	   is looked up in the primary key of entries (vg_storage.c);
 *	4. the voter's keys are computed (HMAC, derived per contest);
 *	5. with one vote per voter and no cooldown, one INSERT ... ON CONFLICT DO
 *	   NOTHING writes the vote (vg_vote_insert, with the executor's
 *	   functions, without a plan) and the partial unique indexes decide: two
 *	   concurrent calls for one voter can never both succeed, and a call
 *	   waits for a conflicting call in flight and succeeds if that one
 *	   aborts.  Other policies first lock the voter's vectors and read its
 *	   earlier votes (vg_policy.c), then insert into the chosen slots, the
 *	   same indexes still standing guard.  The entry's counter then moves
 *	   in a slot row no other transaction holds (vg_counter_add);
 *	6. on a conflict, the voter's votes say which vector collided, or that
 *	   this request_id was accepted before (a replay).
 *
 * For an entry or contest with a capacity (1.1) a place is taken before
 * step 5 (take_place, vg_storage.c's escrow), moving the entry's count with
 * it: a full one answers entry_full or contest_full unless the voter's own
 * checks answer first, and a vote the indexes refuse gives its place back.
 *
 * This file is the top layer: it decides the order of the work and the
 * answer, calling down into the policy (vg_policy.c), the storage
 * (vg_storage.c) and the keys (vg_crypto.c, vg_normalize.c); it names no
 * table.  Expected outcomes come back as rows; there is no subtransaction
 * and no error is caught.  Faults raise an ERROR.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "vg_keys.h"
#include "vg_policy.h"
#include "vg_storage.h"
#include "vg_utils.h"

PG_MODULE_MAGIC;

static const struct
{
	const char *code;
	int			http_status;
}			vg_codes[] =
{
	[VG_OK] = {"ok", 200},
	[VG_DUPLICATE_IP] = {"duplicate_ip", 409},
	[VG_DUPLICATE_USER] = {"duplicate_user", 409},
	[VG_DUPLICATE_EMAIL] = {"duplicate_email", 409},
	[VG_LIMIT_REACHED] = {"limit_reached", 429},
	[VG_COOLDOWN] = {"cooldown", 429},
	[VG_CONTEST_NOT_FOUND] = {"contest_not_found", 404},
	[VG_ENTRY_NOT_FOUND] = {"entry_not_found", 404},
	[VG_CONTEST_NOT_OPEN] = {"contest_not_open", 403},
	[VG_CONTEST_CLOSED] = {"contest_closed", 403},
	[VG_LOGIN_REQUIRED] = {"login_required", 401},
	[VG_INVALID_INPUT] = {"invalid_input", 400},
	[VG_CHANGE_NOT_ALLOWED] = {"change_not_allowed", 403},
	[VG_VOTE_NOT_FOUND] = {"vote_not_found", 404},
	[VG_ENTRY_FULL] = {"entry_full", 409},
	[VG_CONTEST_FULL] = {"contest_full", 409},
};

/* What a call answers: the columns of vote_guard.vote_result. */
typedef struct VgResult
{
	VgCode		code;
	bool		has_count;
	int64		vote_count;
	bool		has_vote_id;
	int64		vote_id;
	bool		has_retry_at;
	TimestampTz retry_at;
	bool		replayed;
} VgResult;

/* How many times a write whose conflicting row has gone is retried. */
#define VG_MAX_RETRIES 3

/* A successful answer: the vote and its entry's count. */
static void
set_ok(VgResult *res, int64 contest_id, int64 entry_id, int64 vote_id,
	   bool replayed)
{
	res->code = VG_OK;
	res->has_vote_id = true;
	res->vote_id = vote_id;
	res->replayed = replayed;
	res->has_count = true;
	res->vote_count = vg_entry_count(contest_id, entry_id);
}

/* Turn a decision other than "go ahead" into the answer. */
static void
set_refusal(VgResult *res, const VgDecision *d, int64 contest_id, int64 entry_id)
{
	if (d->replay)
	{
		set_ok(res, contest_id, d->replay_entry_id, d->replay_vote_id, true);
		return;
	}
	res->code = d->code;
	res->has_retry_at = d->has_retry_at;
	res->retry_at = d->retry_at;
	res->has_count = true;
	res->vote_count = vg_entry_count(contest_id, entry_id);
}

/* bytea Datum of a stored voter key */
static Datum
key_datum(const uint8 *key)
{
	bytea	   *b = palloc(VARHDRSZ + VG_KEY_LEN);

	SET_VARSIZE(b, VARHDRSZ + VG_KEY_LEN);
	memcpy(VARDATA(b), key, VG_KEY_LEN);
	return PointerGetDatum(b);
}

/*
 * A rejected call that carries a request_id may be the retry of a counted
 * one: answer with that vote instead of the rejection.
 */
static void
reject(int64 contest_id, const VgContest *c, text *request_id, VgCode code,
	   VgResult *res)
{
	res->code = code;
	if (request_id != NULL)
	{
		VgVoter		none = {{false}};
		VgDecision	d;

		vg_decide(contest_id, 0, c, &none, PointerGetDatum(request_id),
				  GetCurrentStatementStartTimestamp(), 0, &d);
		if (d.replay)
			set_ok(res, contest_id, d.replay_entry_id, d.replay_vote_id, true);
	}
}

/*
 * Take a place for a vote in the entry and in the contest, those that have
 * a capacity, moving the entry's count with it (*count).  VG_OK, or which
 * one is full (nothing taken then).
 */
static VgCode
take_place(int64 contest_id, int64 entry_id, int64 capacity,
		   const VgContest *c, int64 *count)
{
	if (!vg_counter_add(contest_id, entry_id, 1, capacity, 0, count))
		return VG_ENTRY_FULL;
	if (c->capacity != VG_NO_CAPACITY &&
		!vg_contest_places_add(contest_id, c->capacity, 1, 0))
	{
		(void) vg_counter_add(contest_id, entry_id, -1, capacity, 0, count);
		return VG_CONTEST_FULL;
	}
	return VG_OK;
}

/* Give back what take_place took: the vote did not go in. */
static void
give_place_back(int64 contest_id, int64 entry_id, int64 capacity,
				const VgContest *c)
{
	int64		count;

	(void) vg_counter_add(contest_id, entry_id, -1, capacity, 0, &count);
	if (c->capacity != VG_NO_CAPACITY)
		(void) vg_contest_places_add(contest_id, c->capacity, -1, 0);
}

/*
 * Connect SPI, take the contest's lock and read it.  Returns false, with the
 * answer set, when the contest is missing, not open yet or closed.
 */
static bool
open_contest(int64 contest_id, text *request_id, VgContest *c, VgResult *res)
{
	TimestampTz now = GetCurrentStatementStartTimestamp();
	int32		window_no;

	vg_spi_connect();

	/* wait for a change of the contest in flight, hold off the next one */
	if (!IsolationUsesXactSnapshot())
		vg_lock_contest(contest_id, false);

	if (!vg_load_contest(contest_id, c))
	{
		res->code = VG_CONTEST_NOT_FOUND;
		return false;
	}
	if (now < c->opens_at)
	{
		reject(contest_id, c, request_id, VG_CONTEST_NOT_OPEN, res);
		return false;
	}
	if (c->closed || (c->has_closes_at && now >= c->closes_at) ||
		!vg_window_no(c, now, &window_no))
	{
		/* (window numbers run out: an open-ended contest's end) */
		reject(contest_id, c, request_id, VG_CONTEST_CLOSED, res);
		return false;
	}
	return true;
}

/*
 * The vote itself, SPI connected and the contest open.  Arguments are
 * already checked except what needs the contest.
 */
static void
cast_vote_spi(int64 contest_id, int64 entry_id, inet *voter_ip, text *user_id,
			  const char *email_norm, text *request_id, const VgContest *c,
			  VgResult *res)
{
	TimestampTz now = GetCurrentStatementStartTimestamp();
	bool		locked = vg_policy_needs_locks(c);
	VgVoter		v;
	VgDecision	d;
	int64		vote_id;
	int64		capacity;
	bool		limited;
	int			attempt;
	int			i;

	if (c->require_user && user_id == NULL)
	{
		reject(contest_id, c, request_id, VG_LOGIN_REQUIRED, res);
		return;
	}

	v.has[VG_VEC_IP] = c->dedupe[VG_VEC_IP] && voter_ip != NULL;
	v.has[VG_VEC_USER] = c->dedupe[VG_VEC_USER] && user_id != NULL;
	v.has[VG_VEC_EMAIL] = c->dedupe[VG_VEC_EMAIL] && email_norm != NULL;
	if (!v.has[VG_VEC_IP] && !v.has[VG_VEC_USER] && !v.has[VG_VEC_EMAIL])
	{
		reject(contest_id, c, request_id, VG_INVALID_INPUT, res);
		return;
	}
	/*
	 * The entry.  It cannot go away before this transaction ends: removing
	 * an entry takes the contest's lock in exclusive mode (entries trigger).
	 */
	if (!vg_entry_lookup(contest_id, entry_id, &capacity))
	{
		reject(contest_id, c, request_id, VG_ENTRY_NOT_FOUND, res);
		return;
	}
	limited = capacity != VG_NO_CAPACITY || c->capacity != VG_NO_CAPACITY;

	memset(v.key, 0, sizeof(v.key));
	if (v.has[VG_VEC_IP] || v.has[VG_VEC_EMAIL])
	{
		VgContestKeys *keys = vg_contest_keys(contest_id, c->secret_version);
		uint8		key[VG_KEY_LEN];

		if (v.has[VG_VEC_IP])
		{
			VgIpBytes	ipb;

			vg_ip_canonical(voter_ip, c->ipv4_prefix, c->ipv6_prefix, &ipb);
			vg_ip_key(keys, &ipb, key);
			v.key[VG_VEC_IP] = key_datum(key);
		}
		if (v.has[VG_VEC_EMAIL])
		{
			vg_email_key(keys, email_norm, key);
			v.key[VG_VEC_EMAIL] = key_datum(key);
		}
	}
	if (v.has[VG_VEC_USER])
		v.key[VG_VEC_USER] = PointerGetDatum(user_id);
	for (i = 0; i < VG_NUM_VECTORS; i++)
		v.slot[i] = 1;

	if (locked)
		vg_lock_voter(contest_id, &v);

	for (attempt = 0;; attempt++)
	{
		if (locked)
		{
			vg_decide(contest_id, entry_id, c, &v, PointerGetDatum(request_id),
					  now, 0, &d);
			if (d.replay || d.code != VG_OK)
			{
				set_refusal(res, &d, contest_id, entry_id);
				return;
			}
		}

		/*
		 * With a capacity, the place first: a full entry or contest writes
		 * nothing, and the answer is full unless the voter's own checks
		 * say otherwise (a duplicate, a replay).
		 */
		if (limited)
		{
			VgCode		full = take_place(contest_id, entry_id, capacity, c,
										  &res->vote_count);

			if (full != VG_OK)
			{
				vg_decide(contest_id, entry_id, c, &v, PointerGetDatum(request_id),
						  now, 0, &d);
				if (d.replay || d.code != VG_OK)
					set_refusal(res, &d, contest_id, entry_id);
				else
				{
					res->code = full;
					res->has_count = true;
					res->vote_count = vg_entry_count(contest_id, entry_id);
				}
				return;
			}
		}

		if (vg_vote_insert(contest_id, entry_id, &v, request_id,
						   vg_window_no_open(c, now), &vote_id))
		{
			res->code = VG_OK;
			res->has_vote_id = true;
			res->vote_id = vote_id;
			res->has_count = true;
			if (!limited)
				(void) vg_counter_add(contest_id, entry_id, 1, VG_NO_CAPACITY,
									  0, &res->vote_count);
			return;
		}
		if (limited)
			give_place_back(contest_id, entry_id, capacity, c);

		/* a unique index said no: find out why */
		vg_decide(contest_id, entry_id, c, &v, PointerGetDatum(request_id),
				  now, 0, &d);
		if (d.replay || d.code != VG_OK)
		{
			set_refusal(res, &d, contest_id, entry_id);
			return;
		}
		/* the conflicting vote is gone (deleted since): try again */
		if (attempt >= VG_MAX_RETRIES)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not cast the vote: the conflicting vote kept disappearing"),
					 errhint("Retry the transaction.")));
	}
}

/* Build the vote_result row. */
static Datum
result_datum(FunctionCallInfo fcinfo, const VgResult *res)
{
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		isnull[7];

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function returning record called in context that cannot accept type record")));

	values[0] = BoolGetDatum(res->code == VG_OK);
	values[1] = CStringGetTextDatum(vg_codes[res->code].code);
	values[2] = Int32GetDatum(vg_codes[res->code].http_status);
	values[3] = Int64GetDatum(res->vote_count);
	values[4] = Int64GetDatum(res->vote_id);
	values[5] = TimestampTzGetDatum(res->retry_at);
	values[6] = BoolGetDatum(res->replayed);
	memset(isnull, false, sizeof(isnull));
	isnull[3] = !res->has_count;
	isnull[4] = !res->has_vote_id;
	isnull[5] = !res->has_retry_at;

	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
											 values, isnull));
}

/* A positive bigint argument, or false. */
static bool
positive_arg(FunctionCallInfo fcinfo, int n, int64 *value)
{
	if (PG_ARGISNULL(n))
		return false;
	*value = PG_GETARG_INT64(n);
	return *value > 0;
}

/*
 * Votes are writes: in a read-only transaction, and so on a hot standby,
 * refuse the call at once, whatever its arguments, rather than answer some
 * calls with rows (invalid_input, contest_not_found, a replay) and fail
 * others on their first write.  The first thing each voting function does.
 */
static void
refuse_if_read_only(const char *fname)
{
	if (!XactReadOnly)
		return;
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("vote_guard.%s cannot run on a standby server", fname),
				 errdetail("The server is in recovery: every transaction is read-only."),
				 errhint("Send votes to the primary server.")));
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("vote_guard.%s cannot run in a read-only transaction", fname),
			 errhint("Send votes to the primary server, in a read-write transaction.")));
}

PG_FUNCTION_INFO_V1(vg_cast_vote);

/*
 * vote_guard.cast_vote(contest_id bigint, entry_id bigint, voter_ip inet,
 *                      user_id text, email text, request_id text)
 *		RETURNS vote_guard.vote_result
 */
Datum
vg_cast_vote(PG_FUNCTION_ARGS)
{
	VgResult	res = {VG_INVALID_INPUT};
	VgContest	c;
	int64		contest_id = 0;
	int64		entry_id = 0;
	inet	   *voter_ip = PG_ARGISNULL(2) ? NULL : PG_GETARG_INET_PP(2);
	text	   *user_id = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	text	   *email = PG_ARGISNULL(4) ? NULL : PG_GETARG_TEXT_PP(4);
	text	   *request_id = PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5);
	char	   *email_norm = NULL;
	bool		valid;

	refuse_if_read_only("cast_vote");

	/* 1. arguments, without touching a table */
	valid = positive_arg(fcinfo, 0, &contest_id) &&
		positive_arg(fcinfo, 1, &entry_id);
	if (voter_ip != NULL && !vg_inet_is_host(voter_ip))
		valid = false;
	if (user_id != NULL && !vg_text_length_ok(user_id, VG_MAX_USER_ID_CHARS))
		valid = false;
	if (request_id != NULL && !vg_text_length_ok(request_id, VG_MAX_REQUEST_ID_CHARS))
		valid = false;
	if (email != NULL)
	{
		if (!vg_text_length_ok(email, VG_MAX_EMAIL_CHARS))
			valid = false;
		else
		{
			email_norm = vg_normalize_email_cstr(VARDATA_ANY(email),
												 VARSIZE_ANY_EXHDR(email));
			if (email_norm == NULL)
				valid = false;
		}
	}

	if (valid)
	{
		if (open_contest(contest_id, request_id, &c, &res))
			cast_vote_spi(contest_id, entry_id, voter_ip, user_id, email_norm,
						  request_id, &c, &res);
		SPI_finish();
	}

	PG_RETURN_DATUM(result_datum(fcinfo, &res));
}

/* Arguments of change_vote and retract_vote; false: invalid_input. */
static bool
user_call_args(FunctionCallInfo fcinfo, int user_arg, text **user_id)
{
	if (PG_ARGISNULL(user_arg))
		return false;
	*user_id = PG_GETARG_TEXT_PP(user_arg);
	return vg_text_length_ok(*user_id, VG_MAX_USER_ID_CHARS);
}

/*
 * Find and lock the user's vote for change_vote and retract_vote, with the
 * voter's locks where the policy needs them.  False, with the answer set,
 * when there is no such vote or the choice is ambiguous.
 */
static bool
locate_user_vote(int64 contest_id, const VgContest *c, text *user_id,
				 bool has_old, int64 old_entry_id, int64 *vote_id,
				 int64 *entry_id, VgVoter *v, VgResult *res)
{
	int32		w = vg_window_no_open(c, GetCurrentStatementStartTimestamp());
	int			attempt;

	for (attempt = 0; attempt <= VG_MAX_RETRIES; attempt++)
	{
		int			found = vg_user_vote_find(contest_id, user_id, w, has_old,
											  old_entry_id, vote_id);

		if (found != 1)
		{
			res->code = found == 0 ? VG_VOTE_NOT_FOUND : VG_INVALID_INPUT;
			return false;
		}
		/* the row first (it cannot change under us then), then its vectors */
		if (vg_user_vote_lock(contest_id, *vote_id, user_id, w, has_old,
							  old_entry_id, entry_id, v))
		{
			if (vg_policy_needs_locks(c))
				vg_lock_voter(contest_id, v);
			return true;
		}
	}
	ereport(ERROR,
			(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
			 errmsg("could not lock the user's vote: it kept changing"),
			 errhint("Retry the transaction.")));
	return false;				/* keep the compiler quiet */
}

/*
 * Move a vote from cur_entry to new_entry, with the counters: into an entry
 * with a capacity only if a place is left there (false: full, nothing
 * moved); the contest keeps its place.
 */
static bool
move_counted(int64 contest_id, int64 cur_entry, int64 new_entry,
			 int64 new_capacity, int64 vote_id)
{
	int64		cur_capacity;
	int64		count;

	if (!vg_entry_lookup(contest_id, cur_entry, &cur_capacity))
		cur_capacity = VG_NO_CAPACITY;
	if (new_capacity == VG_NO_CAPACITY && cur_capacity == VG_NO_CAPACITY)
	{
		/* the trigger moves both counters */
		vg_vote_move(contest_id, vote_id, new_entry, false);
		return true;
	}
	/*
	 * The two entries' counter rows in entry order, as the votes trigger
	 * moves them: two moves in opposite directions cannot wait for each
	 * other.  A place given back first is taken again if the new entry is
	 * full (this transaction holds the row it went to).
	 */
	if (cur_entry < new_entry)
	{
		(void) vg_counter_add(contest_id, cur_entry, -1, cur_capacity, 0, &count);
		if (!vg_counter_add(contest_id, new_entry, 1, new_capacity, 0, &count))
		{
			if (!vg_counter_add(contest_id, cur_entry, 1, cur_capacity,
								VG_COUNT_UNDO, &count))
				elog(ERROR, "could not take back the place of entry " INT64_FORMAT,
					 cur_entry);
			return false;
		}
	}
	else
	{
		if (!vg_counter_add(contest_id, new_entry, 1, new_capacity, 0, &count))
			return false;
		(void) vg_counter_add(contest_id, cur_entry, -1, cur_capacity, 0, &count);
	}
	vg_vote_move(contest_id, vote_id, new_entry, true);
	return true;
}

PG_FUNCTION_INFO_V1(vg_change_vote);

/*
 * vote_guard.change_vote(contest_id bigint, new_entry_id bigint,
 *                        user_id text, old_entry_id bigint)
 *		RETURNS vote_guard.vote_result
 *
 * Moves the user's vote in the current window to another entry: one UPDATE,
 * so both counters move in this transaction.
 */
Datum
vg_change_vote(PG_FUNCTION_ARGS)
{
	VgResult	res = {VG_INVALID_INPUT};
	VgContest	c;
	int64		contest_id = 0,
				new_entry = 0,
				old_entry = 0,
				vote_id,
				cur_entry;
	text	   *user_id = NULL;
	bool		has_old = !PG_ARGISNULL(3);
	VgVoter		v;
	int64		new_capacity = VG_NO_CAPACITY;

	refuse_if_read_only("change_vote");
	if (positive_arg(fcinfo, 0, &contest_id) &&
		positive_arg(fcinfo, 1, &new_entry) &&
		user_call_args(fcinfo, 2, &user_id) &&
		(!has_old || positive_arg(fcinfo, 3, &old_entry)))
	{
		if (open_contest(contest_id, NULL, &c, &res))
		{
			if (!c.allow_change)
				res.code = VG_CHANGE_NOT_ALLOWED;
			else if (!vg_entry_lookup(contest_id, new_entry, &new_capacity))
				res.code = VG_ENTRY_NOT_FOUND;
			else if (locate_user_vote(contest_id, &c, user_id, has_old, old_entry,
									  &vote_id, &cur_entry, &v, &res))
			{
				VgDecision	d = {VG_OK};

				if (cur_entry != new_entry && vg_policy_needs_locks(&c))
				{
					/*
					 * Only the per-entry limit can stop a move: leaving the
					 * moving vote out, every vector is below its limit, and
					 * a move is not a new vote for the cooldown.
					 */
					VgContest	move = c;

					move.cooldown_usecs = 0;
					vg_decide(contest_id, new_entry, &move, &v, (Datum) 0,
							  GetCurrentStatementStartTimestamp(), vote_id, &d);
				}
				if (d.code != VG_OK)
					set_refusal(&res, &d, contest_id, new_entry);
				else if (cur_entry != new_entry &&
						 !move_counted(contest_id, cur_entry, new_entry,
									   new_capacity, vote_id))
				{
					res.code = VG_ENTRY_FULL;
					res.has_count = true;
					res.vote_count = vg_entry_count(contest_id, new_entry);
				}
				else
					set_ok(&res, contest_id, new_entry, vote_id, false);
			}
		}
		SPI_finish();
	}
	PG_RETURN_DATUM(result_datum(fcinfo, &res));
}

PG_FUNCTION_INFO_V1(vg_retract_vote);

/*
 * vote_guard.retract_vote(contest_id bigint, user_id text, entry_id bigint)
 *		RETURNS vote_guard.vote_result
 *
 * Removes the user's vote in the current window (for entry_id, if given).
 */
Datum
vg_retract_vote(PG_FUNCTION_ARGS)
{
	VgResult	res = {VG_INVALID_INPUT};
	VgContest	c;
	int64		contest_id = 0,
				entry = 0,
				vote_id,
				cur_entry;
	text	   *user_id = NULL;
	bool		has_entry = !PG_ARGISNULL(2);
	VgVoter		v;

	refuse_if_read_only("retract_vote");
	if (positive_arg(fcinfo, 0, &contest_id) &&
		user_call_args(fcinfo, 1, &user_id) &&
		(!has_entry || positive_arg(fcinfo, 2, &entry)))
	{
		if (open_contest(contest_id, NULL, &c, &res))
		{
			if (!c.allow_change)
				res.code = VG_CHANGE_NOT_ALLOWED;
			else if (locate_user_vote(contest_id, &c, user_id, has_entry, entry,
									  &vote_id, &cur_entry, &v, &res))
			{
				vg_vote_delete(contest_id, vote_id);
				set_ok(&res, contest_id, cur_entry, vote_id, false);
			}
		}
		SPI_finish();
	}
	PG_RETURN_DATUM(result_datum(fcinfo, &res));
}

/*
 * The contest settings the key functions need, kept in fn_extra for the
 * query: a query that computes many keys for one contest reads it once.
 * (They cannot change once votes depend on them; see the contests trigger.)
 */
typedef struct KeySettings
{
	int64		contest_id;		/* 0: none yet */
	int32		ipv4_prefix;
	int32		ipv6_prefix;
	int32		secret_version;
} KeySettings;

static const KeySettings *
key_settings(FunctionCallInfo fcinfo, int64 contest_id)
{
	KeySettings *ks = fcinfo->flinfo->fn_extra;

	if (ks == NULL)
		ks = fcinfo->flinfo->fn_extra =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(KeySettings));
	if (ks->contest_id == contest_id && contest_id != 0)
		return ks;

	vg_spi_connect();
	if (!vg_contest_key_settings(contest_id, &ks->ipv4_prefix,
								 &ks->ipv6_prefix, &ks->secret_version))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("contest " INT64_FORMAT " does not exist", contest_id)));
	ks->contest_id = contest_id;
	SPI_finish();
	return ks;
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
	int64		usecs;
	int64		w;

	if (!vg_interval_usecs(PG_GETARG_INTERVAL_P(1), &usecs) ||
		!vg_window_number(PG_GETARG_TIMESTAMPTZ(0), usecs,
						  PG_GETARG_TIMESTAMPTZ(2), &w))
		PG_RETURN_NULL();
	PG_RETURN_INT64(w);
}

PG_FUNCTION_INFO_V1(vg_ip_key_fn);

/* vote_guard.ip_key(contest_id bigint, ip inet) RETURNS bytea */
Datum
vg_ip_key_fn(PG_FUNCTION_ARGS)
{
	int64		contest_id = PG_GETARG_INT64(0);
	inet	   *ip = PG_GETARG_INET_PP(1);
	const KeySettings *ks;
	VgIpBytes	ipb;
	uint8		key[VG_KEY_LEN];

	if (!vg_inet_is_host(ip))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("voter address must be a host address, without a netmask")));

	ks = key_settings(fcinfo, contest_id);
	vg_ip_canonical(ip, ks->ipv4_prefix, ks->ipv6_prefix, &ipb);
	vg_ip_key(vg_contest_keys(contest_id, ks->secret_version), &ipb, key);
	PG_RETURN_DATUM(key_datum(key));
}

PG_FUNCTION_INFO_V1(vg_email_key_fn);

/* vote_guard.email_key(contest_id bigint, email text) RETURNS bytea */
Datum
vg_email_key_fn(PG_FUNCTION_ARGS)
{
	int64		contest_id = PG_GETARG_INT64(0);
	text	   *email = PG_GETARG_TEXT_PP(1);
	const KeySettings *ks;
	char	   *norm;
	uint8		key[VG_KEY_LEN];

	norm = vg_normalize_email_cstr(VARDATA_ANY(email), VARSIZE_ANY_EXHDR(email));
	if (norm == NULL)
		PG_RETURN_NULL();

	ks = key_settings(fcinfo, contest_id);
	vg_email_key(vg_contest_keys(contest_id, ks->secret_version), norm, key);
	pfree(norm);
	PG_RETURN_DATUM(key_datum(key));
}
