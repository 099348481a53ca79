/*-------------------------------------------------------------------------
 *
 * vg_compat.h
 *	  The one place where vote_guard adapts to PostgreSQL major versions.
 *
 * Every PG_VERSION_NUM test of the project is in this file; the rest of the
 * code uses the names defined here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef VG_COMPAT_H
#define VG_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "vote_guard requires PostgreSQL 15 or later"
#endif

/* The varlena macros (VARDATA_ANY, VARSIZE_ANY_EXHDR): in varatt.h since 16. */
#if PG_VERSION_NUM >= 160000
#include "varatt.h"
#endif

/* The backend's small dense number: MyBackendId until 16, MyProcNumber since 17. */
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define VG_MY_BACKEND_NUMBER	((int) MyProcNumber)
#else
#include "storage/backendid.h"
#define VG_MY_BACKEND_NUMBER	((int) MyBackendId)
#endif

/*
 * simple_heap_update, and whether the new row version needs index entries
 * (it is not heap-only): an out argument since 16.
 */
#include "access/heapam.h"
#if PG_VERSION_NUM >= 160000
static inline bool
vg_simple_heap_update(Relation rel, ItemPointer otid, HeapTuple tup)
{
	TU_UpdateIndexes update_indexes;

	simple_heap_update(rel, otid, tup, &update_indexes);
	return update_indexes != TU_None;
}
#else
static inline bool
vg_simple_heap_update(Relation rel, ItemPointer otid, HeapTuple tup)
{
	simple_heap_update(rel, otid, tup);
	return !HeapTupleIsHeapOnly(tup);
}
#endif

/*
 * The index entries of a row just inserted speculatively (INSERT ... ON
 * CONFLICT); every unique index is an arbiter.  Since 16 the executor also
 * asks whether only summarizing indexes need the entries.
 */
#include "executor/executor.h"
static inline List *
vg_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot,
					   EState *estate, bool *spec_conflict)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, true, spec_conflict,
								 NIL, false);
#else
	return ExecInsertIndexTuples(rri, slot, estate, false, true, spec_conflict,
								 NIL);
#endif
}

/*
 * The non-conclusive conflict check of INSERT ... ON CONFLICT for a row not
 * inserted yet: since 18 it also takes the row's own TID, to skip it; none
 * (invalid) before the insert, as the executor passes.
 */
static inline bool
vg_check_index_constraints(ResultRelInfo *rri, TupleTableSlot *slot,
						   EState *estate, ItemPointer conflict)
{
#if PG_VERSION_NUM >= 180000
	ItemPointerData none;

	ItemPointerSetInvalid(&none);
	return ExecCheckIndexConstraints(rri, slot, estate, conflict, &none, NIL);
#else
	return ExecCheckIndexConstraints(rri, slot, estate, conflict, NIL);
#endif
}

#endif							/* VG_COMPAT_H */
