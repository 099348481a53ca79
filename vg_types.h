/*-------------------------------------------------------------------------
 *
 * vg_types.h
 *	  The types and limits every layer of vote_guard shares.
 *
 * The C files form layers, each calling only the ones below it:
 *
 *	  vote_guard.c, vg_trigger.c	SQL-callable entry points and triggers
 *	  vg_policy.c					the contest's rules: windows, limits, locks
 *	  vg_storage.c					every access to vote_guard's tables
 *	  vg_crypto.c, vg_normalize.c	keys and canonical voter identities
 *	  vg_utils.c					kept plans, SPI, per-backend caches
 *
 * Each layer has a header of its own; this one holds what they all share.
 *
 *-------------------------------------------------------------------------
 */
#ifndef VG_TYPES_H
#define VG_TYPES_H

#include "postgres.h"

#include "vg_compat.h"			/* varatt.h, for utils/inet.h */

#include <sys/socket.h>			/* AF_INET, for utils/inet.h */

#include "utils/inet.h"
#include "utils/timestamp.h"

#define VG_HMAC_LEN			32	/* SHA-256 output */
/*
 * A stored voter key (ip_key, email_key): HMAC-SHA-256 truncated to its
 * leftmost 128 bits, as RFC 2104 section 5 allows (not less than half the
 * hash).  Keys only dedupe voters: with 2^64 voters in one contest two of
 * them would share a key with probability about 2^-1; with 10^9, 1.5e-21.
 */
#define VG_KEY_LEN			16
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

/*
 * Counter rows (slots) per entry at most: a vote adds to the first row of its
 * entry no other transaction holds, and makes a new row only when every row
 * is held (vg_storage.c).  With durable commits a row is held until its
 * commit is flushed, so this bounds the voters of one entry that never wait
 * for each other.
 */
#define VG_COUNTER_SLOTS		64

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
	VG_VOTE_NOT_FOUND,
	VG_ENTRY_FULL,
	VG_CONTEST_FULL
} VgCode;

/* No capacity: the limit of an entry or contest without one. */
#define VG_NO_CAPACITY		(-1)

/* The voter vectors, in the order a collision is reported. */
typedef enum VgVector
{
	VG_VEC_IP,
	VG_VEC_USER,
	VG_VEC_EMAIL,
	VG_NUM_VECTORS
} VgVector;

/* A contest and its policy, as read by vg_load_contest (vg_storage.c). */
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
	int64		capacity;		/* votes over all entries; VG_NO_CAPACITY */
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

/*
 * One of a voter's earlier votes, as the policy reads them (vg_voter_votes):
 * which of the voter's vectors it shares, and its slots.
 */
typedef struct VgPastVote
{
	int64		vote_id;
	int64		entry_id;
	int32		window_no;
	TimestampTz created_at;
	bool		is_request;		/* it has the call's request_id */
	bool		match[VG_NUM_VECTORS];	/* it has the voter's key of a vector */
	int16		slot[VG_NUM_VECTORS];
} VgPastVote;

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

#endif							/* VG_TYPES_H */
