/*-------------------------------------------------------------------------
 *
 * vg_lookup.c
 *	  The work of every vote that does not go through the planner: whether
 *	  an entry exists, an entry's count, adding a vote to a free counter
 *	  slot, and writing the vote's row.
 *
 * As queries the first three would be planned from the tables' statistics:
 * counters analyzed while nearly empty, or one hot contest dominating the
 * statistics, made the planner choose a sequential scan, or plan again on
 * every call.  Here they are scans of the primary key, one entry's index
 * tuples, whatever the statistics say.  systable_beginscan is PostgreSQL's
 * interface for such a key lookup; it works on any heap relation with a
 * btree index.  The vote's row is written with the executor's own
 * functions for INSERT ... ON CONFLICT DO NOTHING, without building a plan
 * for it (vg_vote_insert).
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
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type_d.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "vote_guard.h"
#include "vg_compat.h"

/* A vote_guard table keyed by (contest_id, ...). */
typedef struct KeyedTable KeyedTable;
struct KeyedTable
{
	const char *relname;
	/* may the work of this file write it directly? NULL: it does not */
	bool		(*check) (KeyedTable *t, Relation rel);
	Oid			relid;			/* InvalidOid: look up again */
	Oid			pkey;
	bool		as_created;		/* what check said of it */
	Oid			seqid;			/* votes: the sequence of vote_id */
};

static bool counters_as_created(KeyedTable *t, Relation rel);
static bool votes_as_created(KeyedTable *t, Relation rel);

static KeyedTable entries_table = {"entries", NULL};
static KeyedTable counters_table = {"counters", counters_as_created};
static KeyedTable votes_table = {"votes", votes_as_created};
static KeyedTable *const keyed_tables[] = {&entries_table, &counters_table,
&votes_table};
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
	size_t		i;

	for (i = 0; i < lengthof(keyed_tables); i++)
	{
		KeyedTable *t = keyed_tables[i];

		if (relid != InvalidOid && relid != t->relid)
			continue;
		t->relid = InvalidOid;
		if (t == &entries_table)
			entry_cache_reset();
	}
}

/*
 * Is the table as vote_guard created it: a heap, its primary key its only
 * index, no update triggers but those of a foreign key (which an update that
 * keeps the key does not fire)?  Decided when the table is looked up again,
 * which any change to it causes.
 */
static bool
counters_as_created(KeyedTable *t, Relation rel)
{
	List	   *indexes;
	bool		plain;
	int			i;

	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID)
		return false;
	indexes = RelationGetIndexList(rel);
	plain = list_length(indexes) == 1;
	list_free(indexes);
	for (i = 0; plain && rel->trigdesc != NULL && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &rel->trigdesc->triggers[i];

		if (TRIGGER_FOR_UPDATE(trig->tgtype) &&
			RI_FKey_trigger_type(trig->tgfoid) == RI_TRIGGER_NONE)
			plain = false;
	}
	return plain;
}

/* Open the table (lock kept to the end of the transaction). */
static Relation
keyed_table_open(KeyedTable *t, LOCKMODE lockmode)
{
	Relation	rel;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(keyed_tables_callback, (Datum) 0);
		callback_registered = true;
	}
	if (OidIsValid(t->relid))
	{
		rel = table_open(t->relid, lockmode);
		/* still valid after the invalidations that came with the lock? */
		if (OidIsValid(t->relid))
			return rel;
	}
	else
		rel = table_open(get_relname_relid(t->relname,
										   get_namespace_oid("vote_guard", false)),
						 lockmode);
	list_free(RelationGetIndexList(rel));
	if (!OidIsValid(rel->rd_pkindex))
		elog(ERROR, "vote_guard.%s has no primary key", t->relname);
	t->pkey = rel->rd_pkindex;
	t->as_created = t->check != NULL && t->check(t, rel);
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

	rel = keyed_table_open(&entries_table, AccessShareLock);
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
	Relation	rel = keyed_table_open(&counters_table, AccessShareLock);
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

/*
 * The primary key entry of a counter row version that did not go on the
 * same heap-only chain (the page had no room).
 */
static void
counter_index_insert(Relation rel, HeapTuple tup)
{
	Relation	index = index_open(counters_table.pkey, RowExclusiveLock);
	IndexInfo  *info = BuildIndexInfo(index);
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];
	int			i;

	for (i = 0; i < info->ii_NumIndexKeyAttrs; i++)
		values[i] = heap_getattr(tup, info->ii_IndexAttrNumbers[i],
								 RelationGetDescr(rel), &isnull[i]);
	index_insert(index, values, isnull, &tup->t_self, rel, UNIQUE_CHECK_YES,
				 true, info);
	index_close(index, NoLock);
}

/* The counter row locked into slot, with delta votes more. */
static void
counter_add(Relation rel, TupleTableSlot *slot, int64 delta)
{
	bool		should_free;
	HeapTuple	old = ExecFetchSlotHeapTuple(slot, false, &should_free);
	TupleDesc	desc = RelationGetDescr(rel);
	int			cols[1] = {4};	/* votes */
	Datum		values[1];
	bool		nulls[1] = {false};
	bool		isnull;
	HeapTuple	newtup;

	values[0] = heap_getattr(old, cols[0], desc, &isnull);
	if (isnull)
		elog(ERROR, "vote_guard.counters has a null count");
	values[0] = Int64GetDatum(DatumGetInt64(values[0]) + delta);
	newtup = heap_modify_tuple_by_cols(old, desc, 1, cols, values, nulls);
	if (vg_simple_heap_update(rel, &slot->tts_tid, newtup))
		counter_index_insert(rel, newtup);
	heap_freetuple(newtup);
	if (should_free)
		heap_freetuple(old);
}

/*
 * Add delta votes to a counter row of the entry that no other transaction
 * holds, as UPDATE ... SKIP LOCKED would.  Returns true if it did, with
 * *count the entry's count: its rows as a next statement of the transaction
 * sees them, and delta.  Otherwise every row of the entry is held by
 * another transaction (or, under REPEATABLE READ and SERIALIZABLE, changed
 * since the snapshot), or it has none yet, and *new_slot is the slot a new
 * row should take: one not in use, or, when all VG_COUNTER_SLOTS are, this
 * backend's own (whose holder the caller then waits for).
 *
 * So an entry voted for by one transaction at a time has one row, which is
 * all a count then reads; a hot entry grows as many rows as it has voters at
 * the same time, up to VG_COUNTER_SLOTS, and no vote waits for another while
 * a row is free.
 *
 * The row is updated in place with simple_heap_update, as the executor
 * would: the key does not change (no foreign key check is due) and the
 * table has no triggers of its own.  If its table access method, indexes or
 * triggers are not what vote_guard created, this declines (false, with
 * this backend's slot) and the caller writes through SQL.
 */
bool
vg_counter_add_free(int64 contest_id, int64 entry_id, int64 delta,
					int32 *new_slot, int64 *count)
{
	Relation	rel;
	Snapshot	snapshot;
	SysScanDesc scan;
	HeapTuple	tup;
	TupleTableSlot *locked;
	uint8		lock_flags = 0;
	uint32		used = 0;
	bool		added = false;
	int64		sum = delta;
	int			i;

	StaticAssertStmt(VG_COUNTER_SLOTS <= 32, "counter slots must fit in a uint32");
	*new_slot = vg_counter_slot();
	rel = keyed_table_open(&counters_table, RowExclusiveLock);
	if (!counters_table.as_created)
	{
		table_close(rel, NoLock);
		return false;
	}

	/*
	 * Versions this scan makes have the snapshot's command id, so the scan
	 * does not see them: every row counts once, as it was before the vote.
	 */
	snapshot = push_statement_snapshot();
	if (!IsolationUsesXactSnapshot())
		lock_flags = TUPLE_LOCK_FLAG_FIND_LAST_VERSION;

	locked = table_slot_create(rel, NULL);
	scan = entry_scan(&counters_table, rel, contest_id, entry_id, snapshot);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		int32		slot = DatumGetInt32(heap_getattr(tup, 3, desc, &isnull));
		Datum		votes = heap_getattr(tup, 4, desc, &isnull);
		TM_FailureData tmfd;
		TM_Result	result;

		if (!isnull)
			sum += DatumGetInt64(votes);
		if (added)
			continue;
		if (slot >= 0 && slot < VG_COUNTER_SLOTS)
			used |= (uint32) 1 << slot;
		result = table_tuple_lock(rel, &tup->t_self, snapshot, locked,
								  GetCurrentCommandId(true),
								  LockTupleNoKeyExclusive, LockWaitSkip,
								  lock_flags, &tmfd);
		switch (result)
		{
			case TM_Ok:
				counter_add(rel, locked, delta);
				added = true;
				break;
			case TM_WouldBlock:	/* another transaction holds it */
			case TM_Updated:	/* changed since the snapshot */
			case TM_Deleted:	/* the entry is being removed */
				break;
			default:
				elog(ERROR, "unexpected table_tuple_lock status: %u", result);
		}
	}
	systable_endscan(scan);
	ExecDropSingleTupleTableSlot(locked);
	PopActiveSnapshot();
	table_close(rel, NoLock);
	*count = sum;
	if (added)
		return true;

	/*
	 * A new row takes the first slot not in use from this backend's own on:
	 * two voters making rows at the same time (neither sees the other's yet)
	 * take different slots unless their backends share one.
	 */
	for (i = 0; i < VG_COUNTER_SLOTS; i++)
	{
		int32		slot = (vg_counter_slot() + i) % VG_COUNTER_SLOTS;

		if ((used & ((uint32) 1 << slot)) == 0)
		{
			*new_slot = slot;
			break;
		}
	}
	return false;
}

/*
 * The columns of vote_guard.votes, in order; vg_vote_insert takes its values
 * in this order.
 */
static const Oid votes_column_types[VG_VOTES_NATTS] = {
	INT8OID,					/* contest_id */
	INT8OID,					/* vote_id: identity */
	INT8OID,					/* entry_id */
	BYTEAOID,					/* ip_key */
	TEXTOID,					/* user_id */
	BYTEAOID,					/* email_key */
	TEXTOID,					/* request_id */
	TIMESTAMPTZOID,				/* created_at: statement_timestamp() */
	INT4OID,					/* window_no */
	INT2OID,					/* ip_slot */
	INT2OID,					/* user_slot */
	INT2OID,					/* email_slot */
};

/*
 * May vg_vote_insert write votes without the executor's plan: a plain heap
 * table with vote_guard's columns, without row security or rules, whose
 * vote_id takes the next value of its identity sequence and created_at the
 * statement's time, and whose only insert triggers are vote_guard's own?
 * Indexes and constraints may be anything: vg_vote_insert checks and
 * maintains them as the executor does.
 */
static bool
votes_as_created(KeyedTable *t, Relation rel)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			schema = RelationGetNamespace(rel);
	Node	   *def;
	int			i;

	t->seqid = InvalidOid;
	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relrowsecurity || rel->rd_rel->relforcerowsecurity ||
		rel->rd_rules != NULL || desc->natts != VG_VOTES_NATTS)
		return false;
	for (i = 0; i < VG_VOTES_NATTS; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != votes_column_types[i] ||
			att->attgenerated != '\0')
			return false;
	}
	def = build_column_default(rel, VG_VOTES_VOTE_ID);
	if (def == NULL || !IsA(def, NextValueExpr))
		return false;
	t->seqid = ((NextValueExpr *) def)->seqid;
	def = build_column_default(rel, VG_VOTES_CREATED_AT);
	if (def == NULL || !IsA(def, FuncExpr) ||
		((FuncExpr *) def)->funcid != F_STATEMENT_TIMESTAMP)
		return false;
	for (i = 0; rel->trigdesc != NULL && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &rel->trigdesc->triggers[i];

		if (TRIGGER_FOR_INSERT(trig->tgtype) &&
			((strcmp(trig->tgname, "votes_counters") != 0 &&
			  strcmp(trig->tgname, "votes_policy") != 0) ||
			 get_func_namespace(trig->tgfoid) != schema))
			return false;
	}
	return true;
}

/*
 * A conflicting vote found under REPEATABLE READ or SERIALIZABLE must be
 * one the transaction's snapshot sees, as for INSERT ... ON CONFLICT DO
 * NOTHING: else the vote would be refused for a row the transaction cannot
 * see.
 */
static void
check_conflict_visible(Relation rel, ItemPointer tid)
{
	TupleTableSlot *slot = table_slot_create(rel, NULL);

	if (!table_tuple_fetch_row_version(rel, tid, SnapshotAny, slot))
		elog(ERROR, "failed to fetch conflicting tuple for ON CONFLICT");
	if (!table_tuple_satisfies_snapshot(rel, slot, GetTransactionSnapshot()))
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to concurrent update")));
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * Write a vote's row as INSERT INTO vote_guard.votes ... ON CONFLICT DO
 * NOTHING RETURNING vote_id would, from values in the order of
 * votes_column_types (vote_id and created_at are filled in here), with the
 * executor's own functions but without a plan, its expressions and the
 * triggers (vote_guard's pass such a write through unchanged).  Every
 * unique index is an arbiter, as in that statement: a conflict with a vote
 * in flight waits for its transaction, and a conflict found while this row
 * was going in (a concurrent voter) starts over.  Constraints are checked.
 *
 * Returns false if votes is not as vote_guard created it (see
 * votes_as_created): the caller runs the statement instead.  Otherwise
 * *inserted says whether the row went in (false: a unique index said no),
 * and *vote_id is its id.
 */
bool
vg_vote_insert(Datum *values, bool *isnull, bool *inserted, int64 *vote_id)
{
	Relation	rel = keyed_table_open(&votes_table, RowExclusiveLock);
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	MemoryContext oldcxt;

	if (!votes_table.as_created)
	{
		table_close(rel, NoLock);
		return false;
	}
	/* what the executor checks before an INSERT (ExecCheckXactReadOnly) */
	PreventCommandIfReadOnly("INSERT");
	PreventCommandIfParallelMode("INSERT");

	/* what the executor allocates goes with its state, as in a query */
	estate = CreateExecutorState();
	oldcxt = MemoryContextSwitchTo(estate->es_query_cxt);
	estate->es_output_cid = GetCurrentCommandId(true);
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 0, NULL, 0);
	ExecOpenIndices(rri, true);

	*vote_id = nextval_internal(votes_table.seqid, false);
	values[VG_VOTES_VOTE_ID - 1] = Int64GetDatum(*vote_id);
	isnull[VG_VOTES_VOTE_ID - 1] = false;
	values[VG_VOTES_CREATED_AT - 1] =
		TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
	isnull[VG_VOTES_CREATED_AT - 1] = false;

	slot = table_slot_create(rel, NULL);	/* empty, as ExecStoreVirtualTuple wants */
	memcpy(slot->tts_values, values, VG_VOTES_NATTS * sizeof(Datum));
	memcpy(slot->tts_isnull, isnull, VG_VOTES_NATTS * sizeof(bool));
	ExecStoreVirtualTuple(slot);
	if (rel->rd_att->constr != NULL)
		ExecConstraints(rri, slot, estate);

	for (;;)
	{
		ItemPointerData conflict;
		uint32		token;
		bool		spec_conflict = false;

		if (!vg_check_index_constraints(rri, slot, estate, &conflict))
		{
			if (IsolationUsesXactSnapshot())
				check_conflict_visible(rel, &conflict);
			*inserted = false;
			break;
		}

		/*
		 * Others that meet the row in an index wait for this lock, not for
		 * the transaction: it is released as soon as the row is decided.
		 */
		token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
		table_tuple_insert_speculative(rel, slot, estate->es_output_cid, 0,
									   NULL, token);

		/*
		 * The indexes it returns would need a deferred recheck: a deferrable
		 * constraint, whose trigger makes votes_as_created say no.
		 */
		list_free(vg_insert_index_tuples(rri, slot, estate, &spec_conflict));
		table_tuple_complete_speculative(rel, slot, token, !spec_conflict);
		SpeculativeInsertionLockRelease(GetCurrentTransactionId());
		if (!spec_conflict)
		{
			*inserted = true;
			break;
		}
	}

	ExecDropSingleTupleTableSlot(slot);
	ExecCloseIndices(rri);
	MemoryContextSwitchTo(oldcxt);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	if (*inserted)
		CommandCounterIncrement();
	return true;
}
