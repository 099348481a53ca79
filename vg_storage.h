/*-------------------------------------------------------------------------
 *
 * vg_storage.h
 *	  The storage layer: every access to vote_guard's tables.
 *
 * Callers above (policy, entry points, triggers) never name a table; they
 * ask for a contest, an entry, a voter's votes, a counter.  Unless said
 * otherwise, a function here expects SPI to be connected.
 *
 *-------------------------------------------------------------------------
 */
#ifndef VG_STORAGE_H
#define VG_STORAGE_H

#include "vg_types.h"
#include "vg_keys.h"

#include "commands/trigger.h"
#include "utils/relcache.h"

/*
 * What cast_vote and change_vote have already done for the row they write:
 * the triggers skip that part.  Set only around their own statements.
 */
#define VG_WRITE_DECIDED	0x01	/* policy decided under the voter's locks */
#define VG_WRITE_COUNTED	0x02	/* counter moved by the caller itself */
extern int	vg_trusted_write;

/* contests */
extern bool vg_load_contest(int64 contest_id, VgContest *c);
extern bool vg_contest_key_settings(int64 contest_id, int32 *ipv4_prefix,
									int32 *ipv6_prefix, int32 *secret_version);
extern VgContestKeys *vg_contest_keys(int64 contest_id, int32 secret_version);

/* entries */
extern bool vg_entry_exists(int64 contest_id, int64 entry_id);
extern bool vg_entry_lookup(int64 contest_id, int64 entry_id, int64 *capacity);
extern bool vg_entry_has_votes(int64 contest_id, int64 entry_id);

/* votes */
extern bool vg_vote_insert(int64 contest_id, int64 entry_id, const VgVoter *v,
						   text *request_id, int32 window_no, int64 *vote_id);
extern int	vg_voter_votes(int64 contest_id, const VgVoter *v, Datum request_id,
						   int32 window_no, TimestampTz since,
						   int64 exclude_vote_id, bool latest,
						   VgPastVote **votes);
extern int	vg_user_vote_find(int64 contest_id, text *user_id, int32 window_no,
							  bool has_entry, int64 entry_id, int64 *vote_id);
extern bool vg_user_vote_lock(int64 contest_id, int64 vote_id, text *user_id,
							  int32 window_no, bool has_entry, int64 entry_id,
							  int64 *cur_entry, VgVoter *v);
extern void vg_vote_move(int64 contest_id, int64 vote_id, int64 new_entry,
						 bool counted);
extern void vg_vote_delete(int64 contest_id, int64 vote_id);

/* counters */
extern int64 vg_entry_count(int64 contest_id, int64 entry_id);
#define VG_COUNT_RESTORE	0x01	/* a pool without rows counts the votes as there */
#define VG_COUNT_UNDO		0x02	/* take back places just given back */
extern bool vg_counter_add(int64 contest_id, int64 entry_id, int64 delta,
						   int64 capacity, int flags, int64 *count);

/* places of entries and contests with a capacity */
extern bool vg_contest_places_add(int64 contest_id, int64 capacity, int64 delta,
								  int flags);
extern void vg_entry_places_reset(int64 contest_id, int64 entry_id, int64 capacity);
extern void vg_contest_places_reset(int64 contest_id, int64 capacity);
extern void vg_counters_follow(TriggerData *trigdata);

/* how many contests and votes vote_guard holds, read as role */
extern void vg_count_contents(Oid role, int64 *contests, int64 *votes);

/* every backend forgets what it cached of rel's rows when this commits */
extern void vg_cache_invalidate(Relation rel);
extern bool vg_citus_shard_apply(Relation rel);

#endif							/* VG_STORAGE_H */
