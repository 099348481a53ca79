/*-------------------------------------------------------------------------
 *
 * vote_guard.c
 *	  cast_vote(): a race-free vote in one call, and the key functions.
 *
 * The order of work in cast_vote:
 *
 *	1. arguments are checked without touching a table (invalid_input);
 *	2. the contest's lock is taken in share mode (READ COMMITTED), then one
 *	   query reads the contest and whether the entry exists (with FOR SHARE
 *	   of the contest row under REPEATABLE READ and SERIALIZABLE, where the
 *	   transaction's snapshot may predate a close);
 *	3. time window, login and identity rules give their codes;
 *	4. the voter's keys are computed (HMAC, derived per contest);
 *	5. one INSERT ... ON CONFLICT DO NOTHING writes the vote: the partial
 *	   unique indexes decide, so two concurrent calls for one voter can never
 *	   both succeed, and a call waits for a conflicting call in flight and
 *	   succeeds if that one aborts.  The votes trigger moves the counter in
 *	   the same transaction;
 *	6. on a conflict, one query finds which vector collided, or the earlier
 *	   call with the same request_id (a replay).
 *
 * Expected outcomes come back as rows; there is no subtransaction and no
 * error is caught.  Faults raise an ERROR.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "utils/timestamp.h"

#include "vote_guard.h"

PG_MODULE_MAGIC;

/* The result codes of the contract, with their HTTP statuses. */
typedef enum VgCode
{
	VG_OK,
	VG_DUPLICATE_IP,
	VG_DUPLICATE_USER,
	VG_DUPLICATE_EMAIL,
	VG_LIMIT_REACHED,
	VG_COOLDOWN,
	VG_CONTEST_NOT_FOUND,
	VG_ENTRY_NOT_FOUND,
	VG_CONTEST_NOT_OPEN,
	VG_CONTEST_CLOSED,
	VG_LOGIN_REQUIRED,
	VG_INVALID_INPUT
} VgCode;

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
};

/* What cast_vote answers: the columns of vote_guard.vote_result. */
typedef struct VgResult
{
	VgCode		code;
	bool		has_count;
	int64		vote_count;
	bool		has_vote_id;
	int64		vote_id;
	bool		replayed;
} VgResult;

/* A contest as cast_vote sees it. */
typedef struct VgContest
{
	TimestampTz opens_at;
	bool		has_closes_at;
	TimestampTz closes_at;
	bool		closed;			/* closed by the organiser */
	bool		dedupe_ip;
	bool		dedupe_user;
	bool		dedupe_email;
	int32		ipv4_prefix;
	int32		ipv6_prefix;
	bool		require_user;
	int32		secret_version;
	bool		entry_exists;
} VgContest;

/* How many times a conflict whose row has gone is retried. */
#define VG_MAX_CONFLICT_RETRIES 3

/*
 * Prepared plans, kept for the life of the backend.  PostgreSQL replans them
 * when the tables change, and re-parses them if the extension is re-created.
 */
static SPIPlanPtr plan_contest = NULL;
static SPIPlanPtr plan_contest_share = NULL;
static SPIPlanPtr plan_insert = NULL;
static SPIPlanPtr plan_conflict = NULL;
static SPIPlanPtr plan_count = NULL;
static SPIPlanPtr plan_prefixes = NULL;

static SPIPlanPtr
prepare_kept(const char *query, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan = SPI_prepare(query, nargs, argtypes);

	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 query, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

#define CONTEST_QUERY \
	"SELECT c.opens_at, c.closes_at, c.closed_at IS NOT NULL," \
	"       'ip' OPERATOR(pg_catalog.=) ANY (c.dedupe_on)," \
	"       'user' OPERATOR(pg_catalog.=) ANY (c.dedupe_on)," \
	"       'email' OPERATOR(pg_catalog.=) ANY (c.dedupe_on)," \
	"       c.ipv4_prefix, c.ipv6_prefix, c.require_user, c.secret_version," \
	"       EXISTS (SELECT 1 FROM vote_guard.entries e" \
	"                WHERE e.contest_id OPERATOR(pg_catalog.=) c.id" \
	"                  AND e.entry_id OPERATOR(pg_catalog.=) $2)" \
	"  FROM vote_guard.contests c" \
	" WHERE c.id OPERATOR(pg_catalog.=) $1"

static void
prepare_plans(void)
{
	Oid			contest_args[2] = {INT8OID, INT8OID};
	Oid			insert_args[6] = {INT8OID, INT8OID, BYTEAOID, TEXTOID, BYTEAOID, TEXTOID};
	Oid			conflict_args[5] = {INT8OID, BYTEAOID, TEXTOID, BYTEAOID, TEXTOID};
	Oid			count_args[2] = {INT8OID, INT8OID};
	Oid			prefix_args[1] = {INT8OID};

	if (plan_prefixes != NULL)
		return;

	plan_contest = prepare_kept(CONTEST_QUERY, 2, contest_args);
	plan_contest_share = prepare_kept(CONTEST_QUERY " FOR SHARE OF c",
									  2, contest_args);
	plan_insert = prepare_kept(
		"INSERT INTO vote_guard.votes"
		"       (contest_id, entry_id, ip_key, user_id, email_key, request_id)"
		" VALUES ($1, $2, $3, $4, $5, $6)"
		" ON CONFLICT DO NOTHING"
		" RETURNING vote_id",
		6, insert_args);
	plan_conflict = prepare_kept(
		"SELECT v.vote_id, v.entry_id,"
		"       COALESCE(v.request_id OPERATOR(pg_catalog.=) $5, false),"
		"       COALESCE(v.ip_key OPERATOR(pg_catalog.=) $2, false),"
		"       COALESCE(v.user_id OPERATOR(pg_catalog.=) $3, false),"
		"       COALESCE(v.email_key OPERATOR(pg_catalog.=) $4, false)"
		"  FROM vote_guard.votes v"
		" WHERE v.contest_id OPERATOR(pg_catalog.=) $1"
		"   AND (v.ip_key OPERATOR(pg_catalog.=) $2"
		"        OR v.user_id OPERATOR(pg_catalog.=) $3"
		"        OR v.email_key OPERATOR(pg_catalog.=) $4"
		"        OR v.request_id OPERATOR(pg_catalog.=) $5)",
		5, conflict_args);
	plan_count = prepare_kept(
		"SELECT pg_catalog.sum(k.votes)::pg_catalog.int8"
		"  FROM vote_guard.counters k"
		" WHERE k.contest_id OPERATOR(pg_catalog.=) $1"
		"   AND k.entry_id OPERATOR(pg_catalog.=) $2",
		2, count_args);
	plan_prefixes = prepare_kept(
		"SELECT c.ipv4_prefix, c.ipv6_prefix, c.secret_version"
		"  FROM vote_guard.contests c"
		" WHERE c.id OPERATOR(pg_catalog.=) $1",
		1, prefix_args);
}

static void
check_spi(int ret, int expected)
{
	if (ret != expected)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
}

static Datum
spi_value(int row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col, isnull);
}

/* Read the contest and whether the entry exists; false if no such contest. */
static bool
load_contest(int64 contest_id, int64 entry_id, VgContest *c)
{
	Datum		args[2] = {Int64GetDatum(contest_id), Int64GetDatum(entry_id)};
	bool		isnull;
	SPIPlanPtr	plan;

	plan = IsolationUsesXactSnapshot() ? plan_contest_share : plan_contest;
	check_spi(SPI_execute_plan(plan, args, NULL, false, 1), SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;

	c->opens_at = DatumGetTimestampTz(spi_value(0, 1, &isnull));
	c->closes_at = DatumGetTimestampTz(spi_value(0, 2, &isnull));
	c->has_closes_at = !isnull;
	c->closed = DatumGetBool(spi_value(0, 3, &isnull));
	c->dedupe_ip = DatumGetBool(spi_value(0, 4, &isnull));
	c->dedupe_user = DatumGetBool(spi_value(0, 5, &isnull));
	c->dedupe_email = DatumGetBool(spi_value(0, 6, &isnull));
	c->ipv4_prefix = DatumGetInt32(spi_value(0, 7, &isnull));
	c->ipv6_prefix = DatumGetInt32(spi_value(0, 8, &isnull));
	c->require_user = DatumGetBool(spi_value(0, 9, &isnull));
	c->secret_version = DatumGetInt32(spi_value(0, 10, &isnull));
	c->entry_exists = DatumGetBool(spi_value(0, 11, &isnull));
	return true;
}

/* The entry's count as this transaction sees it now. */
static int64
entry_count(int64 contest_id, int64 entry_id)
{
	Datum		args[2] = {Int64GetDatum(contest_id), Int64GetDatum(entry_id)};
	bool		isnull;
	Datum		d;

	check_spi(SPI_execute_plan(plan_count, args, NULL, false, 1), SPI_OK_SELECT);
	d = spi_value(0, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/* bytea Datum of a key, or a null */
static Datum
key_datum(const uint8 *key, bool present, char *nulls, int i)
{
	bytea	   *b;

	if (!present)
	{
		nulls[i] = 'n';
		return (Datum) 0;
	}
	b = palloc(VARHDRSZ + VG_HMAC_LEN);
	SET_VARSIZE(b, VARHDRSZ + VG_HMAC_LEN);
	memcpy(VARDATA(b), key, VG_HMAC_LEN);
	nulls[i] = ' ';
	return PointerGetDatum(b);
}

/*
 * After an insert that hit a unique index: which earlier vote did it hit?
 * Fills the result with a replay or the first colliding vector, and returns
 * false when the conflicting row is gone (deleted since), so the insert
 * should be tried again.
 */
static bool
explain_conflict(int64 contest_id, int64 entry_id, Datum *keys,
				 const char *nulls, VgResult *res)
{
	Datum		args[5];
	char		argnulls[5];
	bool		hit_ip = false,
				hit_user = false,
				hit_email = false;
	uint64		i;
	bool		isnull;

	/* keys: ip_key, user_id, email_key, request_id */
	args[0] = Int64GetDatum(contest_id);
	argnulls[0] = ' ';
	memcpy(args + 1, keys, 4 * sizeof(Datum));
	memcpy(argnulls + 1, nulls, 4);

	check_spi(SPI_execute_plan(plan_conflict, args, argnulls, false, 0),
			  SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;

	for (i = 0; i < SPI_processed; i++)
	{
		if (DatumGetBool(spi_value(i, 3, &isnull)))
		{
			int64		orig_entry = DatumGetInt64(spi_value(i, 2, &isnull));

			res->code = VG_OK;
			res->has_vote_id = true;
			res->vote_id = DatumGetInt64(spi_value(i, 1, &isnull));
			res->replayed = true;
			res->has_count = true;
			res->vote_count = entry_count(contest_id, orig_entry);
			return true;
		}
		hit_ip |= DatumGetBool(spi_value(i, 4, &isnull));
		hit_user |= DatumGetBool(spi_value(i, 5, &isnull));
		hit_email |= DatumGetBool(spi_value(i, 6, &isnull));
	}

	res->code = hit_ip ? VG_DUPLICATE_IP :
		hit_user ? VG_DUPLICATE_USER : VG_DUPLICATE_EMAIL;
	res->has_count = true;
	res->vote_count = entry_count(contest_id, entry_id);
	return true;
}

/* A rejected call that carries a request_id may be a retry of a counted one. */
static void
replay_or_reject(int64 contest_id, text *request_id, VgCode code, VgResult *res)
{
	Datum		keys[4] = {0, 0, 0, 0};
	char		nulls[4] = {'n', 'n', 'n', 'n'};

	res->code = code;
	if (request_id == NULL)
		return;
	keys[3] = PointerGetDatum(request_id);
	nulls[3] = ' ';
	(void) explain_conflict(contest_id, 0, keys, nulls, res);
	if (!res->replayed)
	{
		/* nothing matched: the rejection stands */
		res->code = code;
		res->has_count = false;
	}
}

/* Is a text argument within 1..max characters? */
static bool
text_length_ok(text *t, int max_chars)
{
	int			nbytes = VARSIZE_ANY_EXHDR(t);

	if (nbytes == 0)
		return false;
	if (nbytes <= max_chars)
		return true;
	return pg_mbstrlen_with_len(VARDATA_ANY(t), nbytes) <= max_chars;
}

/*
 * The vote itself, SPI connected.  Arguments are already checked except
 * what needs the contest.
 */
static void
cast_vote_spi(int64 contest_id, int64 entry_id, inet *voter_ip, text *user_id,
			  const char *email_norm, text *request_id, VgResult *res)
{
	VgContest	c;
	TimestampTz now = GetCurrentStatementStartTimestamp();
	bool		use_ip,
				use_user,
				use_email;
	uint8		ip_key[VG_HMAC_LEN];
	uint8		email_key[VG_HMAC_LEN];
	Datum		args[6];
	char		nulls[6];
	int			attempt;

	prepare_plans();

	/* wait for a change of the contest in flight, hold off the next one */
	if (!IsolationUsesXactSnapshot())
		vg_lock_contest(contest_id, false);

	if (!load_contest(contest_id, entry_id, &c))
	{
		res->code = VG_CONTEST_NOT_FOUND;
		return;
	}

	if (now < c.opens_at)
		{
			replay_or_reject(contest_id, request_id, VG_CONTEST_NOT_OPEN, res);
			return;
		}
	if (c.closed || (c.has_closes_at && now >= c.closes_at))
		{
			replay_or_reject(contest_id, request_id, VG_CONTEST_CLOSED, res);
			return;
		}
	if (c.require_user && user_id == NULL)
		{
			replay_or_reject(contest_id, request_id, VG_LOGIN_REQUIRED, res);
			return;
		}

	use_ip = c.dedupe_ip && voter_ip != NULL;
	use_user = c.dedupe_user && user_id != NULL;
	use_email = c.dedupe_email && email_norm != NULL;
	if (!use_ip && !use_user && !use_email)
		{
			replay_or_reject(contest_id, request_id, VG_INVALID_INPUT, res);
			return;
		}

	if (!c.entry_exists)
	{
		replay_or_reject(contest_id, request_id, VG_ENTRY_NOT_FOUND, res);
		return;
	}

	if (use_ip || use_email)
	{
		VgContestKeys *keys = vg_contest_keys(contest_id, c.secret_version);

		if (use_ip)
		{
			VgIpBytes	ipb;

			vg_ip_canonical(voter_ip, c.ipv4_prefix, c.ipv6_prefix, &ipb);
			vg_ip_key(keys, &ipb, ip_key);
		}
		if (use_email)
			vg_email_key(keys, email_norm, email_key);
	}

	args[0] = Int64GetDatum(contest_id);
	args[1] = Int64GetDatum(entry_id);
	nulls[0] = nulls[1] = ' ';
	args[2] = key_datum(ip_key, use_ip, nulls, 2);
	args[3] = PointerGetDatum(user_id);
	nulls[3] = use_user ? ' ' : 'n';
	args[4] = key_datum(email_key, use_email, nulls, 4);
	args[5] = PointerGetDatum(request_id);
	nulls[5] = request_id != NULL ? ' ' : 'n';

	for (attempt = 0;; attempt++)
	{
		bool		isnull;

		check_spi(SPI_execute_plan(plan_insert, args, nulls, false, 0),
				  SPI_OK_INSERT_RETURNING);
		if (SPI_processed == 1)
		{
			res->code = VG_OK;
			res->has_vote_id = true;
			res->vote_id = DatumGetInt64(spi_value(0, 1, &isnull));
			res->has_count = true;
			res->vote_count = entry_count(contest_id, entry_id);
			return;
		}
		if (explain_conflict(contest_id, entry_id, args + 2, nulls + 2, res))
			return;
		if (attempt >= VG_MAX_CONFLICT_RETRIES)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not cast the vote: the conflicting vote kept disappearing"),
					 errhint("Retry the transaction.")));
	}
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
	TupleDesc	tupdesc;
	Datum		values[7];
	bool		isnull[7];
	int64		contest_id = 0;
	int64		entry_id = 0;
	inet	   *voter_ip = PG_ARGISNULL(2) ? NULL : PG_GETARG_INET_PP(2);
	text	   *user_id = PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3);
	text	   *email = PG_ARGISNULL(4) ? NULL : PG_GETARG_TEXT_PP(4);
	text	   *request_id = PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5);
	char	   *email_norm = NULL;
	bool		valid = true;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function returning record called in context that cannot accept type record")));

	/* 1. arguments, without touching a table */
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		valid = false;
	else
	{
		contest_id = PG_GETARG_INT64(0);
		entry_id = PG_GETARG_INT64(1);
		valid = contest_id > 0 && entry_id > 0;
	}
	if (voter_ip != NULL && !vg_inet_is_host(voter_ip))
		valid = false;
	if (user_id != NULL && !text_length_ok(user_id, VG_MAX_USER_ID_CHARS))
		valid = false;
	if (request_id != NULL && !text_length_ok(request_id, VG_MAX_REQUEST_ID_CHARS))
		valid = false;
	if (email != NULL)
	{
		if (!text_length_ok(email, VG_MAX_EMAIL_CHARS))
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
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		cast_vote_spi(contest_id, entry_id, voter_ip, user_id, email_norm,
					  request_id, &res);
		SPI_finish();
	}

	values[0] = BoolGetDatum(res.code == VG_OK);
	values[1] = CStringGetTextDatum(vg_codes[res.code].code);
	values[2] = Int32GetDatum(vg_codes[res.code].http_status);
	values[3] = Int64GetDatum(res.vote_count);
	values[4] = Int64GetDatum(res.vote_id);
	values[5] = (Datum) 0;
	values[6] = BoolGetDatum(res.replayed);
	memset(isnull, false, sizeof(isnull));
	isnull[3] = !res.has_count;
	isnull[4] = !res.has_vote_id;
	isnull[5] = true;			/* retry_at: limits and cooldowns (policies) */

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc),
													  values, isnull)));
}

/* The contest's prefixes and secret version, for the key functions. */
static bool
load_key_settings(int64 contest_id, int32 *ipv4_prefix, int32 *ipv6_prefix,
				  int32 *secret_version)
{
	Datum		arg = Int64GetDatum(contest_id);
	bool		isnull;

	prepare_plans();
	check_spi(SPI_execute_plan(plan_prefixes, &arg, NULL, true, 1), SPI_OK_SELECT);
	if (SPI_processed == 0)
		return false;
	*ipv4_prefix = DatumGetInt32(spi_value(0, 1, &isnull));
	*ipv6_prefix = DatumGetInt32(spi_value(0, 2, &isnull));
	*secret_version = DatumGetInt32(spi_value(0, 3, &isnull));
	return true;
}

static void
no_such_contest(int64 contest_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("contest " INT64_FORMAT " does not exist", contest_id)));
}

/* Copy a key out of SPI memory into the caller's context. */
static Datum
key_result(const uint8 *key)
{
	bytea	   *b = SPI_palloc(VARHDRSZ + VG_HMAC_LEN);

	SET_VARSIZE(b, VARHDRSZ + VG_HMAC_LEN);
	memcpy(VARDATA(b), key, VG_HMAC_LEN);
	return PointerGetDatum(b);
}

PG_FUNCTION_INFO_V1(vg_ip_key_fn);

/* vote_guard.ip_key(contest_id bigint, ip inet) RETURNS bytea */
Datum
vg_ip_key_fn(PG_FUNCTION_ARGS)
{
	int64		contest_id = PG_GETARG_INT64(0);
	inet	   *ip = PG_GETARG_INET_PP(1);
	int32		p4,
				p6,
				version;
	VgIpBytes	ipb;
	uint8		key[VG_HMAC_LEN];
	Datum		result;

	if (!vg_inet_is_host(ip))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("voter address must be a host address, without a netmask")));

	SPI_connect();
	if (!load_key_settings(contest_id, &p4, &p6, &version))
		no_such_contest(contest_id);
	vg_ip_canonical(ip, p4, p6, &ipb);
	vg_ip_key(vg_contest_keys(contest_id, version), &ipb, key);
	result = key_result(key);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

PG_FUNCTION_INFO_V1(vg_email_key_fn);

/* vote_guard.email_key(contest_id bigint, email text) RETURNS bytea */
Datum
vg_email_key_fn(PG_FUNCTION_ARGS)
{
	int64		contest_id = PG_GETARG_INT64(0);
	text	   *email = PG_GETARG_TEXT_PP(1);
	char	   *norm;
	int32		p4,
				p6,
				version;
	uint8		key[VG_HMAC_LEN];
	Datum		result;

	norm = vg_normalize_email_cstr(VARDATA_ANY(email), VARSIZE_ANY_EXHDR(email));
	if (norm == NULL)
		PG_RETURN_NULL();

	SPI_connect();
	if (!load_key_settings(contest_id, &p4, &p6, &version))
		no_such_contest(contest_id);
	vg_email_key(vg_contest_keys(contest_id, version), norm, key);
	result = key_result(key);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
