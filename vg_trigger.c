/*-------------------------------------------------------------------------
 *
 * vg_trigger.c
 *	  Locks and triggers that keep every write to vote_guard's tables safe,
 *	  whether it comes from cast_vote or from the owner's own SQL.
 *
 * - vg_counter_add moves an entry's counter, for cast_vote and for
 *   votes_trigger, which keeps vote_guard.counters equal to the vote rows
 *   for INSERT, UPDATE, DELETE and TRUNCATE alike.
 * - contests_trigger takes the contest's lock in exclusive mode before a
 *   contest row changes, so a change (close_contest above all) waits for the
 *   votes in flight and no vote starts until it commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/rel.h"

#include "vote_guard.h"
#include "vg_compat.h"

/*
 * Take a contest's lock for the rest of the transaction: shared by the votes
 * of the contest, exclusive for a change of the contest row.
 */
void
vg_lock_contest(int64 contest_id, bool exclusive)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId,
						 (uint32) ((uint64) contest_id >> 32),
						 (uint32) contest_id,
						 VG_LOCK_CLASS_CONTEST);
	(void) LockAcquire(&tag, exclusive ? ExclusiveLock : ShareLock,
					   false, false);
}

static void
check_trigger_call(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as a trigger", name)));
}

/* The counter slot this backend adds to. */
int32
vg_counter_slot(void)
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

/*
 * Add delta votes to an entry's count: to a counter row of the entry that no
 * other transaction holds (vg_counter_add_free), else to a new row in a slot
 * not in use, or, when all are, to this backend's slot row, waiting for its
 * holder.  Returns the entry's count with it, as the transaction sees it.
 * SPI is connected.
 */
int64
vg_counter_add(int64 contest_id, int64 entry_id, int64 delta)
{
	static SPIPlanPtr plan_new_row = NULL;
	Datum		args[4];
	int32		slot;
	int64		count;

	if (vg_counter_add_free(contest_id, entry_id, delta, &slot, &count))
		return count;
	if (plan_new_row == NULL)
	{
		Oid			argtypes[4] = {INT8OID, INT8OID, INT4OID, INT8OID};

		plan_new_row = vg_prepare_kept(
			"INSERT INTO vote_guard.counters AS k (contest_id, entry_id, slot, votes)"
			" VALUES ($1, $2, $3, $4)"
			" ON CONFLICT (contest_id, entry_id, slot) DO UPDATE"
			" SET votes = k.votes OPERATOR(pg_catalog.+) excluded.votes",
			4, argtypes);
	}
	args[0] = Int64GetDatum(contest_id);
	args[1] = Int64GetDatum(entry_id);
	args[2] = Int32GetDatum(slot);
	args[3] = Int64GetDatum(delta);
	vg_execute(plan_new_row, args, NULL, SPI_OK_INSERT, 0);
	return vg_entry_count(contest_id, entry_id);
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

		for (c = 0; c < 3; c++)
			col[c] = SPI_getbinval(rows->vals[i], rows->tupdesc, c + 1, &isnull);
		(void) vg_counter_add(DatumGetInt64(col[0]), DatumGetInt64(col[1]),
							  DatumGetInt64(col[2]));
	}
	SPI_freetuptable(rows);
	pfree(query);
}

static void
clear_counters(void)
{
	int			ret;

	ret = SPI_execute("TRUNCATE vote_guard.counters", false, 0);
	if (ret != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
}

PG_FUNCTION_INFO_V1(vg_votes_trigger);

/*
 * AFTER INSERT/UPDATE/DELETE/TRUNCATE (statement) on votes: the counters
 * follow every write.
 */
Datum
vg_votes_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TriggerEvent event;

	check_trigger_call(fcinfo, "vote_guard.votes_trigger()");
	event = trigdata->tg_event;
	if (vg_trusted_write & VG_WRITE_COUNTED)
		return PointerGetDatum(NULL);	/* cast_vote moved the counter */

	SPI_connect();
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
	return PointerGetDatum(NULL);
}

/*
 * The settings that the stored votes were decided and keyed under: changing
 * them would make the stored keys, windows and slots mean something else.
 */
static void
check_fixed_settings(HeapTuple oldtup, HeapTuple newtup, TupleDesc desc)
{
	static const char *const fixed[] = {
		"dedupe_on", "ipv4_prefix", "ipv6_prefix", "votes_per_voter",
		"per_entry_limit", "vote_window", "secret_version", "opens_at"
	};
	size_t		i;

	for (i = 0; i < lengthof(fixed); i++)
	{
		int			attnum = SPI_fnumber(desc, fixed[i]);
		Form_pg_attribute att;
		bool		n1,
					n2;
		Datum		d1,
					d2;

		if (attnum <= 0)
			elog(ERROR, "vote_guard.contests has no column \"%s\"", fixed[i]);
		att = TupleDescAttr(desc, attnum - 1);
		d1 = heap_getattr(oldtup, attnum, desc, &n1);
		d2 = heap_getattr(newtup, attnum, desc, &n2);
		if (n1 == n2 && (n1 || datumIsEqual(d1, d2, att->attbyval, att->attlen)))
			continue;
		/* opens_at only numbers the vote windows */
		if (strcmp(fixed[i], "opens_at") == 0)
		{
			bool		no_window;

			(void) heap_getattr(newtup, SPI_fnumber(desc, "vote_window"), desc,
								&no_window);
			if (no_window)
				continue;
		}
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s of a contest cannot be changed", fixed[i]),
				 errdetail("The contest's votes were decided and keyed under it."),
				 errhint("Create a new contest with the new settings.")));
	}
}

PG_FUNCTION_INFO_V1(vg_contests_trigger);

/*
 * BEFORE UPDATE/DELETE (row) on contests: wait for the votes in flight; keep
 * the settings the votes depend on.
 */
Datum
vg_contests_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	bool		isnull;
	int64		contest_id;

	check_trigger_call(fcinfo, "vote_guard.contests_trigger()");
	contest_id = DatumGetInt64(heap_getattr(trigdata->tg_trigtuple, 1,
											RelationGetDescr(trigdata->tg_relation),
											&isnull));
	vg_lock_contest(contest_id, true);

	/* every backend forgets its copy of the contest when this commits */
	CacheInvalidateRelcache(trigdata->tg_relation);

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		check_fixed_settings(trigdata->tg_trigtuple, trigdata->tg_newtuple,
							 RelationGetDescr(trigdata->tg_relation));
		return PointerGetDatum(trigdata->tg_newtuple);
	}
	return PointerGetDatum(trigdata->tg_trigtuple);
}

PG_FUNCTION_INFO_V1(vg_entries_trigger);

/*
 * BEFORE UPDATE/DELETE (row) on entries: an entry that has votes is neither
 * removed nor renumbered.  First wait for the votes in flight in its contest
 * (the contest lock for READ COMMITTED voters, the contest row for the
 * others), so none of them can add a vote unseen.  A removal or renumbering
 * also empties the backends' caches of known entries (vg_lookup.c) at
 * commit, before the contest lock is released.
 */
Datum
vg_entries_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	oldtup;
	bool		isnull;
	int64		contest_id,
				entry_id;
	Datum		args[2];
	static SPIPlanPtr plan_contest_row = NULL;
	static SPIPlanPtr plan_votes = NULL;

	check_trigger_call(fcinfo, "vote_guard.entries_trigger()");
	desc = RelationGetDescr(trigdata->tg_relation);
	oldtup = trigdata->tg_trigtuple;
	contest_id = DatumGetInt64(heap_getattr(oldtup, 1, desc, &isnull));
	entry_id = DatumGetInt64(heap_getattr(oldtup, 2, desc, &isnull));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	newtup = trigdata->tg_newtuple;

		if (DatumGetInt64(heap_getattr(newtup, 1, desc, &isnull)) == contest_id &&
			DatumGetInt64(heap_getattr(newtup, 2, desc, &isnull)) == entry_id)
			return PointerGetDatum(newtup);
	}

	vg_lock_contest(contest_id, true);
	/* at commit, every backend forgets the entries it knows to exist */
	CacheInvalidateRelcache(trigdata->tg_relation);

	SPI_connect();
	if (plan_votes == NULL)
	{
		Oid			argtypes[2] = {INT8OID, INT8OID};

		plan_contest_row = vg_prepare_kept(
			"SELECT 1 FROM vote_guard.contests c"
			" WHERE c.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE",
			1, argtypes);
		plan_votes = vg_prepare_kept(
			"SELECT 1 FROM vote_guard.votes v"
			" WHERE v.contest_id OPERATOR(pg_catalog.=) $1"
			"   AND v.entry_id OPERATOR(pg_catalog.=) $2 LIMIT 1",
			2, argtypes);
	}
	args[0] = Int64GetDatum(contest_id);
	args[1] = Int64GetDatum(entry_id);
	vg_execute(plan_contest_row, args, NULL, SPI_OK_SELECT, 0);
	vg_execute(plan_votes, args, NULL, SPI_OK_SELECT, 1);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("entry " INT64_FORMAT " has votes", entry_id),
				 errdetail("It is an entry of contest " INT64_FORMAT ".", contest_id),
				 errhint("Delete its votes first.")));
	SPI_finish();

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(oldtup);
}
