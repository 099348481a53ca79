/*-------------------------------------------------------------------------
 *
 * vg_policy.h
 *	  The policy layer: a contest's rules (windows, limits, cooldowns) and
 *	  the locks they are decided under.
 *
 *-------------------------------------------------------------------------
 */
#ifndef VG_POLICY_H
#define VG_POLICY_H

#include "vg_types.h"

#include "access/htup.h"
#include "utils/relcache.h"

extern void vg_lock_contest(int64 contest_id, bool exclusive);
extern bool vg_policy_needs_locks(const VgContest *c);
extern int32 vg_window_no(const VgContest *c, TimestampTz t);
extern void vg_lock_voter(int64 contest_id, const VgVoter *v);
extern void vg_decide(int64 contest_id, int64 entry_id, const VgContest *c,
					  VgVoter *v, Datum request_id, TimestampTz t,
					  int64 exclude_vote_id, VgDecision *d);
extern HeapTuple vg_policy_write(Relation rel, HeapTuple oldtup,
								 HeapTuple newtup);

#endif							/* VG_POLICY_H */
