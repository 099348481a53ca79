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

#include <sys/socket.h>			/* AF_INET, for utils/inet.h */

#include "utils/inet.h"

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

/* Counter slots per entry: a backend adds to slot (backend number % this). */
#define VG_COUNTER_SLOTS		8

/* Canonical form of a voter's address, what ip_key hashes. */
typedef struct VgIpBytes
{
	uint8		len;			/* bytes used in data */
	uint8		data[2 + 16];	/* family tag, prefix length, masked address */
} VgIpBytes;

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

#endif							/* VOTE_GUARD_H */
