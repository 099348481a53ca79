/*-------------------------------------------------------------------------
 *
 * vg_utils.c
 *	  The bottom layer of vote_guard: kept SPI plans, per-backend caches,
 *	  advisory locks of vote_guard's own classes, text limits.  Nothing here
 *	  knows vote_guard's tables or rules.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace_d.h"
#include "common/int128.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "vg_utils.h"

/*
 * Prepare a statement and keep its plan for the backend's life.  PostgreSQL
 * replans it when the tables change, and re-parses it if the extension is
 * re-created.
 *
 * Every statement of vote_guard finds rows by one contest's keys, served by
 * an index whatever the values are.  The plans are generic
 * (CURSOR_OPT_GENERIC_PLAN): a custom plan for each call's values would cost
 * a planner run per call and gain nothing, and with the default choice a
 * skewed distribution in the statistics (one contest with most of the votes)
 * made PostgreSQL plan again on every call.  (A session that sets
 * plan_cache_mode = force_custom_plan still gets custom plans.)
 *
 * Except with Citus in the database (its catalog pg_dist_partition exists
 * when the backend prepares the statement): there the plans are custom.  On
 * a distributed table a kept generic plan is Citus's distributed plan, and
 * Citus's executor deparses its shard query into the plan's own memory on
 * every execution on the shard's node, memory freed only with the plan: a
 * worker backend grew by about 3 MB a second under a storm of duplicate
 * votes (the voter's-votes statement), until the kernel killed it.  A
 * custom plan is made for the call and freed after it; Citus planned and
 * deparsed the shard query on every call anyway.
 */
SPIPlanPtr
vg_prepare_kept(const char *query, int nargs, Oid *argtypes)
{
	int			options = CURSOR_OPT_GENERIC_PLAN;
	SPIPlanPtr	plan;

	if (OidIsValid(get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE)))
		options = CURSOR_OPT_CUSTOM_PLAN;
	plan = SPI_prepare_cursor(query, nargs, argtypes, options);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed for \"%s\": %s",
			 query, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	return plan;
}

/* Run a kept plan; any result but the expected one is an internal error. */
void
vg_execute(SPIPlanPtr plan, Datum *args, const char *nulls, int expected,
		   long count)
{
	int			ret = SPI_execute_plan(plan, args, nulls, false, count);

	if (ret != expected)
		elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(ret));
}

/* The same with a given snapshot instead of a new one. */
void
vg_execute_snapshot(SPIPlanPtr plan, Datum *args, const char *nulls,
					Snapshot snapshot, bool read_only, int expected, long count)
{
	int			ret = SPI_execute_snapshot(plan, args, nulls, snapshot,
										   InvalidSnapshot, read_only,
										   !read_only, count);

	if (ret != expected)
		elog(ERROR, "SPI_execute_snapshot failed: %s",
			 SPI_result_code_string(ret));
}

/* A column of a row of the last SPI result. */
Datum
vg_spi_value(uint64 row, int col, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc,
						 col, isnull);
}

void
vg_spi_connect(void)
{
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

/* A per-backend hash table with binary keys, in TopMemoryContext. */
HTAB *
vg_backend_cache_create(const char *name, Size keysize, Size entrysize,
						long nelem)
{
	HASHCTL		ctl;

	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = TopMemoryContext;
	return hash_create(name, nelem, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Enter key into a per-backend cache of at most max entries, made on first
 * use; a full cache starts again empty.  Returns the entry.
 */
void *
vg_backend_cache_enter(HTAB **cache, const char *name, Size keysize,
					   Size entrysize, long max, const void *key)
{
	if (*cache != NULL && hash_get_num_entries(*cache) >= max)
		vg_backend_cache_drop(cache);
	if (*cache == NULL)
		*cache = vg_backend_cache_create(name, keysize, entrysize, 64);
	return hash_search(*cache, key, HASH_ENTER, NULL);
}

/* Forget a per-backend cache (NULL: none). */
void
vg_backend_cache_drop(HTAB **cache)
{
	if (*cache != NULL)
		hash_destroy(*cache);
	*cache = NULL;
}

/* The OID of a relation of schema vote_guard, or InvalidOid. */
Oid
vg_table_relid(const char *relname)
{
	Oid			schema = get_namespace_oid("vote_guard", true);

	return OidIsValid(schema) ? get_relname_relid(relname, schema) : InvalidOid;
}

/* Is a text within 1..max characters? */
bool
vg_text_length_ok(text *t, int max_chars)
{
	int			nbytes = VARSIZE_ANY_EXHDR(t);

	if (nbytes == 0)
		return false;
	if (nbytes <= max_chars)
		return true;
	return pg_mbstrlen_with_len(VARDATA_ANY(t), nbytes) <= max_chars;
}

/*
 * Take an advisory lock of one of vote_guard's classes (the fourth field of
 * the tag, which the core pg_advisory_* functions never use) until the end
 * of the transaction.
 */
void
vg_advisory_xact_lock(uint64 key, uint16 lock_class, LOCKMODE mode)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32),
						 (uint32) key, lock_class);
	(void) LockAcquire(&tag, mode, false, false);
}

/*
 * An interval's length in microseconds, a day 24 hours and a month 30 days,
 * computed as interval comparison (interval_cmp_value) computes it, in 128
 * bits: the fields may be far apart and still add up to little.  False when
 * it is not positive or does not fit in 64 bits.
 */
bool
vg_interval_usecs(const Interval *iv, int64 *usecs)
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
