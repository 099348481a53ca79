/*-------------------------------------------------------------------------
 *
 * vg_lookup.c
 *	  Reads by primary key that do not go through the planner: whether an
 *	  entry exists, and an entry's count.
 *
 * Both run on every vote.  As queries they would be planned from the
 * tables' statistics: counters analyzed while nearly empty, or one hot
 * contest dominating the statistics, made the planner choose a sequential
 * scan, or plan again on every call.  Here they are scans of the primary
 * key, one entry's index tuples, whatever the statistics say.
 * systable_beginscan is PostgreSQL's interface for such a key lookup; it
 * works on any heap relation with a btree index.
 *
 * Under READ COMMITTED, entries found are remembered per backend.  That is
 * safe because an entry is removed or renumbered only under its contest's
 * lock in exclusive mode (entries trigger), which also queues a relcache
 * invalidation of entries; a vote reads the cache only after taking the
 * lock in share mode and taking in the invalidations (vg_load_contest), and
 * the invalidation empties the cache.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "vote_guard.h"

/* A vote_guard table keyed by (contest_id, entry_id, ...). */
typedef struct KeyedTable
{
	const char *relname;
	Oid			relid;			/* InvalidOid: look up again */
	Oid			pkey;
} KeyedTable;

static KeyedTable entries_table = {"entries"};
static KeyedTable counters_table = {"counters"};
static bool callback_registered = false;

/*
 * entries known to exist: (contest_id, entry_id); at most ENTRY_CACHE_MAX
 * (about 0.5 MB), then it starts again empty
 */
typedef struct EntryKey
{
	int64		contest_id;
	int64		entry_id;
} EntryKey;

#define ENTRY_CACHE_MAX		10000

static HTAB *entry_cache = NULL;

static void
entry_cache_reset(void)
{
	if (entry_cache != NULL)
		hash_destroy(entry_cache);
	entry_cache = NULL;
}

static void
keyed_tables_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == entries_table.relid)
	{
		entries_table.relid = InvalidOid;
		entry_cache_reset();
	}
	if (relid == InvalidOid || relid == counters_table.relid)
		counters_table.relid = InvalidOid;
}

/* Open the table (AccessShareLock, kept to the end of the transaction). */
static Relation
keyed_table_open(KeyedTable *t)
{
	Relation	rel;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(keyed_tables_callback, (Datum) 0);
		callback_registered = true;
	}
	if (OidIsValid(t->relid))
		return table_open(t->relid, AccessShareLock);

	rel = table_open(get_relname_relid(t->relname,
									   get_namespace_oid("vote_guard", false)),
					 AccessShareLock);
	list_free(RelationGetIndexList(rel));
	if (!OidIsValid(rel->rd_pkindex))
		elog(ERROR, "vote_guard.%s has no primary key", t->relname);
	t->pkey = rel->rd_pkindex;
	t->relid = RelationGetRelid(rel);
	return rel;
}

/* Scan the rows whose key starts with (contest_id, entry_id). */
static SysScanDesc
entry_scan(KeyedTable *t, Relation rel, int64 contest_id, int64 entry_id,
		   Snapshot snapshot)
{
	ScanKeyData keys[2];

	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(contest_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(entry_id));
	return systable_beginscan(rel, t->pkey, true, snapshot, 2, keys);
}

/*
 * The snapshot a next statement of the transaction would use, with the
 * transaction's own writes up to now; pushed as the active snapshot.
 */
static Snapshot
push_statement_snapshot(void)
{
	CommandCounterIncrement();
	PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();
	return GetActiveSnapshot();
}

/*
 * Is the entry visible to snapshot?  *own: its row was written by this
 * transaction (not committed yet: it may still go with a rollback).
 */
static bool
entry_visible(Relation rel, int64 contest_id, int64 entry_id, Snapshot snapshot,
			  bool *own)
{
	SysScanDesc scan = entry_scan(&entries_table, rel, contest_id, entry_id,
								  snapshot);
	HeapTuple	tup = systable_getnext(scan);
	bool		found = HeapTupleIsValid(tup);

	if (found && own != NULL)
		*own = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup->t_data));
	systable_endscan(scan);
	return found;
}

/*
 * Is entry_id one of the contest's entries?  Under REPEATABLE READ and
 * SERIALIZABLE an entry the snapshot shows but that has been removed since
 * is a serialization failure: a vote for it must not be written.
 */
bool
vg_entry_exists(int64 contest_id, int64 entry_id)
{
	EntryKey	key = {contest_id, entry_id};
	bool		use_cache = !IsolationUsesXactSnapshot();
	Relation	rel;
	bool		found;
	bool		own = false;

	if (use_cache && entry_cache != NULL &&
		hash_search(entry_cache, &key, HASH_FIND, NULL) != NULL)
		return true;

	rel = keyed_table_open(&entries_table);
	found = entry_visible(rel, contest_id, entry_id, push_statement_snapshot(),
						  &own);
	PopActiveSnapshot();
	if (found && use_cache && !own)
	{
		if (entry_cache == NULL ||
			hash_get_num_entries(entry_cache) >= ENTRY_CACHE_MAX)
		{
			HASHCTL		ctl;

			entry_cache_reset();
			ctl.keysize = sizeof(EntryKey);
			ctl.entrysize = sizeof(EntryKey);
			ctl.hcxt = TopMemoryContext;
			entry_cache = hash_create("vote_guard entries", 256, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		}
		hash_search(entry_cache, &key, HASH_ENTER, NULL);
	}
	if (found && IsolationUsesXactSnapshot())
	{
		PushActiveSnapshot(GetLatestSnapshot());
		found = entry_visible(rel, contest_id, entry_id, GetActiveSnapshot(), NULL);
		PopActiveSnapshot();
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to a concurrent removal of entry " INT64_FORMAT,
							entry_id),
					 errhint("Retry the transaction.")));
	}
	table_close(rel, NoLock);
	return found;
}

/*
 * An entry's count: the sum of its counter slots as the transaction sees
 * them now, its own changes included.
 */
int64
vg_entry_count(int64 contest_id, int64 entry_id)
{
	Relation	rel = keyed_table_open(&counters_table);
	SysScanDesc scan;
	HeapTuple	tup;
	int64		sum = 0;

	scan = entry_scan(&counters_table, rel, contest_id, entry_id,
					  push_statement_snapshot());
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		votes = heap_getattr(tup, 4, RelationGetDescr(rel), &isnull);

		if (!isnull)
			sum += DatumGetInt64(votes);
	}
	systable_endscan(scan);
	PopActiveSnapshot();
	table_close(rel, NoLock);
	return sum;
}
