/*-------------------------------------------------------------------------
 *
 * vg_drop_guard.c
 *	  The event trigger that keeps DROP EXTENSION vote_guard from deleting
 *	  contests and votes unasked; the setting vote_guard.allow_drop.
 *
 * DROP EXTENSION vote_guard needs no CASCADE: every table is a member of the
 * extension and goes with it, votes, contests and the secrets that recognise
 * voters.  The install script creates an event trigger on ddl_command_start
 * for DROP EXTENSION, DROP SCHEMA and DROP OWNED that calls vg_drop_guard.
 * When the statement would drop vote_guard (the extension by name, its
 * schema by name, or everything its owner or its schema's owner owns) while
 * vote_guard holds a contest, it raises an error, unless vote_guard.allow_drop
 * is on: "SET LOCAL vote_guard.allow_drop = on" confirms the drop for the
 * transaction.
 *
 * A role that may not drop the target is left to PostgreSQL's own refusal:
 * it learns nothing of vote_guard's contents here.
 *
 * Event triggers do not fire in single-user mode, nor when a superuser has
 * disabled this one (ALTER EVENT TRIGGER ... DISABLE, or event_triggers =
 * off since PostgreSQL 17); DROP DATABASE fires none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/guc.h"

#include "vg_storage.h"
#include "vg_utils.h"

/* vote_guard.allow_drop */
static bool vg_allow_drop = false;

/* declared by fmgr.h only since PostgreSQL 16 */
extern PGDLLEXPORT void _PG_init(void);

void
_PG_init(void)
{
	DefineCustomBoolVariable("vote_guard.allow_drop",
							 "Allows dropping extension vote_guard while it holds contests.",
							 "Set it with SET LOCAL, for the transaction that drops it.",
							 &vg_allow_drop,
							 false,
							 PGC_USERSET,
							 0,
							 NULL, NULL, NULL);
}

/* What a DROP statement would drop of vote_guard. */
typedef enum VgDropTarget
{
	VG_DROP_NONE,
	VG_DROP_EXTENSION,
	VG_DROP_SCHEMA,
	VG_DROP_OWNED
} VgDropTarget;

/* Does a DropStmt's list of names (String nodes) name vote_guard? */
static bool
names_vote_guard(List *objects)
{
	ListCell   *lc;

	foreach(lc, objects)
	{
		if (strcmp(strVal(lfirst(lc)), "vote_guard") == 0)
			return true;
	}
	return false;
}

/*
 * The extension's owner and its schema's owner, and whether the current user
 * has their privileges (and so may drop what they own).  False when vote_guard
 * is not installed.  SPI connected.
 */
static bool
read_owners(Oid *extowner, bool *may_ext, Oid *nspowner, bool *may_nsp)
{
	bool		isnull;

	if (SPI_execute("SELECT e.extowner, pg_catalog.pg_has_role(e.extowner, 'USAGE'),"
					"       n.nspowner, pg_catalog.pg_has_role(n.nspowner, 'USAGE')"
					"  FROM pg_catalog.pg_extension e"
					"  JOIN pg_catalog.pg_namespace n"
					"    ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
					" WHERE e.extname OPERATOR(pg_catalog.=) 'vote_guard'",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "SPI_execute failed reading pg_extension");
	if (SPI_processed == 0)
		return false;
	*extowner = DatumGetObjectId(vg_spi_value(0, 1, &isnull));
	*may_ext = DatumGetBool(vg_spi_value(0, 2, &isnull));
	*nspowner = DatumGetObjectId(vg_spi_value(0, 3, &isnull));
	*may_nsp = DatumGetBool(vg_spi_value(0, 4, &isnull));
	return true;
}

PG_FUNCTION_INFO_V1(vg_drop_guard);

/*
 * vote_guard.drop_guard() RETURNS event_trigger, on ddl_command_start for
 * DROP EXTENSION, DROP SCHEMA and DROP OWNED.
 */
Datum
vg_drop_guard(PG_FUNCTION_ARGS)
{
	Node	   *parsetree;
	VgDropTarget target = VG_DROP_NONE;
	Oid			extowner,
				nspowner;
	bool		may_ext,
				may_nsp;
	char	   *owned_role = NULL;
	int64		contests,
				votes;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("vote_guard.drop_guard() may only be called as an event trigger")));
	if (vg_allow_drop)
		PG_RETURN_VOID();

	parsetree = ((EventTriggerData *) fcinfo->context)->parsetree;
	if (IsA(parsetree, DropStmt))
	{
		DropStmt   *stmt = (DropStmt *) parsetree;

		if (stmt->removeType == OBJECT_EXTENSION && names_vote_guard(stmt->objects))
			target = VG_DROP_EXTENSION;
		else if (stmt->removeType == OBJECT_SCHEMA && names_vote_guard(stmt->objects))
			target = VG_DROP_SCHEMA;
	}
	else if (IsA(parsetree, DropOwnedStmt))
		target = VG_DROP_OWNED;
	if (target == VG_DROP_NONE)
		PG_RETURN_VOID();

	vg_spi_connect();
	if (!read_owners(&extowner, &may_ext, &nspowner, &may_nsp))
		target = VG_DROP_NONE;
	else if (target == VG_DROP_EXTENSION && !may_ext)
		target = VG_DROP_NONE;
	else if (target == VG_DROP_SCHEMA && !may_nsp)
		target = VG_DROP_NONE;
	else if (target == VG_DROP_OWNED)
	{
		ListCell   *lc;

		target = VG_DROP_NONE;
		foreach(lc, ((DropOwnedStmt *) parsetree)->roles)
		{
			Oid			role = get_rolespec_oid(lfirst(lc), true);

			if ((role == extowner && may_ext) || (role == nspowner && may_nsp))
			{
				target = VG_DROP_OWNED;
				owned_role = GetUserNameFromId(role, false);
				break;
			}
		}
	}
	if (target == VG_DROP_NONE)
	{
		SPI_finish();
		PG_RETURN_VOID();
	}

	vg_count_contents(extowner, &contests, &votes);
	SPI_finish();
	if (contests == 0)
		PG_RETURN_VOID();

	ereport(ERROR,
			(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
			 target == VG_DROP_EXTENSION ?
			 errmsg("cannot drop extension vote_guard while it holds contests") :
			 target == VG_DROP_SCHEMA ?
			 errmsg("cannot drop schema vote_guard while extension vote_guard holds contests") :
			 errmsg("cannot drop the objects owned by role \"%s\" while extension vote_guard holds contests",
					owned_role),
			 errdetail("vote_guard holds %lld contest(s) and %lld vote(s); the drop would delete "
					   "them with the secrets that recognise the voters.",
					   (long long) contests, (long long) votes),
			 errhint("To keep them, dump the database first. To drop anyway, run "
					 "SET LOCAL vote_guard.allow_drop = on in the same transaction.")));
	PG_RETURN_VOID();			/* keep the compiler quiet */
}
