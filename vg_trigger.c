/*-------------------------------------------------------------------------
 *
 * vg_trigger.c
 *	  The triggers: entry points, like cast_vote, that keep every write to
 *	  vote_guard's tables safe, whether it comes from cast_vote or from the
 *	  owner's own SQL.  Each one decides what to do and calls down into the
 *	  policy and the storage layers.
 *
 * - votes_trigger: the counters follow every INSERT, UPDATE, DELETE and
 *   TRUNCATE of votes (vg_counters_follow), but cast_vote's own;
 * - votes_policy_trigger: the owner's direct writes obey the contest's
 *   policy (vg_policy_write);
 * - contests_trigger: a change of a contest row (close_contest above all)
 *   takes the contest's lock in exclusive mode, so it waits for the votes
 *   in flight and no vote starts until it commits;
 * - entries_trigger: an entry with votes is neither removed nor renumbered;
 * - secrets_trigger: every backend forgets its derived keys.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/datum.h"
#include "utils/rel.h"

#include "vg_policy.h"
#include "vg_storage.h"

static void
check_trigger_call(FunctionCallInfo fcinfo, const char *name)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s must be called as a trigger", name)));
}

PG_FUNCTION_INFO_V1(vg_votes_trigger);

/*
 * AFTER INSERT/UPDATE/DELETE/TRUNCATE (statement) on votes: the counters
 * follow every write but cast_vote's, which moves the counter itself.
 */
Datum
vg_votes_trigger(PG_FUNCTION_ARGS)
{
	check_trigger_call(fcinfo, "vote_guard.votes_trigger()");
	/* Citus moving the shard: the counters come from the source */
	if (vg_citus_shard_apply(((TriggerData *) fcinfo->context)->tg_relation))
		return PointerGetDatum(NULL);
	if (!(vg_trusted_write & VG_WRITE_COUNTED))
		vg_counters_follow((TriggerData *) fcinfo->context);
	return PointerGetDatum(NULL);
}

PG_FUNCTION_INFO_V1(vg_votes_policy_trigger);

/*
 * BEFORE INSERT OR UPDATE (row) on votes: the owner's direct writes obey the
 * contest's policy.  cast_vote's and change_vote's own writes, decided under
 * the same locks, pass straight through.
 */
Datum
vg_votes_policy_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	bool		update;

	check_trigger_call(fcinfo, "vote_guard.votes_policy_trigger()");
	update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	/* decided on the source of a Citus shard move, or by cast_vote */
	if ((vg_trusted_write & VG_WRITE_DECIDED) ||
		vg_citus_shard_apply(trigdata->tg_relation))
		return PointerGetDatum(update ? trigdata->tg_newtuple :
							   trigdata->tg_trigtuple);
	return PointerGetDatum(vg_policy_write(trigdata->tg_relation,
										   update ? trigdata->tg_trigtuple : NULL,
										   update ? trigdata->tg_newtuple :
										   trigdata->tg_trigtuple));
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

/*
 * A row's capacity (1.1; VG_NO_CAPACITY when null or when the table has no
 * such column, a database still at the 1.0 schema).
 */
static int64
row_capacity(HeapTuple tup, TupleDesc desc)
{
	int			attnum = SPI_fnumber(desc, "capacity");
	bool		isnull;
	Datum		d;

	if (attnum <= 0)
		return VG_NO_CAPACITY;
	d = heap_getattr(tup, attnum, desc, &isnull);
	return isnull ? VG_NO_CAPACITY : DatumGetInt64(d);
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
	vg_cache_invalidate(trigdata->tg_relation);

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		TupleDesc	desc = RelationGetDescr(trigdata->tg_relation);
		int64		capacity = row_capacity(trigdata->tg_newtuple, desc);

		check_fixed_settings(trigdata->tg_trigtuple, trigdata->tg_newtuple, desc);
		/* no vote in flight: the places left are split anew */
		if (capacity != row_capacity(trigdata->tg_trigtuple, desc))
			vg_contest_places_reset(contest_id, capacity);
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
 * also empties the backends' caches of known entries at commit, before the
 * contest lock is released.
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

	check_trigger_call(fcinfo, "vote_guard.entries_trigger()");
	desc = RelationGetDescr(trigdata->tg_relation);
	oldtup = trigdata->tg_trigtuple;
	contest_id = DatumGetInt64(heap_getattr(oldtup, 1, desc, &isnull));
	entry_id = DatumGetInt64(heap_getattr(oldtup, 2, desc, &isnull));

	/* Citus moving the shard: the source checked the change */
	if (vg_citus_shard_apply(trigdata->tg_relation))
	{
		vg_cache_invalidate(trigdata->tg_relation);
		return PointerGetDatum(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
							   trigdata->tg_newtuple : oldtup);
	}
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		HeapTuple	newtup = trigdata->tg_newtuple;

		if (DatumGetInt64(heap_getattr(newtup, 1, desc, &isnull)) == contest_id &&
			DatumGetInt64(heap_getattr(newtup, 2, desc, &isnull)) == entry_id)
		{
			int64		capacity = row_capacity(newtup, desc);

			if (capacity != row_capacity(oldtup, desc))
			{
				/*
				 * A new capacity: wait for the votes in flight, hold off new
				 * ones, split the places left anew; every backend forgets
				 * the entry's old capacity at commit.
				 */
				vg_lock_contest(contest_id, true);
				vg_cache_invalidate(trigdata->tg_relation);
				vg_entry_places_reset(contest_id, entry_id, capacity);
			}
			return PointerGetDatum(newtup);
		}
	}

	vg_lock_contest(contest_id, true);
	/* at commit, every backend forgets the entries it knows to exist */
	vg_cache_invalidate(trigdata->tg_relation);

	if (vg_entry_has_votes(contest_id, entry_id))
		ereport(ERROR,
				(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
				 errmsg("entry " INT64_FORMAT " has votes", entry_id),
				 errdetail("It is an entry of contest " INT64_FORMAT ".", contest_id),
				 errhint("Delete its votes first.")));

	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(oldtup);
}

PG_FUNCTION_INFO_V1(vg_secrets_trigger);

/*
 * AFTER INSERT/DELETE/TRUNCATE (statement) on secrets: every backend drops
 * its derived keys at commit.
 */
Datum
vg_secrets_trigger(PG_FUNCTION_ARGS)
{
	check_trigger_call(fcinfo, "vote_guard.secrets_trigger()");
	vg_cache_invalidate(((TriggerData *) fcinfo->context)->tg_relation);
	return PointerGetDatum(NULL);
}
