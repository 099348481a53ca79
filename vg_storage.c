/*-------------------------------------------------------------------------
 *
 * vg_storage.c
 *	  The storage layer: every access to vote_guard's tables, in the order a
 *	  vote meets them.
 *
 *	  tables		which relation holds what, and whether the fast paths
 *					below may write it directly (as vote_guard created it)
 *	  contests		a contest's settings, cached per backend
 *	  secrets		the contest's derived keys, cached per backend
 *	  entries		whether an entry exists, cached per backend
 *	  votes			writing a vote's row; a voter's earlier votes; a user's
 *					vote for change_vote and retract_vote
 *	  counters		an entry's count in slot rows: adding, summing, and
 *					following the owner's own writes to votes
 *	  places		(1.1) the places left of entries and contests with a
 *					capacity, in escrow over slot rows
 *
 * The reads and writes of every vote do not go through the planner: as
 * queries they would be planned from the tables' statistics, and counters
 * analyzed while nearly empty, or one hot contest dominating the
 * statistics, made the planner choose a sequential scan, or plan again on
 * every call.  Here they are scans of a primary key whatever the statistics
 * say (systable_beginscan, PostgreSQL's interface for such a key lookup),
 * and the vote's row is written with the executor's own functions for
 * INSERT ... ON CONFLICT DO NOTHING, without a plan (vg_vote_insert).  The
 * rarer statements (a voter's votes under a policy, change and retract,
 * the owner's writes) are kept plans with generic plans (vg_utils.c).
 *
 * On Citus (vote_guard.distribute()) entries, counters and votes are
 * distributed tables whose rows live in shards, one relation per shard
 * (votes_102008 ...): the fast paths open the shard that holds the
 * contest's rows on this node (see "Citus shards" below); the statements
 * name the tables and Citus routes them.
 *
 * Per-backend caches (READ COMMITTED only) are emptied by relcache
 * invalidations of their table, which one callback below routes: a change
 * to a contest row or to an entry's key, and any insert or delete of
 * secrets, sends one (vg_cache_invalidate, from the triggers), and holds the
 * contest's lock in exclusive mode until after commit; a vote reads a
 * cache only once it holds that lock in share mode and has taken in the
 * invalidations.
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
#include "catalog/pg_am_d.h"
#include "catalog/pg_namespace_d.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type_d.h"
#include "access/skey.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/primnodes.h"
#include "replication/logicalworker.h"
#include "rewrite/rewriteHandler.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "vg_storage.h"
#include "vg_utils.h"


/* ----------------------------------------------------------------
 *		tables
 * ----------------------------------------------------------------
 */

/* A vote_guard table. */
typedef struct VgTable VgTable;
struct VgTable
{
	const char *relname;
	/* may the fast paths write it directly? NULL: they do not */
	bool		(*check) (VgTable *t, Relation rel);
	void		(*flush) (void);	/* empties the caches of its rows */
	Oid			relid;			/* InvalidOid: look up again */
	Oid			pkey;			/* set by table_open_checked */
	bool		as_created;		/* what check said of it */
	Oid			seqid;			/* votes: the sequence of vote_id */
	/* Citus: the rows are in shards (see "Citus shards") */
	bool		distributed;	/* set when relid is looked up */
	bool		table_as_created;	/* distributed: check on the table */
	Oid			table_seqid;	/* distributed: votes' sequence, the table's */
	HTAB	   *shards;			/* contest_id -> VgShard, or NULL */
	uint32		generation;		/* counts the callback's flushes */
	/*
	 * 1.1 shape: the column of capacities (contests, entries) or places
	 * (counters) when the table has it, 0 on a database still at the 1.0
	 * schema, -1 not looked up yet (table_shape).
	 */
	const char *capacity_column;
	AttrNumber	capacity_att;
};

static bool counters_as_created(VgTable *t, Relation rel);
static void contest_places_follow(int64 contest_id, int64 delta);
static void contest_row_lock(int64 contest_id);
struct PlacePool;
static void pool_insert_rows(struct PlacePool *p, int64 remaining, int64 votes,
							 bool has_places);
static void table_index_insert(VgTable *t, Relation rel, HeapTuple tup);
static int32 counter_slot(void);
static bool plain_counter_table(Relation rel, const Oid *column_types, int natts);
static bool votes_as_created(VgTable *t, Relation rel);
static bool votes_shape_ok(Relation rel, bool shard);
static bool citus_distributed(Oid relid);
static Relation table_open_local(VgTable *t, LOCKMODE lockmode);
static Relation shard_open_checked(VgTable *t, int64 contest_id,
								   LOCKMODE lockmode);
static void contest_cache_flush(void);
static void entry_cache_flush(void);

static bool contest_counters_as_created(VgTable *t, Relation rel);

static VgTable contests_table = {"contests", NULL, contest_cache_flush,
.capacity_column = "capacity", .capacity_att = -1};
static VgTable secrets_table = {"secrets", NULL, vg_contest_keys_flush};
static VgTable entries_table = {"entries", NULL, entry_cache_flush,
.capacity_column = "capacity", .capacity_att = -1};
static VgTable counters_table = {"counters", counters_as_created, NULL,
.capacity_column = "allot", .capacity_att = -1};
static VgTable contest_counters_table = {"contest_counters",
contest_counters_as_created, NULL};
static VgTable votes_table = {"votes", votes_as_created, NULL};
static VgTable *const all_tables[] = {&contests_table, &secrets_table,
&entries_table, &counters_table, &contest_counters_table, &votes_table};
static bool callback_registered = false;

/*
 * A relcache invalidation of one of the tables (InvalidOid: of all) makes
 * it be looked up again and empties the caches of its rows.
 */
static void
tables_callback(Datum arg, Oid relid)
{
	size_t		i;

	for (i = 0; i < lengthof(all_tables); i++)
	{
		VgTable    *t = all_tables[i];

		if (relid != InvalidOid && relid != t->relid)
			continue;
		t->relid = InvalidOid;
		t->capacity_att = -1;
		if (t->flush != NULL)
			t->flush();
		vg_backend_cache_drop(&t->shards);
		t->generation++;
	}
}

/* Hear the tables' relcache invalidations from now on. */
static void
tables_listen(void)
{
	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(tables_callback, (Datum) 0);
		callback_registered = true;
	}
}

/*
 * Take in the invalidations that have come (changes committed before this
 * call's locks were granted), and make sure the table's are heard from now
 * on: a cache of its rows may be filled after this.
 */
static void
table_watch(VgTable *t)
{
	tables_listen();
	AcceptInvalidationMessages();
	if (!OidIsValid(t->relid))
		t->relid = vg_table_relid(t->relname);
}

/*
 * The table's 1.1 column of capacities or places, or 0 when it has none (a
 * database still at the 1.0 schema, before ALTER EXTENSION UPDATE): looked
 * up once, and again after any change to the table.
 */
static AttrNumber
table_shape(VgTable *t)
{
	if (t->capacity_att < 0)
	{
		/* (the relid is not kept: table_open_local checks what it opens) */
		Oid			relid;

		tables_listen();
		relid = OidIsValid(t->relid) ? t->relid : vg_table_relid(t->relname);
		t->capacity_att = OidIsValid(relid) && t->capacity_column != NULL ?
			Max(get_attnum(relid, t->capacity_column), 0) : 0;
	}
	return t->capacity_att;
}

/*
 * The vote_guard table of which rel is a Citus shard (contests_102040 is
 * one of vote_guard.contests: the table's name, '_', the shard id, in the
 * table's schema), or InvalidOid.
 */
static Oid
shard_of_table(Relation rel)
{
	const char *name = RelationGetRelationName(rel);
	size_t		i;

	for (i = 0; i < lengthof(all_tables); i++)
	{
		size_t		len = strlen(all_tables[i]->relname);
		Oid			relid;

		if (strncmp(name, all_tables[i]->relname, len) != 0 || name[len] != '_' ||
			strspn(name + len + 1, "0123456789") != strlen(name + len + 1) ||
			name[len + 1] == '\0')
			continue;
		relid = vg_table_relid(all_tables[i]->relname);
		if (OidIsValid(relid) && relid != RelationGetRelid(rel) &&
			RelationGetNamespace(rel) == get_rel_namespace(relid))
			return relid;
	}
	return InvalidOid;
}

/*
 * Every backend forgets what it cached of rel's rows when this commits.  A
 * trigger that fires on a Citus shard of one of the tables (contests_102040
 * ...) invalidates the table too: the caches listen to the table.
 */
void
vg_cache_invalidate(Relation rel)
{
	Oid			table = shard_of_table(rel);

	CacheInvalidateRelcache(rel);
	if (OidIsValid(table))
		CacheInvalidateRelcacheByRelid(table);
}

/*
 * Is this Citus moving (or splitting) a shard of rel by logical
 * replication: a logical replication worker applying changes to a shard of
 * a vote_guard table?  Those rows were decided and counted on the source
 * shard, and its counters come with them; the triggers must neither decide
 * nor count them again (a decision would also run distributed statements
 * as the move's subscription role, which exists on this node only: the
 * apply failed and retried until the move's final catch-up, which blocks
 * the contest's writes, never ended).  A logical-replication subscriber of
 * the tables themselves is not this: there the triggers count the votes
 * replicated to it.
 */
bool
vg_citus_shard_apply(Relation rel)
{
	return IsLogicalWorker() && OidIsValid(shard_of_table(rel));
}

/*
 * Open the relation that holds contest_id's rows of a table (lock kept to
 * the end of the transaction): the table itself, or on Citus its shard on
 * this node.  When the table was looked up again, decide what its check
 * says of it: any change to the table causes that.
 */
static Relation
table_open_checked(VgTable *t, int64 contest_id, LOCKMODE lockmode)
{
	Relation	rel = table_open_local(t, lockmode);

	if (likely(!t->distributed))
		return rel;
	table_close(rel, NoLock);
	return shard_open_checked(t, contest_id, lockmode);
}

/* table_open_checked for the table itself. */
static Relation
table_open_local(VgTable *t, LOCKMODE lockmode)
{
	Relation	rel;

	tables_listen();
	if (OidIsValid(t->relid))
	{
		rel = table_open(t->relid, lockmode);
		/* still valid after the invalidations that came with the lock? */
		if (OidIsValid(t->relid))
			return rel;
	}
	else
	{
		Oid			relid = vg_table_relid(t->relname);

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("relation \"vote_guard.%s\" does not exist",
							t->relname)));
		rel = table_open(relid, lockmode);
	}
	list_free(RelationGetIndexList(rel));
	if (!OidIsValid(rel->rd_pkindex))
		elog(ERROR, "vote_guard.%s has no primary key", t->relname);
	t->pkey = rel->rd_pkindex;
	t->as_created = t->check != NULL && t->check(t, rel);
	t->distributed = citus_distributed(RelationGetRelid(rel));
	t->table_as_created = t->as_created;
	t->table_seqid = t->seqid;
	t->relid = RelationGetRelid(rel);
	return rel;
}

/* ----------------------------------------------------------------
 *		Citus shards
 * ----------------------------------------------------------------
 */

/*
 * Is relid a Citus distributed table: a row of pg_dist_partition?  Read
 * from the catalog itself, so that vote_guard builds and loads without
 * Citus; the catalog's first column, logicalrelid, is the table.  Asked
 * only when the table is looked up again.
 */
static bool
citus_distributed(Oid relid)
{
	Oid			catalog = get_relname_relid("pg_dist_partition",
											PG_CATALOG_NAMESPACE);
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	bool		found;

	if (!OidIsValid(catalog))
		return false;
	rel = table_open(catalog, AccessShareLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* Where a contest's rows of a distributed table are, per backend. */
typedef struct VgShard
{
	int64		contest_id;		/* hash key */
	uint64		lock_key;		/* Citus's metadata lock of the shard group */
	Oid			relid;			/* the shard on this node, or InvalidOid */
	bool		checked;		/* the fields below are set */
	Oid			pkey;
	bool		as_created;
	Oid			seqid;
} VgShard;

#define SHARD_CACHE_MAX		10000

/*
 * Citus's lock on the placement metadata of a hash-distributed shard: an
 * advisory lock on (shard index, colocation id) of class 8
 * (ADV_LOCKTAG_CLASS_CITUS_COLOCATED_SHARDS_METADATA), one for the shards
 * of a contest in all four tables.  A shard move takes it in ExclusiveLock
 * on every node with metadata before it copies (block_writes) or before
 * the final catch-up (logical replication), and until it has switched the
 * placements (BlockWritesToShardList); Citus's own writers take it in
 * ShareLock.
 */
#define CITUS_COLOCATED_SHARDS_METADATA_LOCK_CLASS	8

/*
 * The shard of distributed table relid that holds contest_id's rows (the
 * key of its metadata lock in *lock_key), if this node has a placement of
 * it; else InvalidOid.
 * Citus's SQL API and catalogs: the shard for the value, its placement in
 * this node's group, the shard's relation (table name and shard id).  SPI
 * need not be connected.
 */
static Oid
citus_shard_relid(Oid relid, int64 contest_id, uint64 *lock_key)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[2] = {ObjectIdGetDatum(relid), Int64GetDatum(contest_id)};
	Oid			shard = InvalidOid;
	bool		isnull;
	Datum		d;

	vg_spi_connect();
	if (plan == NULL)
	{
		Oid			argtypes[2] = {REGCLASSOID, INT8OID};

		plan = vg_prepare_kept(
			"SELECT pg_catalog.to_regclass(pg_catalog.shard_name($1, s.shardid)),"
			"       ((SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_shard o"
			"          WHERE o.logicalrelid OPERATOR(pg_catalog.=) $1"
			"            AND o.shardminvalue::pg_catalog.int4 OPERATOR(pg_catalog.<)"
			"                s.shardminvalue::pg_catalog.int4)"
			"        OPERATOR(pg_catalog.<<) 32)"
			"       OPERATOR(pg_catalog.|)"
			"       (SELECT d.colocationid FROM pg_catalog.pg_dist_partition d"
			"         WHERE d.logicalrelid OPERATOR(pg_catalog.=) $1)"
			"  FROM pg_catalog.pg_dist_shard s, pg_catalog.pg_dist_placement p"
			" WHERE s.shardid OPERATOR(pg_catalog.=)"
			"       pg_catalog.get_shard_id_for_distribution_column($1, $2)"
			"   AND p.shardid OPERATOR(pg_catalog.=) s.shardid"
			"   AND p.groupid OPERATOR(pg_catalog.=)"
			"       (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)",
			2, argtypes);
	}
	vg_execute(plan, args, NULL, SPI_OK_SELECT, 1);
	if (SPI_processed > 0)
	{
		d = vg_spi_value(0, 1, &isnull);
		if (!isnull)
			shard = DatumGetObjectId(d);
		*lock_key = (uint64) DatumGetInt64(vg_spi_value(0, 2, &isnull));
	}
	SPI_finish();
	return shard;
}

/*
 * table_open_checked for a distributed table: the contest's shard on this
 * node, from the backend's cache or looked up.  Any change to the table's
 * Citus metadata (a shard moved, split or dropped, a placement added) sends
 * a relcache invalidation of the table (Citus's metadata triggers and
 * functions), which empties the cache; one that comes with a lock taken
 * here makes it look again.  A contest whose shard is not on this node is
 * an error: its votes are written where its shard is.
 *
 * A write first takes Citus's metadata lock of the shard in ShareLock, as Citus's
 * own writers do (a delegated function call does not: Citus plans it as a
 * read): a move of the shard waits for this transaction, and a write that
 * waited for a move finds the placement gone (the invalidation comes with
 * the shard's lock) instead of writing into the relation the move leaves
 * behind for deferred cleanup.
 */
static Relation
shard_open_checked(VgTable *t, int64 contest_id, LOCKMODE lockmode)
{
	int			attempt;

	for (attempt = 0;; attempt++)
	{
		VgShard		shard;
		VgShard    *cached;
		Relation	rel;
		uint32		generation;

		if (attempt > 0)
		{
			/* the table itself again: looked up again, locked */
			rel = table_open_local(t, lockmode);
			table_close(rel, NoLock);
			if (!t->distributed)
				return table_open_local(t, lockmode);
		}
		generation = t->generation;
		if (t->shards != NULL &&
			(cached = hash_search(t->shards, &contest_id, HASH_FIND, NULL)) != NULL)
			shard = *cached;
		else
		{
			memset(&shard, 0, sizeof(shard));
			shard.contest_id = contest_id;
			shard.relid = citus_shard_relid(t->relid, contest_id, &shard.lock_key);
		}
		if (!OidIsValid(shard.relid))
		{
			if (generation != t->generation && attempt < 3)
				continue;
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("contest " INT64_FORMAT " of vote_guard.%s is not on this node",
							contest_id, t->relname),
					 errdetail("vote_guard.%s is distributed by Citus and this node has no placement of the contest's shard.",
							   t->relname),
					 errhint("Call the vote_guard function alone in a statement (SELECT * FROM vote_guard.cast_vote(...)) so that Citus runs it on the contest's node.")));
		}
		if (lockmode != AccessShareLock)
		{
			vg_advisory_xact_lock(shard.lock_key,
								  CITUS_COLOCATED_SHARDS_METADATA_LOCK_CLASS,
								  ShareLock);
			/* a move committed while this waited: hear it now */
			AcceptInvalidationMessages();
		}
		rel = try_table_open(shard.relid, lockmode);
		if (rel == NULL || generation != t->generation)
		{
			/* dropped, or the metadata changed while the lock was awaited */
			if (rel != NULL)
				table_close(rel, lockmode);
			if (attempt < 3)
			{
				if (t->shards != NULL)
					hash_search(t->shards, &contest_id, HASH_REMOVE, NULL);
				continue;
			}
			elog(ERROR, "vote_guard.%s: the shard of contest " INT64_FORMAT " keeps moving",
				 t->relname, contest_id);
		}
		if (!shard.checked)
		{
			list_free(RelationGetIndexList(rel));
			if (!OidIsValid(rel->rd_pkindex))
				elog(ERROR, "%s has no primary key", RelationGetRelationName(rel));
			shard.pkey = rel->rd_pkindex;
			if (t == &votes_table)
			{
				/* the vote id comes from the table's sequence */
				shard.as_created = t->table_as_created && votes_shape_ok(rel, true);
				shard.seqid = t->table_seqid;
			}
			else
				shard.as_created = t->check != NULL && t->check(t, rel);
			shard.checked = true;
		}
		cached = vg_backend_cache_enter(&t->shards, "vote_guard shards",
										sizeof(int64), sizeof(VgShard),
										SHARD_CACHE_MAX, &contest_id);
		*cached = shard;
		t->pkey = shard.pkey;
		t->as_created = shard.as_created;
		t->seqid = shard.seqid;
		return rel;
	}
}

/* Scan the rows whose key starts with (contest_id, entry_id). */
static SysScanDesc
entry_scan(VgTable *t, Relation rel, int64 contest_id, int64 entry_id,
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

int			vg_trusted_write = 0;

/*
 * Run one of cast_vote's or change_vote's own writes, telling the triggers
 * what the statement has already taken care of.  With snapshot valid, the
 * write runs with a copy of it instead of a new snapshot.
 */
static void
execute_trusted(SPIPlanPtr plan, Datum *args, const char *nulls,
				int expected, int trusted, Snapshot snapshot)
{
	vg_trusted_write = trusted;
	PG_TRY();
	{
		if (snapshot == InvalidSnapshot)
			vg_execute(plan, args, nulls, expected, 0);
		else
			vg_execute_snapshot(plan, args, nulls, snapshot, false,
								expected, 0);
	}
	PG_FINALLY();
	{
		vg_trusted_write = 0;
	}
	PG_END_TRY();
}

/* ----------------------------------------------------------------
 *		contests
 * ----------------------------------------------------------------
 */

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

/* [1]: the 1.1 shape, with capacity; [0]: a database still at 1.0 */
static SPIPlanPtr plan_contest[2] = {NULL, NULL};
static SPIPlanPtr plan_contest_share[2] = {NULL, NULL};
static SPIPlanPtr plan_key_settings = NULL;

#define CONTEST_QUERY(capacity) \
	"SELECT c.opens_at, c.closes_at, c.closed_at IS NOT NULL," \
	"       'ip' OPERATOR(pg_catalog.=) ANY (c.dedupe_on)," \
	"       'user' OPERATOR(pg_catalog.=) ANY (c.dedupe_on)," \
	"       'email' OPERATOR(pg_catalog.=) ANY (c.dedupe_on)," \
	"       c.ipv4_prefix, c.ipv6_prefix, c.require_user," \
	"       c.votes_per_voter, c.per_entry_limit, c.vote_window, c.cooldown," \
	"       c.allow_change, c.secret_version, " capacity \
	"  FROM vote_guard.contests c" \
	" WHERE c.id OPERATOR(pg_catalog.=) $1"

static void
contest_cache_flush(void)
{
	vg_backend_cache_drop(&contest_cache);
}

/*
 * A contest's vote_window or cooldown in microseconds (0: none), a day 24
 * hours and a month 30 days.  The contests' CHECKs keep both between 1
 * microsecond and 100 years.
 */
static int64
interval_usecs(Datum d, bool isnull, const char *column)
{
	int64		usecs;

	if (isnull)
		return 0;
	if (!vg_interval_usecs(DatumGetIntervalP(d), &usecs))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s of a contest out of range", column)));
	return usecs;
}

/*
 * Read a contest's settings.  Under READ COMMITTED they come from the
 * backend's cache when it has them.  Under REPEATABLE READ and SERIALIZABLE
 * the contest row is read and locked FOR SHARE, so a change committed after
 * the snapshot (a close) is a serialization failure instead of going
 * unseen.  False: no such contest.
 */
bool
vg_load_contest(int64 contest_id, VgContest *c)
{
	Datum		args[1] = {Int64GetDatum(contest_id)};
	bool		isnull;
	Datum		d;
	bool		snapshot_mode = IsolationUsesXactSnapshot();
	ContestCacheEntry *cached;
	int			shape;

	if (!snapshot_mode)
	{
		table_watch(&contests_table);
		if (contest_cache != NULL &&
			(cached = hash_search(contest_cache, &contest_id, HASH_FIND,
								  NULL)) != NULL)
		{
			*c = cached->contest;
			return true;
		}
	}

	shape = table_shape(&contests_table) > 0 ? 1 : 0;
	if (plan_contest[shape] == NULL)
	{
		Oid			argtypes[1] = {INT8OID};
		const char *query = shape ? CONTEST_QUERY("c.capacity") :
			CONTEST_QUERY("NULL::pg_catalog.int8");

		plan_contest_share[shape] =
			vg_prepare_kept(psprintf("%s FOR SHARE OF c", query), 1, argtypes);
		plan_contest[shape] = vg_prepare_kept(query, 1, argtypes);
	}
	vg_execute(snapshot_mode ? plan_contest_share[shape] : plan_contest[shape],
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
	d = vg_spi_value(0, 16, &isnull);
	c->capacity = isnull ? VG_NO_CAPACITY : DatumGetInt64(d);

	if (!snapshot_mode)
	{
		cached = vg_backend_cache_enter(&contest_cache, "vote_guard contests",
										sizeof(int64), sizeof(ContestCacheEntry),
										CONTEST_CACHE_MAX, &contest_id);
		cached->contest = *c;
	}
	return true;
}

/*
 * The settings a contest's keys are computed with, read without a lock:
 * they never change once the contest exists (contests trigger).  False: no
 * such contest.
 */
bool
vg_contest_key_settings(int64 contest_id, int32 *ipv4_prefix,
						int32 *ipv6_prefix, int32 *secret_version)
{
	Datum		arg = Int64GetDatum(contest_id);
	bool		isnull;

	if (plan_key_settings == NULL)
	{
		Oid			argtypes[1] = {INT8OID};

		plan_key_settings = vg_prepare_kept(
			"SELECT c.ipv4_prefix, c.ipv6_prefix, c.secret_version"
			"  FROM vote_guard.contests c"
			" WHERE c.id OPERATOR(pg_catalog.=) $1",
			1, argtypes);
	}
	vg_execute(plan_key_settings, &arg, NULL, SPI_OK_SELECT, 1);
	if (SPI_processed == 0)
		return false;
	*ipv4_prefix = DatumGetInt32(vg_spi_value(0, 1, &isnull));
	*ipv6_prefix = DatumGetInt32(vg_spi_value(0, 2, &isnull));
	*secret_version = DatumGetInt32(vg_spi_value(0, 3, &isnull));
	return true;
}

/*
 * How many contests and votes vote_guard holds, read as role (the
 * extension's owner: the caller may have only its schema owner's
 * privileges).  SPI connected.  For the drop guard.
 */
void
vg_count_contents(Oid role, int64 *contests, int64 *votes)
{
	Oid			save_userid;
	int			save_sec_context;
	bool		isnull;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(role, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (SPI_execute("SELECT (SELECT pg_catalog.count(*) FROM vote_guard.contests),"
					"       (SELECT pg_catalog.count(*) FROM vote_guard.votes)",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "SPI_execute failed counting contests and votes");
	SetUserIdAndSecContext(save_userid, save_sec_context);
	*contests = DatumGetInt64(vg_spi_value(0, 1, &isnull));
	*votes = DatumGetInt64(vg_spi_value(0, 2, &isnull));
}

/* ----------------------------------------------------------------
 *		secrets
 * ----------------------------------------------------------------
 */

/*
 * The derived keys of a contest, from the backend's cache or, the first
 * time, from the secrets of its version.  Secrets never change once
 * written; any insert or delete on vote_guard.secrets empties the cache
 * of every backend at commit.  SPI need not be connected: this connects
 * its own (nested) when it reads.
 */
VgContestKeys *
vg_contest_keys(int64 contest_id, int32 secret_version)
{
	static SPIPlanPtr plan = NULL;
	VgContestKeys *keys;
	Datum		arg = Int32GetDatum(secret_version);
	bool		isnull;
	bytea	   *ip_secret;
	bytea	   *email_secret;

	table_watch(&secrets_table);
	keys = vg_contest_keys_cached(contest_id, secret_version);
	if (keys != NULL)
		return keys;

	vg_spi_connect();
	if (plan == NULL)
	{
		Oid			argtypes[1] = {INT4OID};

		plan = vg_prepare_kept("SELECT s.ip_secret, s.email_secret"
							   "  FROM vote_guard.secrets s"
							   " WHERE s.version OPERATOR(pg_catalog.=) $1",
							   1, argtypes);
	}
	vg_execute(plan, &arg, NULL, SPI_OK_SELECT, 1);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("vote_guard secret version %d is missing", secret_version),
				 errdetail("Contest " INT64_FORMAT " was created with it.", contest_id),
				 errhint("Restore vote_guard.secrets from a backup of this database.")));
	ip_secret = DatumGetByteaPP(vg_spi_value(0, 1, &isnull));
	email_secret = DatumGetByteaPP(vg_spi_value(0, 2, &isnull));
	keys = vg_contest_keys_derive(contest_id, secret_version,
								  (const uint8 *) VARDATA_ANY(ip_secret),
								  VARSIZE_ANY_EXHDR(ip_secret),
								  (const uint8 *) VARDATA_ANY(email_secret),
								  VARSIZE_ANY_EXHDR(email_secret));
	SPI_finish();
	return keys;
}

/* ----------------------------------------------------------------
 *		entries
 * ----------------------------------------------------------------
 */

/*
 * Entries known to exist, per backend (READ COMMITTED only): at most
 * ENTRY_CACHE_MAX (about 0.5 MB), then it starts again empty.  That is safe
 * because an entry is removed or renumbered only under its contest's lock in
 * exclusive mode (entries trigger), which also sends a relcache
 * invalidation of entries; a vote reads the cache only after taking the
 * lock in share mode and taking in the invalidations (vg_load_contest), and
 * the invalidation empties the cache.
 */
typedef struct EntryKey
{
	int64		contest_id;
	int64		entry_id;
} EntryKey;

/* an entry known to exist, and its capacity */
typedef struct EntryCacheEntry
{
	EntryKey	key;			/* hash key */
	int64		capacity;		/* VG_NO_CAPACITY: none */
} EntryCacheEntry;

#define ENTRY_CACHE_MAX		10000

static HTAB *entry_cache = NULL;

static void
entry_cache_flush(void)
{
	vg_backend_cache_drop(&entry_cache);
}

/*
 * Is the entry visible to snapshot?  *own: its row was written by this
 * transaction (not committed yet: it may still go with a rollback).
 * *capacity (if not NULL): its capacity, VG_NO_CAPACITY for none or on a
 * database still at the 1.0 schema.
 */
static bool
entry_visible(Relation rel, int64 contest_id, int64 entry_id, Snapshot snapshot,
			  bool *own, int64 *capacity)
{
	SysScanDesc scan = entry_scan(&entries_table, rel, contest_id, entry_id,
								  snapshot);
	HeapTuple	tup = systable_getnext(scan);
	bool		found = HeapTupleIsValid(tup);

	if (found && own != NULL)
		*own = TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tup->t_data));
	if (found && capacity != NULL)
	{
		/* by name: a Citus shard may number its columns otherwise */
		TupleDesc	desc = RelationGetDescr(rel);
		int			att = table_shape(&entries_table) > 0 ?
			SPI_fnumber(desc, "capacity") : 0;
		bool		isnull = true;
		Datum		d = 0;

		if (att > 0)
			d = heap_getattr(tup, att, desc, &isnull);
		*capacity = isnull ? VG_NO_CAPACITY : DatumGetInt64(d);
	}
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
	int64		capacity;

	return vg_entry_lookup(contest_id, entry_id, &capacity);
}

/*
 * vg_entry_exists, and the entry's capacity (VG_NO_CAPACITY: none).  A
 * change of capacity takes the contest's lock in exclusive mode and empties
 * the caches as a removal does (entries trigger).
 */
bool
vg_entry_lookup(int64 contest_id, int64 entry_id, int64 *capacity)
{
	EntryKey	key = {contest_id, entry_id};
	bool		use_cache = !IsolationUsesXactSnapshot();
	Relation	rel;
	bool		found;
	bool		own = false;
	EntryCacheEntry *cached;

	if (use_cache && entry_cache != NULL &&
		(cached = hash_search(entry_cache, &key, HASH_FIND, NULL)) != NULL)
	{
		*capacity = cached->capacity;
		return true;
	}

	rel = table_open_checked(&entries_table, contest_id, AccessShareLock);
	found = entry_visible(rel, contest_id, entry_id, push_statement_snapshot(),
						  &own, capacity);
	PopActiveSnapshot();
	if (found && use_cache && !own)
	{
		cached = vg_backend_cache_enter(&entry_cache, "vote_guard entries",
										sizeof(EntryKey), sizeof(EntryCacheEntry),
										ENTRY_CACHE_MAX, &key);
		cached->capacity = *capacity;
	}
	if (found && IsolationUsesXactSnapshot())
	{
		PushActiveSnapshot(GetLatestSnapshot());
		found = entry_visible(rel, contest_id, entry_id, GetActiveSnapshot(),
							  NULL, capacity);
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
 * Does an entry about to be removed or renumbered have votes?  First the
 * contest's row is locked, so votes under REPEATABLE READ and SERIALIZABLE
 * (which read it FOR SHARE) finish first or fail.  There is no index on the
 * votes' entry (it would cost every vote): the contest's votes are read in
 * primary key order up to the first one for the entry, all of them when it
 * has none.  SPI need not be connected.
 */
bool
vg_entry_has_votes(int64 contest_id, int64 entry_id)
{
	static SPIPlanPtr plan_votes = NULL;
	Datum		args[2] = {Int64GetDatum(contest_id), Int64GetDatum(entry_id)};
	bool		found;

	vg_spi_connect();
	if (plan_votes == NULL)
	{
		Oid			argtypes[2] = {INT8OID, INT8OID};

		plan_votes = vg_prepare_kept(
			"SELECT 1 FROM vote_guard.votes v"
			" WHERE v.contest_id OPERATOR(pg_catalog.=) $1"
			"   AND v.entry_id OPERATOR(pg_catalog.=) $2 LIMIT 1",
			2, argtypes);
	}
	contest_row_lock(contest_id);
	vg_execute(plan_votes, args, NULL, SPI_OK_SELECT, 1);
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/* ----------------------------------------------------------------
 *		votes
 * ----------------------------------------------------------------
 */

/* the columns of vote_guard.votes, and two of their numbers */
#define VG_VOTES_NATTS			12
#define VG_VOTES_VOTE_ID		2
#define VG_VOTES_CREATED_AT		4

/*
 * The columns of vote_guard.votes, in order; vg_vote_insert takes its values
 * in this order.
 */
static const Oid votes_column_types[VG_VOTES_NATTS] = {
	INT8OID,					/* contest_id */
	INT8OID,					/* vote_id: identity */
	INT8OID,					/* entry_id */
	TIMESTAMPTZOID,				/* created_at: statement_timestamp() */
	INT4OID,					/* window_no */
	INT2OID,					/* ip_slot */
	INT2OID,					/* user_slot */
	INT2OID,					/* email_slot */
	BYTEAOID,					/* ip_key */
	TEXTOID,					/* user_id */
	BYTEAOID,					/* email_key */
	TEXTOID,					/* request_id */
};

/*
 * May vote_insert_direct write votes without the executor's plan: a plain
 * table with vote_guard's columns, without row security or rules, whose
 * vote_id takes the next value of its identity sequence and created_at the
 * statement's time, and whose only insert triggers are vote_guard's own?
 * Indexes and constraints may be anything: vote_insert_direct checks and
 * maintains them as the executor does.
 */
static bool
votes_as_created(VgTable *t, Relation rel)
{
	Node	   *def;

	t->seqid = InvalidOid;
	if (!votes_shape_ok(rel, false))
		return false;
	def = build_column_default(rel, VG_VOTES_VOTE_ID);
	if (def == NULL || !IsA(def, NextValueExpr))
		return false;
	t->seqid = ((NextValueExpr *) def)->seqid;
	def = build_column_default(rel, VG_VOTES_CREATED_AT);
	if (def == NULL || !IsA(def, FuncExpr) ||
		((FuncExpr *) def)->funcid != F_STATEMENT_TIMESTAMP)
		return false;
	return true;
}

/* Is trigger name vote_guard's name, or on a Citus shard name_<shard id>? */
static bool
trigger_named(const char *tgname, const char *name, bool shard)
{
	size_t		len = strlen(name);

	if (strncmp(tgname, name, len) != 0)
		return false;
	if (tgname[len] == '\0')
		return true;
	return shard && tgname[len] == '_' && tgname[len + 1] != '\0' &&
		strspn(tgname + len + 1, "0123456789") == strlen(tgname + len + 1);
}

/*
 * votes_as_created but for the column defaults: a heap with vote_guard's
 * columns, without row security or rules, whose only insert triggers are
 * vote_guard's own.  A Citus shard (shard) has no defaults of its own: the
 * table's are checked on the table, and its triggers carry the shard id.
 */
static bool
votes_shape_ok(Relation rel, bool shard)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			schema = RelationGetNamespace(rel);
	int			i;

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
	for (i = 0; rel->trigdesc != NULL && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *trig = &rel->trigdesc->triggers[i];

		if (TRIGGER_FOR_INSERT(trig->tgtype) &&
			((!trigger_named(trig->tgname, "votes_counters", shard) &&
			  !trigger_named(trig->tgname, "votes_policy", shard)) ||
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
 * votes_as_created): vg_vote_insert runs the statement instead.  Otherwise
 * *inserted says whether the row went in (false: a unique index said no),
 * and *vote_id is its id.
 */
static bool
vote_insert_direct(Datum *values, bool *isnull, bool *inserted, int64 *vote_id)
{
	Relation	rel = table_open_checked(&votes_table, DatumGetInt64(values[0]),
											  RowExclusiveLock);
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	MemoryContext oldcxt;

	if (!votes_table.as_created ||
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(),
						  ACL_INSERT) != ACLCHECK_OK)
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

/*
 * Write a vote of voter v (its keys and slots) for entry_id in window
 * window_no.  Returns whether it went in (false: a unique index said no),
 * with *vote_id its id.  The row is written by vote_insert_direct unless the
 * votes table has been changed; then the statement runs.  Either way the
 * triggers pass it through: the caller has decided the policy and moves the
 * counter itself.
 */
bool
vg_vote_insert(int64 contest_id, int64 entry_id, const VgVoter *v,
			   text *request_id, int32 window_no, int64 *vote_id)
{
	static SPIPlanPtr plan_insert = NULL;
	/* the statement's parameters: the columns of votes but vote_id, created_at */
	static const int columns[10] = {1, 3, 9, 10, 11, 12, 5, 6, 7, 8};
	Datum		args[10];
	char		nulls[10];
	Datum		values[VG_VOTES_NATTS];
	bool		isnull[VG_VOTES_NATTS];
	bool		inserted;
	int			i;

	args[0] = Int64GetDatum(contest_id);
	args[1] = Int64GetDatum(entry_id);
	nulls[0] = nulls[1] = ' ';
	for (i = 0; i < VG_NUM_VECTORS; i++)
	{
		/* ip_key, user_id, email_key are $3..$5; request_id $6 */
		args[2 + i] = v->key[i];
		nulls[2 + i] = v->has[i] ? ' ' : 'n';
		args[7 + i] = Int16GetDatum(v->slot[i]);
		nulls[7 + i] = ' ';
	}
	args[5] = PointerGetDatum(request_id);
	nulls[5] = request_id != NULL ? ' ' : 'n';
	args[6] = Int32GetDatum(window_no);
	nulls[6] = ' ';

	for (i = 0; i < 10; i++)
	{
		values[columns[i] - 1] = args[i];
		isnull[columns[i] - 1] = nulls[i] == 'n';
	}
	if (vote_insert_direct(values, isnull, &inserted, vote_id))
		return inserted;

	if (plan_insert == NULL)
	{
		Oid			argtypes[10] = {INT8OID, INT8OID, BYTEAOID, TEXTOID,
		BYTEAOID, TEXTOID, INT4OID, INT2OID, INT2OID, INT2OID};

		plan_insert = vg_prepare_kept(
			"INSERT INTO vote_guard.votes"
			"       (contest_id, entry_id, ip_key, user_id, email_key, request_id,"
			"        window_no, ip_slot, user_slot, email_slot)"
			" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
			" ON CONFLICT DO NOTHING"
			" RETURNING vote_id",
			10, argtypes);
	}

	/*
	 * Under READ COMMITTED the statement runs with the calling statement's
	 * snapshot rather than a new one: nothing it does depends on a snapshot
	 * (the unique indexes work on the newest row versions), and a new
	 * snapshot per vote costs a GetSnapshotData, which contends on
	 * ProcArrayLock with many backends.
	 */
	execute_trusted(plan_insert, args, nulls, SPI_OK_INSERT_RETURNING,
					VG_WRITE_DECIDED | VG_WRITE_COUNTED,
					!IsolationUsesXactSnapshot() && ActiveSnapshotSet() ?
					GetActiveSnapshot() : InvalidSnapshot);
	if (SPI_processed == 0)
		return false;
	*vote_id = DatumGetInt64(vg_spi_value(0, 1, &inserted));
	return true;
}

/*
 * The voter's votes that matter now: those of its vectors in window
 * window_no, those after since (within reach of a cooldown; DT_NOEND for
 * none), and the one with request_id (0: none), leaving out vote
 * exclude_vote_id (0: none).  Each OR arm is served by one of the partial
 * unique indexes.  With latest, read with the newest snapshot instead of
 * the transaction's.  Returns how many, the votes in *votes (palloc'd).
 */
int
vg_voter_votes(int64 contest_id, const VgVoter *v, Datum request_id,
			   int32 window_no, TimestampTz since, int64 exclude_vote_id,
			   bool latest, VgPastVote **votes)
{
	static SPIPlanPtr plan_state = NULL;
	Datum		args[8];
	char		nulls[8];
	VgPastVote *out;
	uint64		r;
	int			i;

	if (plan_state == NULL)
	{
		Oid			argtypes[8] = {INT8OID, BYTEAOID, TEXTOID, BYTEAOID, TEXTOID,
		INT4OID, TIMESTAMPTZOID, INT8OID};

		plan_state = vg_prepare_kept(
			"SELECT v.vote_id, v.entry_id, v.window_no, v.created_at,"
			"       COALESCE(v.request_id OPERATOR(pg_catalog.=) $5, false),"
			"       COALESCE(v.ip_key OPERATOR(pg_catalog.=) $2, false),"
			"       COALESCE(v.user_id OPERATOR(pg_catalog.=) $3, false),"
			"       COALESCE(v.email_key OPERATOR(pg_catalog.=) $4, false),"
			"       v.ip_slot, v.user_slot, v.email_slot"
			"  FROM vote_guard.votes v"
			" WHERE v.contest_id OPERATOR(pg_catalog.=) $1"
			"   AND ((v.ip_key OPERATOR(pg_catalog.=) $2"
			"         AND (v.window_no OPERATOR(pg_catalog.=) $6"
			"              OR v.created_at OPERATOR(pg_catalog.>) $7))"
			"        OR (v.user_id OPERATOR(pg_catalog.=) $3"
			"            AND (v.window_no OPERATOR(pg_catalog.=) $6"
			"                 OR v.created_at OPERATOR(pg_catalog.>) $7))"
			"        OR (v.email_key OPERATOR(pg_catalog.=) $4"
			"            AND (v.window_no OPERATOR(pg_catalog.=) $6"
			"                 OR v.created_at OPERATOR(pg_catalog.>) $7))"
			"        OR v.request_id OPERATOR(pg_catalog.=) $5)"
			"   AND ($8::pg_catalog.int8 IS NULL"
			"        OR v.vote_id OPERATOR(pg_catalog.<>) $8)",
			8, argtypes);
	}

	args[0] = Int64GetDatum(contest_id);
	nulls[0] = ' ';
	for (i = 0; i < VG_NUM_VECTORS; i++)
	{
		args[1 + i] = v->key[i];
		nulls[1 + i] = v->has[i] ? ' ' : 'n';
	}
	args[4] = request_id;
	nulls[4] = request_id != (Datum) 0 ? ' ' : 'n';
	args[5] = Int32GetDatum(window_no);
	nulls[5] = ' ';
	args[6] = TimestampTzGetDatum(since);
	nulls[6] = ' ';
	args[7] = Int64GetDatum(exclude_vote_id);
	nulls[7] = exclude_vote_id != 0 ? ' ' : 'n';

	if (latest)
		vg_execute_snapshot(plan_state, args, nulls, GetLatestSnapshot(), true,
							SPI_OK_SELECT, 0);
	else
		vg_execute(plan_state, args, nulls, SPI_OK_SELECT, 0);

	out = palloc(sizeof(VgPastVote) * Max(SPI_processed, 1));
	for (r = 0; r < SPI_processed; r++)
	{
		VgPastVote *p = &out[r];
		bool		isnull;

		p->vote_id = DatumGetInt64(vg_spi_value(r, 1, &isnull));
		p->entry_id = DatumGetInt64(vg_spi_value(r, 2, &isnull));
		p->window_no = DatumGetInt32(vg_spi_value(r, 3, &isnull));
		p->created_at = DatumGetTimestampTz(vg_spi_value(r, 4, &isnull));
		p->is_request = DatumGetBool(vg_spi_value(r, 5, &isnull));
		for (i = 0; i < VG_NUM_VECTORS; i++)
		{
			p->match[i] = DatumGetBool(vg_spi_value(r, 6 + i, &isnull));
			p->slot[i] = DatumGetInt16(vg_spi_value(r, 9 + i, &isnull));
		}
	}
	*votes = out;
	return (int) SPI_processed;
}

/*
 * Find the user's vote in window window_no (for entry_id, if has_entry,
 * else the only one).  Returns the number of candidates: 0 none, 1 found
 * (*vote_id), 2 ambiguous.
 */
int
vg_user_vote_find(int64 contest_id, text *user_id, int32 window_no,
				  bool has_entry, int64 entry_id, int64 *vote_id)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		isnull;

	if (plan == NULL)
	{
		Oid			argtypes[4] = {INT8OID, TEXTOID, INT4OID, INT8OID};

		/* newest first; $4: only for this entry */
		plan = vg_prepare_kept(
			"SELECT v.vote_id, v.entry_id, v.ip_key, v.email_key"
			"  FROM vote_guard.votes v"
			" WHERE v.contest_id OPERATOR(pg_catalog.=) $1"
			"   AND v.user_id OPERATOR(pg_catalog.=) $2"
			"   AND v.window_no OPERATOR(pg_catalog.=) $3"
			"   AND ($4::pg_catalog.int8 IS NULL OR v.entry_id OPERATOR(pg_catalog.=) $4)"
			" ORDER BY v.created_at DESC, v.vote_id DESC",
			4, argtypes);
	}
	args[0] = Int64GetDatum(contest_id);
	args[1] = PointerGetDatum(user_id);
	args[2] = Int32GetDatum(window_no);
	args[3] = Int64GetDatum(entry_id);
	if (!has_entry)
		nulls[3] = 'n';
	vg_execute(plan, args, nulls, SPI_OK_SELECT, has_entry ? 1 : 2);
	if (SPI_processed == 0)
		return 0;
	*vote_id = DatumGetInt64(vg_spi_value(0, 1, &isnull));
	return SPI_processed == 1 ? 1 : 2;
}

/*
 * Lock the vote that vg_user_vote_find found, if it still is the user's vote
 * in window window_no (for entry_id, if has_entry): under READ COMMITTED the
 * conditions are checked again on the newest version of the row, so a vote
 * moved or taken back meanwhile by a concurrent call is not returned.  Fills
 * its entry and the voter's vectors.  False: the vote is gone or is no
 * longer that vote.
 */
bool
vg_user_vote_lock(int64 contest_id, int64 vote_id, text *user_id,
				  int32 window_no, bool has_entry, int64 entry_id,
				  int64 *cur_entry, VgVoter *v)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	Datum		d;

	if (plan == NULL)
	{
		Oid			argtypes[5] = {INT8OID, INT8OID, TEXTOID, INT4OID, INT8OID};

		plan = vg_prepare_kept(
			"SELECT v.entry_id, v.ip_key, v.email_key"
			"  FROM vote_guard.votes v"
			" WHERE v.contest_id OPERATOR(pg_catalog.=) $1"
			"   AND v.vote_id OPERATOR(pg_catalog.=) $2"
			"   AND v.user_id OPERATOR(pg_catalog.=) $3"
			"   AND v.window_no OPERATOR(pg_catalog.=) $4"
			"   AND ($5::pg_catalog.int8 IS NULL OR v.entry_id OPERATOR(pg_catalog.=) $5)"
			"   FOR UPDATE",
			5, argtypes);
	}
	args[0] = Int64GetDatum(contest_id);
	args[1] = Int64GetDatum(vote_id);
	args[2] = PointerGetDatum(user_id);
	args[3] = Int32GetDatum(window_no);
	args[4] = Int64GetDatum(entry_id);
	if (!has_entry)
		nulls[4] = 'n';
	vg_execute(plan, args, nulls, SPI_OK_SELECT, 1);
	if (SPI_processed == 0)
		return false;
	*cur_entry = DatumGetInt64(vg_spi_value(0, 1, &isnull));
	d = vg_spi_value(0, 2, &isnull);
	v->has[VG_VEC_IP] = !isnull;
	v->key[VG_VEC_IP] = isnull ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
	v->has[VG_VEC_USER] = true;
	v->key[VG_VEC_USER] = PointerGetDatum(user_id);
	d = vg_spi_value(0, 3, &isnull);
	v->has[VG_VEC_EMAIL] = !isnull;
	v->key[VG_VEC_EMAIL] = isnull ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
	return true;
}

/*
 * Move a vote to another entry, decided under the voter's locks: one
 * UPDATE, whose trigger moves both counters, unless the caller has
 * (counted).
 */
void
vg_vote_move(int64 contest_id, int64 vote_id, int64 new_entry, bool counted)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[3] = {Int64GetDatum(contest_id), Int64GetDatum(vote_id),
	Int64GetDatum(new_entry)};

	if (plan == NULL)
	{
		Oid			argtypes[3] = {INT8OID, INT8OID, INT8OID};

		plan = vg_prepare_kept(
			"UPDATE vote_guard.votes v SET entry_id = $3"
			" WHERE v.contest_id OPERATOR(pg_catalog.=) $1"
			"   AND v.vote_id OPERATOR(pg_catalog.=) $2",
			3, argtypes);
	}
	execute_trusted(plan, args, NULL, SPI_OK_UPDATE,
					VG_WRITE_DECIDED | (counted ? VG_WRITE_COUNTED : 0),
					InvalidSnapshot);
}

/* Delete a vote; its trigger moves the counter. */
void
vg_vote_delete(int64 contest_id, int64 vote_id)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[2] = {Int64GetDatum(contest_id), Int64GetDatum(vote_id)};

	if (plan == NULL)
	{
		Oid			argtypes[2] = {INT8OID, INT8OID};

		plan = vg_prepare_kept(
			"DELETE FROM vote_guard.votes v"
			" WHERE v.contest_id OPERATOR(pg_catalog.=) $1"
			"   AND v.vote_id OPERATOR(pg_catalog.=) $2",
			2, argtypes);
	}
	vg_execute(plan, args, NULL, SPI_OK_DELETE, 0);
}

/* ----------------------------------------------------------------
 *		counters
 * ----------------------------------------------------------------
 */

/* The counter slot this backend adds to. */
static int32
counter_slot(void)
{
	return VG_MY_BACKEND_NUMBER % VG_COUNTER_SLOTS;
}

/*
 * The net change of each entry's count in a statement on votes, from its
 * transition tables.
 */
static const char *const counter_deltas[3] = {
	/* INSERT */
	"SELECT n.contest_id, n.entry_id, pg_catalog.count(*) AS delta"
	"  FROM new_votes n GROUP BY 1, 2",
	/* DELETE */
	"SELECT o.contest_id, o.entry_id,"
	"       OPERATOR(pg_catalog.-) pg_catalog.count(*) AS delta"
	"  FROM old_votes o GROUP BY 1, 2",
	/* UPDATE: the entries a vote left and the ones it moved to */
	"SELECT x.contest_id, x.entry_id, pg_catalog.sum(x.d)::pg_catalog.int8 AS delta"
	"  FROM (SELECT n.contest_id, n.entry_id, 1 AS d FROM new_votes n"
	"        UNION ALL"
	"        SELECT o.contest_id, o.entry_id, -1 FROM old_votes o) x"
	" GROUP BY 1, 2 HAVING pg_catalog.sum(x.d) OPERATOR(pg_catalog.<>) 0"
};

/* The columns of vote_guard.counters, in order (allot: since 1.1). */
static const Oid counters_column_types[] = {
	INT8OID,					/* contest_id */
	INT8OID,					/* entry_id */
	INT4OID,					/* slot */
	INT8OID,					/* votes */
	INT8OID,					/* allot */
};

/* The columns of vote_guard.contest_counters, in order. */
static const Oid contest_counters_column_types[] = {
	INT8OID,					/* contest_id */
	INT4OID,					/* slot */
	INT8OID,					/* allot */
};

/*
 * May counter_add_free update counter rows in place, as a planned UPDATE of
 * the count would: a plain heap table with vote_guard's columns and nothing
 * such an UPDATE would also do or enforce: its primary key its only index;
 * no CHECK constraint (valid or not), generated column, row security or
 * rule; no update triggers but those of a foreign key (which an update that
 * keeps the key does not fire).  Decided when the table is looked up again,
 * which any change to it causes.  Privileges and the replica identity a
 * publication needs are checked on every call (counter_add_free).
 */
static bool
counters_as_created(VgTable *t, Relation rel)
{
	/* 1.0 has no allot column */
	int			natts = RelationGetDescr(rel)->natts;

	return (natts == lengthof(counters_column_types) ||
			natts == lengthof(counters_column_types) - 1) &&
		plain_counter_table(rel, counters_column_types, natts);
}

/* The same for vote_guard.contest_counters. */
static bool
contest_counters_as_created(VgTable *t, Relation rel)
{
	return plain_counter_table(rel, contest_counters_column_types,
							   lengthof(contest_counters_column_types));
}

/* counters_as_created, for a table of natts columns of these types. */
static bool
plain_counter_table(Relation rel, const Oid *column_types, int natts)
{
	TupleDesc	desc = RelationGetDescr(rel);
	List	   *indexes;
	bool		plain;
	int			i;

	if (rel->rd_rel->relam != HEAP_TABLE_AM_OID ||
		rel->rd_rel->relkind != RELKIND_RELATION ||
		rel->rd_rel->relrowsecurity || rel->rd_rel->relforcerowsecurity ||
		rel->rd_rules != NULL ||
		desc->natts != natts ||
		(desc->constr != NULL &&
		 (desc->constr->num_check > 0 || desc->constr->has_generated_stored)))
		return false;
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypid != column_types[i] ||
			att->attgenerated != '\0')
			return false;
	}
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

/*
 * Under SERIALIZABLE the counter rows are a commutative total, not data a
 * vote depends on: they are scanned with SnapshotAny, which takes no
 * predicate locks (and so makes no read dependency with the votes that
 * change them), and each row version's visibility to the transaction's
 * snapshot is checked here, as the scan would with that snapshot.  Two
 * votes for one entry then never make each other fail with 40001; the count
 * they answer is what the transaction's snapshot shows, plus its own votes,
 * without the serializable guarantee.  Readers of the counters through SQL
 * (results(), verify()) still take predicate locks as usual.
 */
static bool
counters_unlocked_reads(void)
{
	return IsolationIsSerializable();
}

/* Is the row version the scan just returned visible to snapshot? */
static bool
counter_version_visible(SysScanDesc scan, HeapTuple tup, Snapshot snapshot)
{
	Buffer		buffer = ((BufferHeapTupleTableSlot *) scan->slot)->buffer;
	bool		visible;

	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	visible = HeapTupleSatisfiesVisibility(tup, snapshot, buffer);
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	return visible;
}

/*
 * An entry's count: the sum of its counter slots as the transaction sees
 * them now, its own changes included.
 */
int64
vg_entry_count(int64 contest_id, int64 entry_id)
{
	Relation	rel = table_open_checked(&counters_table, contest_id,
											 AccessShareLock);
	SysScanDesc scan;
	HeapTuple	tup;
	int64		sum = 0;
	Snapshot	snapshot = push_statement_snapshot();
	bool		unlocked = counters_unlocked_reads();

	scan = entry_scan(&counters_table, rel, contest_id, entry_id,
					  unlocked ? SnapshotAny : snapshot);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		votes;

		if (unlocked && !counter_version_visible(scan, tup, snapshot))
			continue;
		votes = heap_getattr(tup, 4, RelationGetDescr(rel), &isnull);
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
	table_index_insert(&counters_table, rel, tup);
}

/* The same for a row of table t. */
static void
table_index_insert(VgTable *t, Relation rel, HeapTuple tup)
{
	Relation	index = index_open(t->pkey, RowExclusiveLock);
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
 * Under SERIALIZABLE (counters_unlocked_reads) the rows are scanned without
 * predicate locks, and the newest version of a row is taken even when it
 * was changed since the snapshot, as under READ COMMITTED: adding to a count
 * commutes with the other votes' additions, so it is no serialization
 * conflict.  The count is still summed from the versions the snapshot sees.
 *
 * The row is updated in place with simple_heap_update, as the executor
 * would: the key does not change (no foreign key check is due) and the
 * table has no triggers of its own.  If its table access method, indexes or
 * triggers are not what vote_guard created, this declines (false, with
 * this backend's slot) and the caller writes through SQL.
 */
static bool
counter_add_free(int64 contest_id, int64 entry_id, int64 delta,
				 int32 *new_slot, int64 *count, bool *limited)
{
	Relation	rel;
	Snapshot	snapshot;
	SysScanDesc scan;
	HeapTuple	tup;
	TupleTableSlot *locked;
	uint8		lock_flags = 0;
	uint64		used = 0;
	uint64		tried = 0;
	bool		unlocked;
	bool		added = false;
	int64		sum = delta;
	int			i;
	AttrNumber	allot_att;

	StaticAssertStmt(VG_COUNTER_SLOTS <= 64, "counter slots must fit in a uint64");
	*new_slot = counter_slot();
	*limited = false;
	rel = table_open_checked(&counters_table, contest_id, RowExclusiveLock);
	/* the 1.1 shape has allot (fifth, as the fast path needs); 1.0's not */
	allot_att = table_shape(&counters_table) > 0 ? 5 : 0;

	/*
	 * What the executor checks of a planned UPDATE on every call: the user's
	 * privileges (missing: the planned statement says so), and a replica
	 * identity where a publication publishes updates (the same error).
	 */
	if (!counters_table.as_created ||
		pg_class_aclcheck(RelationGetRelid(rel), GetUserId(),
						  ACL_SELECT | ACL_UPDATE) != ACLCHECK_OK)
	{
		table_close(rel, NoLock);
		return false;
	}
	CheckCmdReplicaIdentity(rel, CMD_UPDATE);

	/*
	 * Versions this scan makes have the snapshot's command id, so the scan
	 * does not see them: every row counts once, as it was before the vote.
	 */
	snapshot = push_statement_snapshot();
	unlocked = counters_unlocked_reads();
	if (!IsolationUsesXactSnapshot() || unlocked)
		lock_flags = TUPLE_LOCK_FLAG_FIND_LAST_VERSION;

	locked = table_slot_create(rel, NULL);
	scan = entry_scan(&counters_table, rel, contest_id, entry_id,
					  unlocked ? SnapshotAny : snapshot);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		int32		slot = DatumGetInt32(heap_getattr(tup, 3, desc, &isnull));
		Datum		votes = heap_getattr(tup, 4, desc, &isnull);
		uint64		bit = slot >= 0 && slot < VG_COUNTER_SLOTS ? UINT64CONST(1) << slot : 0;
		TM_FailureData tmfd;
		TM_Result	result;

		/* SnapshotAny: every version; count those the snapshot sees */
		if (!isnull &&
			(!unlocked || counter_version_visible(scan, tup, snapshot)))
			sum += DatumGetInt64(votes);
		if (added)
			continue;
		if (allot_att > 0)
		{
			(void) heap_getattr(tup, allot_att, desc, &isnull);
			if (!isnull)
			{
				/* the entry has a capacity: its places decide (pool_add) */
				*limited = true;
				break;
			}
		}
		used |= bit;
		if (unlocked && (tried & bit) != 0)
			continue;			/* another version of a row already tried */
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
			case TM_Deleted:	/* the entry is being removed */
				tried |= bit;
				break;
			case TM_Updated:	/* changed since the snapshot */
				break;
			case TM_Invisible:	/* (SnapshotAny) a version never committed */
			case TM_SelfModified:	/* (SnapshotAny) made by this scan */
				if (unlocked)
					break;
				/* FALLTHROUGH */
			default:
				elog(ERROR, "unexpected table_tuple_lock status: %u", result);
		}
	}
	systable_endscan(scan);
	ExecDropSingleTupleTableSlot(locked);
	PopActiveSnapshot();
	table_close(rel, NoLock);
	*count = sum;
	if (added || *limited)
		return added;

	/*
	 * A new row takes the first slot not in use from this backend's own on:
	 * two voters making rows at the same time (neither sees the other's yet)
	 * take different slots unless their backends share one.
	 */
	for (i = 0; i < VG_COUNTER_SLOTS; i++)
	{
		int32		slot = (counter_slot() + i) % VG_COUNTER_SLOTS;

		if ((used & (UINT64CONST(1) << slot)) == 0)
		{
			*new_slot = slot;
			break;
		}
	}
	return false;
}


/* ----------------------------------------------------------------
 *		places: the escrow of limited entries and contests
 * ----------------------------------------------------------------
 */

/*
 * The places left of an entry with a capacity are held in its counter rows
 * (allot), those of a contest with a capacity in its contest_counters rows:
 * the demarcation protocol's escrow.  A vote takes a place from a row no
 * other transaction holds, moving votes and allot of that row by one in
 * the same update, as SKIP LOCKED would find it; so votes + allot of every
 * row stays as the capacity's split left it, and allot never goes below 0
 * by a vote: the votes that commit can never exceed the capacity.  A
 * retract, a change away and the owner's DELETE give the place back to a
 * row (a rollback, by undoing the update).  When the rows no one holds are
 * dry but a held one was not, the vote waits for that row's holder (its
 * rollback would give the place back) and looks again; when none has a
 * place left, the entry is full.  So far from the end votes spread over
 * the rows like uncapped ones, and at the end a single row decides.
 *
 * A capacity lowered below the count leaves a debt: a negative allot in
 * slot 0 (vote_guard.places_split), which retracts pay back first, waiting
 * for that row; until it is paid no row has a place, and no vote is taken.
 *
 * A transaction that holds a dry row of the pool it waits in polls instead
 * of waiting on a row lock: two such could otherwise wait for each other.
 */

/* A pool: the counter rows of an entry, or the contest_counters of a contest. */
typedef struct PlacePool
{
	VgTable    *t;
	int64		contest_id;
	int64		entry_id;		/* counters only */
	int			nkeys;			/* key columns before slot */
	AttrNumber	slot_att;
	AttrNumber	votes_att;		/* 0: the table has no votes column */
	AttrNumber	allot_att;
} PlacePool;

/* One row of a pool as a scan saw it. */
typedef struct PoolRow
{
	ItemPointerData tid;		/* a version of it */
	int32		slot;
	bool		limited;		/* allot not null */
	int64		allot;			/* in the version the snapshot sees */
	bool		debt;			/* some version has allot < 0 */
} PoolRow;

#define POOL_MAX_ROWS	(4 * VG_COUNTER_SLOTS)

typedef enum PoolResult
{
	POOL_DONE,					/* delta added */
	POOL_FULL,					/* no place left (delta > 0) */
	POOL_UNLIMITED,				/* the rows have no allot */
	POOL_NO_ROWS				/* no rows yet */
} PoolResult;

static void
pool_init_entry(PlacePool *p, int64 contest_id, int64 entry_id)
{
	p->t = &counters_table;
	p->contest_id = contest_id;
	p->entry_id = entry_id;
	p->nkeys = 2;
	p->slot_att = 3;
	p->votes_att = 4;
	p->allot_att = 5;
}

static void
pool_init_contest(PlacePool *p, int64 contest_id)
{
	p->t = &contest_counters_table;
	p->contest_id = contest_id;
	p->entry_id = 0;
	p->nkeys = 1;
	p->slot_att = 2;
	p->votes_att = 0;
	p->allot_att = 3;
}

/*
 * Scan the pool's rows: one PoolRow per slot, *sum the votes the snapshot
 * sees, *limited whether any row has an allot.  With any, every version is
 * read (SnapshotAny, as counter_add_free under SERIALIZABLE) and the
 * snapshot's are counted.  Returns the number of rows.
 */
static int
pool_scan(PlacePool *p, Relation rel, Snapshot snapshot, bool any,
		  PoolRow *rows, int64 *sum, bool *limited)
{
	TupleDesc	desc = RelationGetDescr(rel);
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	int			n = 0;

	*sum = 0;
	*limited = false;
	ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(p->contest_id));
	ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(p->entry_id));
	scan = systable_beginscan(rel, p->t->pkey, true, any ? SnapshotAny : snapshot,
							  p->nkeys, keys);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		visible = !any || counter_version_visible(scan, tup, snapshot);
		bool		isnull;
		int32		slot = DatumGetInt32(heap_getattr(tup, p->slot_att, desc, &isnull));
		Datum		allot = heap_getattr(tup, p->allot_att, desc, &isnull);
		int			i;

		if (visible && p->votes_att > 0)
		{
			bool		vnull;
			Datum		votes = heap_getattr(tup, p->votes_att, desc, &vnull);

			if (!vnull)
				*sum += DatumGetInt64(votes);
		}
		for (i = 0; i < n && rows[i].slot != slot; i++)
			;
		/* (under SnapshotAny a row shows each of its versions) */
		if (i == n)
		{
			if (n == POOL_MAX_ROWS)
				continue;
			n++;
			rows[i].slot = slot;
			rows[i].tid = tup->t_self;
			rows[i].limited = false;
			rows[i].allot = 0;
			rows[i].debt = false;
		}
		if (!isnull)
		{
			*limited = rows[i].limited = true;
			if (DatumGetInt64(allot) < 0)
				rows[i].debt = true;
			if (visible)
			{
				rows[i].allot = DatumGetInt64(allot);
				rows[i].tid = tup->t_self;
			}
			else if (any)		/* a newer version: it may have places */
				rows[i].allot = Max(rows[i].allot, DatumGetInt64(allot));
		}
	}
	systable_endscan(scan);
	return n;
}

/* The pool row locked into slot: dvotes more votes, dallot more places. */
static void
pool_row_apply(PlacePool *p, Relation rel, TupleTableSlot *slot,
			   int64 dvotes, int64 dallot)
{
	bool		should_free;
	HeapTuple	old = ExecFetchSlotHeapTuple(slot, false, &should_free);
	TupleDesc	desc = RelationGetDescr(rel);
	int			cols[2];
	Datum		values[2];
	bool		nulls[2] = {false, false};
	int			ncols = 0;
	bool		isnull;
	HeapTuple	newtup;

	if (p->votes_att > 0)
	{
		Datum		d = heap_getattr(old, p->votes_att, desc, &isnull);

		if (isnull)
			elog(ERROR, "vote_guard.%s has a null count", p->t->relname);
		cols[ncols] = p->votes_att;
		values[ncols++] = Int64GetDatum(DatumGetInt64(d) + dvotes);
	}
	{
		Datum		d = heap_getattr(old, p->allot_att, desc, &isnull);

		cols[ncols] = p->allot_att;
		values[ncols++] = Int64GetDatum((isnull ? 0 : DatumGetInt64(d)) + dallot);
	}
	newtup = heap_modify_tuple_by_cols(old, desc, ncols, cols, values, nulls);
	if (vg_simple_heap_update(rel, &slot->tts_tid, newtup))
		table_index_insert(p->t, rel, newtup);
	heap_freetuple(newtup);
	if (should_free)
		heap_freetuple(old);
}

/* The allot of the row locked into slot (0 when null). */
static int64
pool_row_allot(PlacePool *p, TupleTableSlot *slot)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, p->allot_att, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * Take delta places of the pool (delta > 0) or give -delta back (delta <
 * 0), as described above.  *count: the pool's votes as the transaction
 * sees them after (counters only).  With undo, delta places are taken back
 * that this transaction gave back just before (into a row it holds), even
 * if that paid a debt: the pool is as before.
 */
static PoolResult
pool_add(PlacePool *p, int64 delta, bool undo, int64 *count)
{
	bool		take = delta > 0;
	int64		remaining = take ? delta : -delta;
	bool		held_dry = false;
	PoolRow		rows[POOL_MAX_ROWS];

	for (;;)
	{
		Relation	rel = table_open_checked(p->t, p->contest_id, RowExclusiveLock);
		bool		any = IsolationUsesXactSnapshot();
		Snapshot	snapshot;
		TupleTableSlot *locked;
		bool		limited;
		int64		sum;
		int64		applied = 0;
		int			wait_row = -1;
		int			n;
		int			i;

		if (!p->t->as_created ||
			pg_class_aclcheck(RelationGetRelid(rel), GetUserId(),
							  ACL_SELECT | ACL_UPDATE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("vote_guard.%s is not as vote_guard created it", p->t->relname),
					 errdetail("Votes for an entry or contest with a capacity need the table as the extension made it.")));
		CheckCmdReplicaIdentity(rel, CMD_UPDATE);

		snapshot = push_statement_snapshot();
		n = pool_scan(p, rel, snapshot, any, rows, &sum, &limited);
		if (n == 0 || !limited)
		{
			PopActiveSnapshot();
			table_close(rel, NoLock);
			*count = sum;
			return n == 0 ? POOL_NO_ROWS : POOL_UNLIMITED;
		}
		locked = table_slot_create(rel, NULL);

		/* a release pays the debt first */
		for (i = 0; !take && i < n && remaining > 0; i++)
		{
			TM_FailureData tmfd;
			int64		allot;
			int64		t;

			if (!rows[i].debt)
				continue;
			if (table_tuple_lock(rel, &rows[i].tid, snapshot, locked,
								 GetCurrentCommandId(true),
								 LockTupleNoKeyExclusive, LockWaitBlock,
								 TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd) != TM_Ok)
				continue;
			allot = pool_row_allot(p, locked);
			if (allot >= 0)
				continue;
			t = Min(-allot, remaining);
			pool_row_apply(p, rel, locked, -t, t);
			remaining -= t;
			applied -= t;
		}

		for (i = 0; i < n && remaining > 0; i++)
		{
			PoolRow    *row = &rows[(i + counter_slot()) % n];
			TM_FailureData tmfd;
			TM_Result	result;
			int64		t;

			if (take && !undo && row->allot < 1)
				continue;		/* dry when the scan began */
			result = table_tuple_lock(rel, &row->tid, snapshot, locked,
									  GetCurrentCommandId(true),
									  LockTupleNoKeyExclusive, LockWaitSkip,
									  TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
			if (result == TM_WouldBlock)
			{
				if (wait_row < 0)
					wait_row = (i + counter_slot()) % n;
				continue;
			}
			if (result != TM_Ok)
				continue;		/* deleted: a capacity being set anew */
			if (take)
			{
				t = undo ? remaining : Min(pool_row_allot(p, locked), remaining);
				if (t <= 0)
				{
					held_dry = true;
					continue;
				}
				pool_row_apply(p, rel, locked, t, -t);
				applied += t;
			}
			else
			{
				t = remaining;
				pool_row_apply(p, rel, locked, -t, t);
				applied -= t;
			}
			remaining -= t;
		}
		ExecDropSingleTupleTableSlot(locked);
		PopActiveSnapshot();
		table_close(rel, NoLock);
		*count = sum + applied;
		if (remaining == 0)
			return POOL_DONE;
		if (wait_row < 0)
		{
			if (take)
				return POOL_FULL;
			wait_row = counter_slot() % n;	/* every row held: wait for one */
		}

		if (held_dry && take)
		{
			/* poll: this holds a row another may wait for */
			pg_usleep(1000L);
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		/* wait for the row's holder, then look again */
		rel = table_open_checked(p->t, p->contest_id, RowExclusiveLock);
		snapshot = push_statement_snapshot();
		locked = table_slot_create(rel, NULL);
		{
			TM_FailureData tmfd;

			(void) table_tuple_lock(rel, &rows[wait_row].tid, snapshot, locked,
									GetCurrentCommandId(true),
									LockTupleNoKeyExclusive, LockWaitBlock,
									TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
		}
		ExecDropSingleTupleTableSlot(locked);
		PopActiveSnapshot();
		table_close(rel, NoLock);
	}
}

/*
 * A pool with a capacity but no rows yet (a restore, which does not dump
 * them; a TRUNCATE of votes): its rows, with base votes counted and the
 * rest of capacity as places.  Concurrent calls insert the same rows: one
 * wins, the others find them.
 */
static void
pool_create(PlacePool *p, int64 capacity, int64 base)
{
	pool_insert_rows(p, capacity - base, base, true);
}

/*
 * The places left of a pool (VG_NO_CAPACITY: none) in slot row slot, as
 * vote_guard.places_split splits them: evenly over VG_COUNTER_SLOTS rows,
 * the first ones one more; a debt all in slot 0.
 */
static int64
places_in_slot(int64 remaining, int slot)
{
	if (remaining < 0)
		return slot == 0 ? remaining : 0;
	return remaining / VG_COUNTER_SLOTS + (slot < remaining % VG_COUNTER_SLOTS ? 1 : 0);
}

/*
 * Insert a pool's slot rows: remaining places split over them (with
 * has_places; else one row without), votes in slot 0.  One row per
 * statement: Citus routes each to the contest's shard.  Rows that exist
 * stay (concurrent creators insert the same rows).
 */
static void
pool_insert_rows(PlacePool *p, int64 remaining, int64 votes, bool has_places)
{
	static SPIPlanPtr plan_entry = NULL;
	static SPIPlanPtr plan_contest = NULL;
	int			slot;

	if (plan_entry == NULL)
	{
		Oid			argtypes[5] = {INT8OID, INT8OID, INT4OID, INT8OID, INT8OID};

		plan_entry = vg_prepare_kept(
			"INSERT INTO vote_guard.counters (contest_id, entry_id, slot, votes, allot)"
			" VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
			5, argtypes);
		plan_contest = vg_prepare_kept(
			"INSERT INTO vote_guard.contest_counters (contest_id, slot, allot)"
			" VALUES ($1, $3, $5) ON CONFLICT DO NOTHING",
			5, argtypes);
	}
	for (slot = 0; slot < (has_places ? VG_COUNTER_SLOTS : 1); slot++)
	{
		Datum		args[5];
		char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

		args[0] = Int64GetDatum(p->contest_id);
		args[1] = Int64GetDatum(p->entry_id);
		args[2] = Int32GetDatum(slot);
		args[3] = Int64GetDatum(slot == 0 ? votes : 0);
		args[4] = Int64GetDatum(places_in_slot(remaining, slot));
		if (!has_places)
			nulls[4] = 'n';
		vg_execute(p->votes_att > 0 ? plan_entry : plan_contest,
				   args, nulls, SPI_OK_INSERT, 0);
	}
}

/*
 * pool_add, creating the rows of a pool with a capacity that has none.
 * With restore, the rows are created with delta counted, whatever the
 * capacity: the votes are there already, as after a restore (a debt if
 * they are more).  Returns false when full.
 */
static bool
places_add(PlacePool *p, int64 capacity, int64 delta, int flags,
		   bool *unlimited, int64 *count)
{
	bool		restore = (flags & VG_COUNT_RESTORE) != 0;
	int			attempt;

	*unlimited = false;
	for (attempt = 0;; attempt++)
	{
		switch (pool_add(p, delta, (flags & VG_COUNT_UNDO) != 0, count))
		{
			case POOL_DONE:
				return true;
			case POOL_FULL:
				return false;
			case POOL_UNLIMITED:
				*unlimited = true;
				return true;
			case POOL_NO_ROWS:
				if (capacity == VG_NO_CAPACITY || attempt > 0)
				{
					*unlimited = true;
					return true;
				}
				pool_create(p, capacity, restore ? delta : 0);
				if (restore)
				{
					*count = delta;
					return true;
				}
				break;
		}
	}
}

/*
 * Add delta votes to an entry without a capacity: to a counter row of the
 * entry that no other transaction holds (counter_add_free), else to a new
 * row in a slot not in use, or, when all are, to this backend's slot row,
 * waiting for its holder.  False if the rows turn out to have places (the
 * entry has a capacity): nothing is added then.
 */
static bool
counter_add_unlimited(int64 contest_id, int64 entry_id, int64 delta,
					  int64 *count)
{
	static SPIPlanPtr plan_new_row[2] = {NULL, NULL};
	Datum		args[4];
	int32		slot;
	bool		limited;
	int			shape;

	if (counter_add_free(contest_id, entry_id, delta, &slot, count, &limited))
		return true;
	if (limited)
		return false;
	shape = table_shape(&counters_table) > 0 ? 1 : 0;
	if (plan_new_row[shape] == NULL)
	{
		Oid			argtypes[4] = {INT8OID, INT8OID, INT4OID, INT8OID};

		/* 1.1: a row with places is not added to here (see pool_add) */
		plan_new_row[shape] = vg_prepare_kept(
			psprintf("INSERT INTO vote_guard.counters AS k (contest_id, entry_id, slot, votes)"
					 " VALUES ($1, $2, $3, $4)"
					 " ON CONFLICT (contest_id, entry_id, slot) DO UPDATE"
					 " SET votes = k.votes OPERATOR(pg_catalog.+) excluded.votes%s",
					 shape ? " WHERE k.allot IS NULL" : ""),
			4, argtypes);
	}
	args[0] = Int64GetDatum(contest_id);
	args[1] = Int64GetDatum(entry_id);
	args[2] = Int32GetDatum(slot);
	args[3] = Int64GetDatum(delta);
	vg_execute(plan_new_row[shape], args, NULL, SPI_OK_INSERT, 0);
	if (SPI_processed == 0)
		return false;
	*count = vg_entry_count(contest_id, entry_id);
	return true;
}

/*
 * Add delta votes to an entry's count.  Without a capacity: to a counter
 * row (counter_add_unlimited).  With one (capacity, as the caller read it;
 * or rows with places): delta places are taken from the entry's rows, or
 * given back (pool_add).  Returns false, having added nothing, when delta
 * > 0 and the entry is full; else true, with *count the entry's count as
 * the transaction sees it.  VG_COUNT_RESTORE: see places_add.  SPI is
 * connected.
 */
bool
vg_counter_add(int64 contest_id, int64 entry_id, int64 delta, int64 capacity,
			   int flags, int64 *count)
{
	PlacePool	p;
	bool		unlimited;

	if (capacity == VG_NO_CAPACITY &&
		counter_add_unlimited(contest_id, entry_id, delta, count))
		return true;
	if (table_shape(&counters_table) == 0)
		elog(ERROR, "vote_guard.counters has no places (allot) column");
	pool_init_entry(&p, contest_id, entry_id);
	if (!places_add(&p, capacity, delta, flags, &unlimited, count))
		return false;
	if (unlimited &&
		!counter_add_unlimited(contest_id, entry_id, delta, count))
		elog(ERROR, "vote_guard.counters: the rows of entry " INT64_FORMAT
			 " of contest " INT64_FORMAT " keep changing", entry_id, contest_id);
	return true;
}

/*
 * Take delta places of a contest with a capacity (delta > 0), or give them
 * back.  False when full.  SPI is connected.
 */
bool
vg_contest_places_add(int64 contest_id, int64 capacity, int64 delta, int flags)
{
	PlacePool	p;
	bool		unlimited;
	int64		count;

	if (table_shape(&contests_table) == 0)
		return true;			/* 1.0: no capacities */
	pool_init_contest(&p, contest_id);
	return places_add(&p, capacity, delta, flags, &unlimited, &count);
}

/*
 * Lock a contest's row FOR NO KEY UPDATE: votes under REPEATABLE READ and
 * SERIALIZABLE (which read it FOR SHARE) finish first, or fail.
 */
static void
contest_row_lock(int64 contest_id)
{
	static SPIPlanPtr plan = NULL;
	Datum		arg = Int64GetDatum(contest_id);

	if (plan == NULL)
	{
		Oid			argtypes[1] = {INT8OID};

		plan = vg_prepare_kept(
			"SELECT 1 FROM vote_guard.contests c"
			" WHERE c.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
			1, argtypes);
	}
	vg_execute(plan, &arg, NULL, SPI_OK_SELECT, 0);
}

/* The sum of the votes column of rows a kept plan locks. */
static int64
sum_locked_votes(SPIPlanPtr plan, Datum *args)
{
	int64		total = 0;
	uint64		r;

	vg_execute(plan, args, NULL, SPI_OK_SELECT, 0);
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		Datum		d = vg_spi_value(r, 1, &isnull);

		if (!isnull)
			total += DatumGetInt64(d);
	}
	return total;
}

/*
 * An entry's capacity was set (VG_NO_CAPACITY: removed): its counter rows
 * become one with its count and, with a capacity, the places left split
 * anew (a debt when the count is above).  Called under the contest's lock
 * in exclusive mode (entries trigger).  SPI need not be connected.
 */
void
vg_entry_places_reset(int64 contest_id, int64 entry_id, int64 capacity)
{
	static SPIPlanPtr plan_lock = NULL;
	static SPIPlanPtr plan_delete = NULL;
	Datum		args[2];
	int64		total;
	PlacePool	p;

	vg_spi_connect();
	if (plan_lock == NULL)
	{
		Oid			argtypes[2] = {INT8OID, INT8OID};

		plan_lock = vg_prepare_kept(
			"SELECT k.votes FROM vote_guard.counters k"
			" WHERE k.contest_id OPERATOR(pg_catalog.=) $1"
			"   AND k.entry_id OPERATOR(pg_catalog.=) $2 FOR UPDATE",
			2, argtypes);
		plan_delete = vg_prepare_kept(
			"DELETE FROM vote_guard.counters k"
			" WHERE k.contest_id OPERATOR(pg_catalog.=) $1"
			"   AND k.entry_id OPERATOR(pg_catalog.=) $2",
			2, argtypes);
	}
	args[0] = Int64GetDatum(contest_id);
	args[1] = Int64GetDatum(entry_id);
	contest_row_lock(contest_id);
	total = sum_locked_votes(plan_lock, args);
	vg_execute(plan_delete, args, NULL, SPI_OK_DELETE, 0);
	pool_init_entry(&p, contest_id, entry_id);
	pool_insert_rows(&p, capacity - total, total, capacity != VG_NO_CAPACITY);
	SPI_finish();
}

/*
 * A contest's capacity was set (VG_NO_CAPACITY: removed): its places left
 * split anew over its rows, from the count of all its entries.  Called
 * under the contest's lock in exclusive mode (contests trigger).  SPI need
 * not be connected.
 */
void
vg_contest_places_reset(int64 contest_id, int64 capacity)
{
	static SPIPlanPtr plan_lock = NULL;
	static SPIPlanPtr plan_delete = NULL;
	Datum		args[1];
	int64		total;
	PlacePool	p;

	vg_spi_connect();
	if (plan_lock == NULL)
	{
		Oid			argtypes[1] = {INT8OID};

		plan_lock = vg_prepare_kept(
			"SELECT k.votes FROM vote_guard.counters k"
			" WHERE k.contest_id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
			1, argtypes);
		plan_delete = vg_prepare_kept(
			"DELETE FROM vote_guard.contest_counters k"
			" WHERE k.contest_id OPERATOR(pg_catalog.=) $1",
			1, argtypes);
	}
	args[0] = Int64GetDatum(contest_id);
	contest_row_lock(contest_id);
	total = sum_locked_votes(plan_lock, args);
	vg_execute(plan_delete, args, NULL, SPI_OK_DELETE, 0);
	if (capacity != VG_NO_CAPACITY)
	{
		pool_init_contest(&p, contest_id);
		pool_insert_rows(&p, capacity - total, 0, true);
	}
	SPI_finish();
}

/*
 * Add a statement's net changes to the entries' counters, in entry order.
 * SPI is connected, with the trigger's transition tables registered.
 */
static void
counters_apply(const char *deltas)
{
	char	   *query = psprintf("SELECT d.contest_id, d.entry_id, d.delta"
								 "  FROM (%s) d ORDER BY 1, 2", deltas);
	SPITupleTable *rows;
	uint64		n;
	uint64		i;
	int			ret;
	int64		contest_delta = 0;

	ret = SPI_execute(query, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
	/* the statements below replace SPI_tuptable; this one stays to SPI_finish */
	rows = SPI_tuptable;
	n = SPI_processed;
	for (i = 0; i < n; i++)
	{
		Datum		col[3];
		bool		isnull;
		int			c;
		int64		contest_id,
					entry_id,
					delta,
					capacity = VG_NO_CAPACITY,
					count;

		for (c = 0; c < 3; c++)
			col[c] = SPI_getbinval(rows->vals[i], rows->tupdesc, c + 1, &isnull);
		contest_id = DatumGetInt64(col[0]);
		entry_id = DatumGetInt64(col[1]);
		delta = DatumGetInt64(col[2]);
		if (i == 0 || contest_id != DatumGetInt64(SPI_getbinval(rows->vals[i - 1],
																rows->tupdesc, 1,
																&isnull)))
		{
			/* as cast_vote: a change of capacity waits for this statement */
			if (!IsolationUsesXactSnapshot())
				vg_advisory_xact_lock((uint64) contest_id, VG_LOCK_CLASS_CONTEST,
									  ShareLock);
			contest_delta = 0;
		}
		if (table_shape(&entries_table) > 0)
			(void) vg_entry_lookup(contest_id, entry_id, &capacity);
		if (!vg_counter_add(contest_id, entry_id, delta, capacity,
							VG_COUNT_RESTORE, &count))
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("entry " INT64_FORMAT " of contest " INT64_FORMAT " is full",
							entry_id, contest_id),
					 errdetail("Its capacity leaves fewer than %lld places; cast_vote would have answered entry_full.",
							   (long long) delta)));
		contest_delta += delta;
		if (i == n - 1 ||
			contest_id != DatumGetInt64(SPI_getbinval(rows->vals[i + 1],
													  rows->tupdesc, 1, &isnull)))
			contest_places_follow(contest_id, contest_delta);
	}
	SPI_freetuptable(rows);
	pfree(query);
}

/* A statement's net change of a contest's votes takes or gives places. */
static void
contest_places_follow(int64 contest_id, int64 delta)
{
	VgContest	c;

	if (delta == 0 || table_shape(&contests_table) == 0 ||
		!vg_load_contest(contest_id, &c) || c.capacity == VG_NO_CAPACITY)
		return;
	if (!vg_contest_places_add(contest_id, c.capacity, delta, VG_COUNT_RESTORE))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("contest " INT64_FORMAT " is full", contest_id),
				 errdetail("Its capacity leaves fewer than %lld places; cast_vote would have answered contest_full.",
						   (long long) delta)));
}

static void
clear_counters(void)
{
	int			ret;

	/* the places of entries and contests with a capacity are made anew */
	ret = SPI_execute(table_shape(&contests_table) > 0 ?
					  "TRUNCATE vote_guard.counters, vote_guard.contest_counters" :
					  "TRUNCATE vote_guard.counters", false, 0);
	if (ret != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
}


/*
 * The counters follow a statement on votes that was not one of cast_vote's
 * own (the votes trigger): the net change of each entry, from the
 * statement's transition tables, or every counter gone with a TRUNCATE.
 */
void
vg_counters_follow(TriggerData *trigdata)
{
	TriggerEvent event = trigdata->tg_event;

	vg_spi_connect();
	if (TRIGGER_FIRED_BY_TRUNCATE(event))
		clear_counters();
	else
	{
		if (SPI_register_trigger_data(trigdata) != SPI_OK_TD_REGISTER)
			elog(ERROR, "SPI_register_trigger_data failed");
		if (TRIGGER_FIRED_BY_INSERT(event))
			counters_apply(counter_deltas[0]);
		else if (TRIGGER_FIRED_BY_DELETE(event))
			counters_apply(counter_deltas[1]);
		else
			counters_apply(counter_deltas[2]);
	}
	SPI_finish();
}
