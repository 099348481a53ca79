/*-------------------------------------------------------------------------
 *
 * vote_guard.h
 *	  Declarations shared by the C files of vote_guard.
 *
 *-------------------------------------------------------------------------
 */
#ifndef VOTE_GUARD_H
#define VOTE_GUARD_H

#include "postgres.h"

#include "vg_compat.h"			/* varatt.h, for utils/inet.h */

#include <sys/socket.h>			/* AF_INET, for utils/inet.h */

#include "utils/inet.h"
#include "utils/timestamp.h"

#define VG_HMAC_LEN			32	/* SHA-256 output */
#define VG_SECRET_LEN		32	/* bytes of a generated secret */

/* cast_vote limits of the contract */
#define VG_MAX_USER_ID_CHARS	256
#define VG_MAX_REQUEST_ID_CHARS 256
#define VG_MAX_EMAIL_CHARS		254

/*
 * Advisory lock classes: the fourth field of an advisory LOCKTAG.  The core
 * pg_advisory_* functions use 1 and 2, so these never collide with an
 * application's own advisory locks.  pg_locks shows them as objsubid.
 */
#define VG_LOCK_CLASS_CONTEST	0x7667	/* "vg": one per contest */
#define VG_LOCK_CLASS_VOTER		0x7668	/* one per voter vector and contest */

/* Counter slots per entry: a backend adds to slot (backend number % this). */
#define VG_COUNTER_SLOTS		16

/* Canonical form of a voter's address, what ip_key hashes. */
typedef struct VgIpBytes
{
	uint8		len;			/* bytes used in data */
	uint8		data[2 + 16];	/* family tag, prefix length, masked address */
} VgIpBytes;

/* The result codes of cast_vote, change_vote and retract_vote. */
typedef enum VgCode
{
	VG_OK,
	VG_DUPLICATE_IP,
	VG_DUPLICATE_USER,
	VG_DUPLICATE_EMAIL,
	VG_LIMIT_REACHED,
	VG_COOLDOWN,
	VG_CONTEST_NOT_FOUND,
	VG_ENTRY_NOT_FOUND,
	VG_CONTEST_NOT_OPEN,
	VG_CONTEST_CLOSED,
	VG_LOGIN_REQUIRED,
	VG_INVALID_INPUT,
	VG_CHANGE_NOT_ALLOWED,
	VG_VOTE_NOT_FOUND
} VgCode;

/* The voter vectors, in the order a collision is reported. */
typedef enum VgVector
{
	VG_VEC_IP,
	VG_VEC_USER,
	VG_VEC_EMAIL,
	VG_NUM_VECTORS
} VgVector;

/* A contest and its policy, as read by vg_load_contest. */
typedef struct VgContest
{
	TimestampTz opens_at;
	bool		has_closes_at;
	TimestampTz closes_at;
	bool		closed;			/* closed by the organiser */
	bool		dedupe[VG_NUM_VECTORS];
	int32		ipv4_prefix;
	int32		ipv6_prefix;
	bool		require_user;
	int32		votes_per_voter;
	int32		per_entry_limit;
	int64		window_usecs;	/* 0: no vote windows */
	int64		cooldown_usecs; /* 0: no cooldown */
	bool		allow_change;
	int32		secret_version;
} VgContest;

/*
 * A voter: the keys of the vectors it has (bytea for ip and email, text for
 * user) and, once decided, the slot of each in the vote's window.
 */
typedef struct VgVoter
{
	bool		has[VG_NUM_VECTORS];
	Datum		key[VG_NUM_VECTORS];
	int16		slot[VG_NUM_VECTORS];
} VgVoter;

/* What the voter's earlier votes allow. */
typedef struct VgDecision
{
	VgCode		code;			/* VG_OK, a duplicate, limit or cooldown */
	bool		replay;			/* a vote with the request_id exists */
	int64		replay_vote_id;
	int64		replay_entry_id;
	bool		has_retry_at;
	TimestampTz retry_at;
} VgDecision;

/* vote_guard.c: SPI helpers */
struct _SPI_plan;
extern struct _SPI_plan *vg_prepare_kept(const char *query, int nargs,
										 Oid *argtypes);
extern void vg_execute(struct _SPI_plan *plan, Datum *args, const char *nulls,
					   int expected, long count);
extern Datum vg_spi_value(uint64 row, int col, bool *isnull);
extern bool vg_text_length_ok(text *t, int max_chars);
struct HTAB;
extern struct HTAB *vg_backend_cache_create(const char *name, Size entrysize,
											const char *relname, Oid *relid);
struct SnapshotData;
extern void vg_execute_trusted(struct _SPI_plan *plan, Datum *args,
							   const char *nulls, int expected, int trusted,
							   struct SnapshotData *snapshot);

/*
 * What cast_vote and change_vote have already done for the row they write:
 * the triggers skip that part.  Set only around their own statements.
 */
#define VG_WRITE_DECIDED	0x01	/* policy decided under the voter's locks */
#define VG_WRITE_COUNTED	0x02	/* counter moved by the caller itself */
extern int	vg_trusted_write;

/* vg_policy.c */
extern bool vg_load_contest(int64 contest_id, VgContest *c);
extern bool vg_policy_needs_locks(const VgContest *c);
extern bool vg_window_no(const VgContest *c, TimestampTz t, int32 *window_no);
extern int32 vg_window_no_open(const VgContest *c, TimestampTz t);
extern TimestampTz vg_time_add(TimestampTz t, int64 usecs);
extern void vg_lock_voter(int64 contest_id, const VgVoter *v);
extern void vg_decide(int64 contest_id, int64 entry_id, const VgContest *c,
					  VgVoter *v, Datum request_id, TimestampTz t,
					  int64 exclude_vote_id, VgDecision *d);

/* vg_normalize.c */
extern bool vg_inet_is_host(const inet *ip);
extern void vg_ip_canonical(const inet *ip, int ipv4_prefix, int ipv6_prefix,
							VgIpBytes *out);
extern char *vg_normalize_email_cstr(const char *email, size_t len);

/* vg_crypto.c */
typedef struct VgContestKeys VgContestKeys;

extern void vg_hmac(const uint8 *key, size_t keylen,
					const uint8 *data, size_t datalen, uint8 *out);
extern VgContestKeys *vg_contest_keys(int64 contest_id, int32 secret_version);
extern void vg_ip_key(VgContestKeys *keys, const VgIpBytes *ip, uint8 *out);
extern void vg_email_key(VgContestKeys *keys, const char *normalized,
						 uint8 *out);

/* vg_trigger.c */
extern void vg_lock_contest(int64 contest_id, bool exclusive);
extern int32 vg_counter_slot(void);
extern int64 vg_counter_add(int64 contest_id, int64 entry_id, int64 delta);

/* vg_lookup.c */
extern bool vg_entry_exists(int64 contest_id, int64 entry_id);
extern int64 vg_entry_count(int64 contest_id, int64 entry_id);
extern bool vg_counter_add_free(int64 contest_id, int64 entry_id, int64 delta,
								int32 *new_slot, int64 *count);

/* the columns of vote_guard.votes, and two of their numbers */
#define VG_VOTES_NATTS			12
#define VG_VOTES_VOTE_ID		2
#define VG_VOTES_CREATED_AT		8
extern bool vg_vote_insert(Datum *values, bool *isnull, bool *inserted,
						   int64 *vote_id);

#endif							/* VOTE_GUARD_H */
