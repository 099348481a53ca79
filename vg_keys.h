/*-------------------------------------------------------------------------
 *
 * vg_keys.h
 *	  Keys and canonical voter identities: HMAC-SHA-256 and the per-contest
 *	  derived keys (vg_crypto.c), canonical addresses and e-mails
 *	  (vg_normalize.c).  Below the storage layer: no table access here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef VG_KEYS_H
#define VG_KEYS_H

#include "vg_types.h"

/* vg_normalize.c */
extern bool vg_inet_is_host(const inet *ip);
extern void vg_ip_canonical(const inet *ip, int ipv4_prefix, int ipv6_prefix,
							VgIpBytes *out);
extern char *vg_normalize_email_cstr(const char *email, size_t len);

/* vg_crypto.c */
typedef struct VgContestKeys VgContestKeys;

extern void vg_hmac(const uint8 *key, size_t keylen,
					const uint8 *data, size_t datalen, uint8 *out);
extern VgContestKeys *vg_contest_keys_cached(int64 contest_id,
											 int32 secret_version);
extern VgContestKeys *vg_contest_keys_derive(int64 contest_id,
											 int32 secret_version,
											 const uint8 *ip_secret,
											 size_t ip_len,
											 const uint8 *email_secret,
											 size_t email_len);
extern void vg_contest_keys_flush(void);
extern void vg_ip_key(VgContestKeys *keys, const VgIpBytes *ip, uint8 *out);
extern void vg_email_key(VgContestKeys *keys, const char *normalized,
						 uint8 *out);

#endif							/* VG_KEYS_H */
