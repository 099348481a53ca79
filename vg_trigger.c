/*-------------------------------------------------------------------------
 *
 * vg_trigger.c
 *	  Locks and triggers that keep every write to vote_guard's tables safe,
 *	  whether it comes from cast_vote or from the owner's own SQL.
 *
 * - votes_trigger keeps vote_guard.counters equal to the vote rows, for
 *   INSERT, UPDATE, DELETE and TRUNCATE alike.
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

/* Add delta to the backend's counter slot of an entry.  SPI is connected. */
static void
counter_add(int64 contest_id, int64 entry_id, int64 delta)
{
	static SPIPlanPtr plan = NULL;
	Datum		args[4];

	if (plan == NULL)
	{
		Oid			argtypes[4] = {INT8OID, INT8OID, INT4OID, INT8OID};

		plan = vg_prepare_kept("INSERT INTO vote_guard.counters AS k"
							   "       (contest_id, entry_id, slot, votes)"
							   " VALUES ($1, $2, $3, $4)"
							   " ON CONFLICT (contest_id, entry_id, slot) DO UPDATE"
							   " SET votes = k.votes OPERATOR(pg_catalog.+) excluded.votes",
							   4, argtypes);
	}

	args[0] = Int64GetDatum(contest_id);
	args[1] = Int64GetDatum(entry_id);
	args[2] = Int32GetDatum(VG_MY_BACKEND_NUMBER % VG_COUNTER_SLOTS);
	args[3] = Int64GetDatum(delta);
	vg_execute(plan, args, NULL, SPI_OK_INSERT, 0);
}

static void
clear_counters(void)
{
	int			ret;

	ret = SPI_execute("TRUNCATE vote_guard.counters", false, 0);
	if (ret != SPI_OK_UTILITY)
		elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(ret));
}

/* contest_id and entry_id of a votes row (columns 1 and 3) */
static void
vote_keys(HeapTuple tuple, TupleDesc desc, int64 *contest_id, int64 *entry_id)
{
	bool		isnull;

	*contest_id = DatumGetInt64(heap_getattr(tuple, 1, desc, &isnull));
	*entry_id = DatumGetInt64(heap_getattr(tuple, 3, desc, &isnull));
}

PG_FUNCTION_INFO_V1(vg_votes_trigger);

/* AFTER INSERT/UPDATE/DELETE (row) and TRUNCATE (statement) on votes */
Datum
vg_votes_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	TriggerEvent event;
	int64		old_contest,
				old_entry,
				new_contest,
				new_entry;

	check_trigger_call(fcinfo, "vote_guard.votes_trigger()");
	event = trigdata->tg_event;
	desc = RelationGetDescr(trigdata->tg_relation);

	SPI_connect();

	if (TRIGGER_FIRED_BY_TRUNCATE(event))
		clear_counters();
	else if (TRIGGER_FIRED_BY_INSERT(event))
	{
		vote_keys(trigdata->tg_trigtuple, desc, &new_contest, &new_entry);
		counter_add(new_contest, new_entry, 1);
	}
	else if (TRIGGER_FIRED_BY_DELETE(event))
	{
		vote_keys(trigdata->tg_trigtuple, desc, &old_contest, &old_entry);
		counter_add(old_contest, old_entry, -1);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(event))
	{
		vote_keys(trigdata->tg_trigtuple, desc, &old_contest, &old_entry);
		/* the policy trigger keeps a vote in its contest */
		vote_keys(trigdata->tg_newtuple, desc, &new_contest, &new_entry);
		/* move the count, lower entry first so two moves cannot deadlock */
		if (old_entry < new_entry)
		{
			counter_add(old_contest, old_entry, -1);
			counter_add(new_contest, new_entry, 1);
		}
		else if (old_entry > new_entry)
		{
			counter_add(new_contest, new_entry, 1);
			counter_add(old_contest, old_entry, -1);
		}
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

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		check_fixed_settings(trigdata->tg_trigtuple, trigdata->tg_newtuple,
							 RelationGetDescr(trigdata->tg_relation));
		return PointerGetDatum(trigdata->tg_newtuple);
	}
	return PointerGetDatum(trigdata->tg_trigtuple);
}
