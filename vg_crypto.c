/*-------------------------------------------------------------------------
 *
 * vg_crypto.c
 *	  HMAC-SHA-256 (OpenSSL) and the per-contest derived keys.
 *
 * A contest's keys are derived from the secret version it was created with:
 *
 *	  ip key     = HMAC(ip_secret,    "vote_guard/ip/v1"    || contest_id)
 *	  email key  = HMAC(email_secret, "vote_guard/email/v1" || contest_id)
 *
 * (contest_id as 8 bytes, big-endian), so one voter's keys in two contests
 * cannot be linked.  Each backend keeps the derived keys, as ready-keyed
 * HMAC contexts, in a hash table.  The secrets themselves are read by the
 * storage layer (vg_contest_keys in vg_storage.c), which also flushes this
 * table when vote_guard.secrets changes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

/*
 * HMAC-SHA-256 comes in two builds.  The default uses OpenSSL's SHA-256
 * functions directly: a key is turned once into the two hash states after
 * its inner and outer padded blocks (RFC 2104, section 4), and every MAC
 * resumes from copies of them, two compression rounds and no allocation.
 * OpenSSL 3's EVP_MAC re-creates both digest contexts from the key on each
 * MAC, which costs as much again as the hashing.  The SHA256_* functions are
 * deprecated by OpenSSL 3 but still part of it; an OpenSSL built without
 * them (OPENSSL_NO_DEPRECATED_3_0), or a build with -DVG_HMAC_EVP, uses
 * EVP_MAC with a context kept keyed instead.
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#if defined(OPENSSL_NO_DEPRECATED_3_0) && !defined(VG_HMAC_EVP)
#define VG_HMAC_EVP 1
#endif

#include "fmgr.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "vg_keys.h"
#include "vg_utils.h"

/* An HMAC-SHA-256 context holding its key, reusable for any number of MACs. */
typedef struct VgHmacCtx
{
	bool		keyed;
#ifdef VG_HMAC_EVP
	EVP_MAC_CTX *ctx;			/* OpenSSL's memory */
#else
	SHA256_CTX	inner;			/* state after (key XOR ipad) */
	SHA256_CTX	outer;			/* state after (key XOR opad) */
#endif
} VgHmacCtx;

struct VgContestKeys
{
	int64		contest_id;		/* hash key */
	int32		secret_version;
	VgHmacCtx	ip;
	VgHmacCtx	email;
};

static HTAB *contest_keys = NULL;

static void
hmac_ctx_error(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("OpenSSL HMAC-SHA-256 failed: %s", what)));
}

#ifdef VG_HMAC_EVP

static EVP_MAC *hmac_alg = NULL;

/* Key a new context; ctx is unkeyed on entry. */
static void
hmac_ctx_init(VgHmacCtx *ctx, const uint8 *key, size_t keylen)
{
	OSSL_PARAM	params[2];
	static const uint8 empty_key[1] = {0};

	if (hmac_alg == NULL &&
		(hmac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		hmac_ctx_error("could not load the HMAC implementation");
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
												 (char *) "SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();

	ctx->ctx = EVP_MAC_CTX_new(hmac_alg);
	if (ctx->ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	/* OpenSSL wants a non-NULL key pointer even for a zero-length key */
	if (!EVP_MAC_init(ctx->ctx, keylen > 0 ? key : empty_key, keylen, params))
	{
		EVP_MAC_CTX_free(ctx->ctx);
		ctx->ctx = NULL;
		hmac_ctx_error("could not set the key");
	}
	ctx->keyed = true;
}

/* Forget the key; the context may be keyed again. */
static void
hmac_ctx_free(VgHmacCtx *ctx)
{
	if (ctx->keyed)
		EVP_MAC_CTX_free(ctx->ctx);
	ctx->ctx = NULL;
	ctx->keyed = false;
}

/* One MAC with a keyed context; the context stays keyed for the next one. */
static void
hmac_ctx_mac(VgHmacCtx *ctx, const uint8 *data, size_t len, uint8 *out)
{
	size_t		outlen = 0;

	/* a NULL key restarts the MAC with the key the context already holds */
	if (!EVP_MAC_init(ctx->ctx, NULL, 0, NULL) ||
		!EVP_MAC_update(ctx->ctx, data, len) ||
		!EVP_MAC_final(ctx->ctx, out, &outlen, VG_HMAC_LEN) ||
		outlen != VG_HMAC_LEN)
		hmac_ctx_error("could not compute the MAC");
}

#else							/* !VG_HMAC_EVP */

/* Key a new context; ctx is unkeyed on entry. */
static void
hmac_ctx_init(VgHmacCtx *ctx, const uint8 *key, size_t keylen)
{
	uint8		block[SHA256_CBLOCK];
	int			i;
	bool		ok;

	/* a key longer than a block is replaced by its hash; then zero-padded */
	memset(block, 0, sizeof(block));
	if (keylen > SHA256_CBLOCK)
		ok = SHA256(key, keylen, block) != NULL;
	else
	{
		if (keylen > 0)
			memcpy(block, key, keylen);
		ok = true;
	}

	for (i = 0; i < SHA256_CBLOCK; i++)
		block[i] ^= 0x36;
	ok = ok && SHA256_Init(&ctx->inner) &&
		SHA256_Update(&ctx->inner, block, SHA256_CBLOCK);
	for (i = 0; i < SHA256_CBLOCK; i++)
		block[i] ^= 0x36 ^ 0x5c;
	ok = ok && SHA256_Init(&ctx->outer) &&
		SHA256_Update(&ctx->outer, block, SHA256_CBLOCK);
	explicit_bzero(block, sizeof(block));
	if (!ok)
	{
		explicit_bzero(ctx, sizeof(*ctx));
		hmac_ctx_error("could not set the key");
	}
	ctx->keyed = true;
}

/* Forget the key; the context may be keyed again. */
static void
hmac_ctx_free(VgHmacCtx *ctx)
{
	explicit_bzero(ctx, sizeof(*ctx));
}

/* One MAC with a keyed context; the context stays keyed for the next one. */
static void
hmac_ctx_mac(VgHmacCtx *ctx, const uint8 *data, size_t len, uint8 *out)
{
	SHA256_CTX	sha = ctx->inner;
	uint8		inner_hash[SHA256_DIGEST_LENGTH];
	bool		ok;

	ok = SHA256_Update(&sha, data, len) && SHA256_Final(inner_hash, &sha);
	sha = ctx->outer;
	ok = ok && SHA256_Update(&sha, inner_hash, sizeof(inner_hash)) &&
		SHA256_Final(out, &sha);
	explicit_bzero(&sha, sizeof(sha));
	if (!ok)
		hmac_ctx_error("could not compute the MAC");
}

#endif							/* VG_HMAC_EVP */

/* HMAC-SHA-256 of data under key, into out (VG_HMAC_LEN bytes). */
void
vg_hmac(const uint8 *key, size_t keylen, const uint8 *data, size_t datalen,
		uint8 *out)
{
	VgHmacCtx	ctx = {false};

	hmac_ctx_init(&ctx, key, keylen);
	PG_TRY();
	{
		hmac_ctx_mac(&ctx, data, datalen, out);
	}
	PG_FINALLY();
	{
		hmac_ctx_free(&ctx);
	}
	PG_END_TRY();
}

/*
 * hmac_sha256()'s keyed context, kept for the query in fn_extra: a query
 * that hashes many rows under one key keys the context once.  When the
 * query's memory goes, a callback wipes the key (and gives back OpenSSL's
 * memory in the EVP_MAC build).
 */
typedef struct HmacCallCache
{
	MemoryContextCallback free_cb;
	VgHmacCtx	ctx;
	size_t		keylen;
	uint8	   *key;			/* in fn_mcxt */
} HmacCallCache;

static void
hmac_call_cache_free(void *arg)
{
	hmac_ctx_free(&((HmacCallCache *) arg)->ctx);
}

PG_FUNCTION_INFO_V1(vg_hmac_sha256);

/* vote_guard.hmac_sha256(data bytea, key bytea) RETURNS bytea */
Datum
vg_hmac_sha256(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	bytea	   *key = PG_GETARG_BYTEA_PP(1);
	const uint8 *keybytes = (const uint8 *) VARDATA_ANY(key);
	size_t		keylen = VARSIZE_ANY_EXHDR(key);
	HmacCallCache *cache = fcinfo->flinfo->fn_extra;
	bytea	   *result = palloc(VARHDRSZ + VG_HMAC_LEN);

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(HmacCallCache));
		cache->free_cb.func = hmac_call_cache_free;
		cache->free_cb.arg = cache;
		MemoryContextRegisterResetCallback(fcinfo->flinfo->fn_mcxt, &cache->free_cb);
		fcinfo->flinfo->fn_extra = cache;
	}
	if (!cache->ctx.keyed || cache->keylen != keylen ||
		memcmp(cache->key, keybytes, keylen) != 0)
	{
		hmac_ctx_free(&cache->ctx);
		if (cache->key != NULL)
			pfree(cache->key);
		cache->key = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, Max(keylen, 1));
		memcpy(cache->key, keybytes, keylen);
		cache->keylen = keylen;
		hmac_ctx_init(&cache->ctx, keybytes, keylen);
	}
	hmac_ctx_mac(&cache->ctx, (const uint8 *) VARDATA_ANY(data),
				 VARSIZE_ANY_EXHDR(data), (uint8 *) VARDATA(result));
	SET_VARSIZE(result, VARHDRSZ + VG_HMAC_LEN);
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(vg_random_secret);

/* vote_guard.random_secret() RETURNS bytea: VG_SECRET_LEN strong random bytes */
Datum
vg_random_secret(PG_FUNCTION_ARGS)
{
	bytea	   *result = palloc(VARHDRSZ + VG_SECRET_LEN);

	if (!pg_strong_random(VARDATA(result), VG_SECRET_LEN))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random secret")));
	SET_VARSIZE(result, VARHDRSZ + VG_SECRET_LEN);
	PG_RETURN_BYTEA_P(result);
}

/* Free every cached context and forget the keys. */
void
vg_contest_keys_flush(void)
{
	HASH_SEQ_STATUS status;
	VgContestKeys *entry;

	if (contest_keys == NULL)
		return;
	hash_seq_init(&status, contest_keys);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		hmac_ctx_free(&entry->ip);
		hmac_ctx_free(&entry->email);
	}
	hash_destroy(contest_keys);
	contest_keys = NULL;
}

/*
 * Derive a contest's two keys from the secrets of its version, into entry.
 */
static void
derive_contest_keys(VgContestKeys *entry, int64 contest_id,
					const uint8 *ip_secret, size_t ip_len,
					const uint8 *email_secret, size_t email_len)
{
	uint8		info[8];
	uint8		derived[VG_HMAC_LEN];
	uint64		be_id = pg_hton64((uint64) contest_id);

	memcpy(info, &be_id, sizeof(info));

	entry->ip.keyed = false;
	entry->email.keyed = false;

	PG_TRY();
	{
		static const char ip_label[] = "vote_guard/ip/v1";
		static const char email_label[] = "vote_guard/email/v1";
		uint8		buf[sizeof(email_label) - 1 + sizeof(info)];

		memcpy(buf, ip_label, sizeof(ip_label) - 1);
		memcpy(buf + sizeof(ip_label) - 1, info, sizeof(info));
		vg_hmac(ip_secret, ip_len, buf, sizeof(ip_label) - 1 + sizeof(info),
				derived);
		hmac_ctx_init(&entry->ip, derived, VG_HMAC_LEN);

		memcpy(buf, email_label, sizeof(email_label) - 1);
		memcpy(buf + sizeof(email_label) - 1, info, sizeof(info));
		vg_hmac(email_secret, email_len, buf,
				sizeof(email_label) - 1 + sizeof(info), derived);
		hmac_ctx_init(&entry->email, derived, VG_HMAC_LEN);
	}
	PG_CATCH();
	{
		/* OpenSSL's memory is not in a memory context: give it back */
		hmac_ctx_free(&entry->ip);
		hmac_ctx_free(&entry->email);
		PG_RE_THROW();
	}
	PG_END_TRY();
	explicit_bzero(derived, sizeof(derived));
}

/* The derived keys of a contest from the backend's cache, or NULL. */
VgContestKeys *
vg_contest_keys_cached(int64 contest_id, int32 secret_version)
{
	VgContestKeys *entry;

	if (contest_keys == NULL)
		return NULL;
	entry = hash_search(contest_keys, &contest_id, HASH_FIND, NULL);
	if (entry != NULL && entry->secret_version == secret_version &&
		entry->ip.keyed && entry->email.keyed)
		return entry;
	return NULL;
}

/*
 * Derive the keys of a contest from the secrets of its version and keep them
 * in the backend's cache.
 */
VgContestKeys *
vg_contest_keys_derive(int64 contest_id, int32 secret_version,
					   const uint8 *ip_secret, size_t ip_len,
					   const uint8 *email_secret, size_t email_len)
{
	VgContestKeys fresh;
	VgContestKeys *entry;
	bool		found;

	if (contest_keys == NULL)
		contest_keys = vg_backend_cache_create("vote_guard contest keys",
											   sizeof(int64),
											   sizeof(VgContestKeys), 64);
	entry = hash_search(contest_keys, &contest_id, HASH_FIND, &found);
	if (found)
	{
		hmac_ctx_free(&entry->ip);
		hmac_ctx_free(&entry->email);
		hash_search(contest_keys, &contest_id, HASH_REMOVE, NULL);
	}

	/* derive into a local copy first, so an error leaves no half entry */
	derive_contest_keys(&fresh, contest_id, ip_secret, ip_len,
						email_secret, email_len);
	entry = hash_search(contest_keys, &contest_id, HASH_ENTER, &found);
	entry->secret_version = secret_version;
	entry->ip = fresh.ip;
	entry->email = fresh.email;
	return entry;
}

/*
 * The stored voter keys: the leftmost VG_KEY_LEN bytes of the HMAC, into out
 * (VG_KEY_LEN bytes).
 */
void
vg_ip_key(VgContestKeys *keys, const VgIpBytes *ip, uint8 *out)
{
	uint8		mac[VG_HMAC_LEN];

	hmac_ctx_mac(&keys->ip, ip->data, ip->len, mac);
	memcpy(out, mac, VG_KEY_LEN);
}

void
vg_email_key(VgContestKeys *keys, const char *normalized, uint8 *out)
{
	uint8		mac[VG_HMAC_LEN];

	hmac_ctx_mac(&keys->email, (const uint8 *) normalized, strlen(normalized),
				 mac);
	memcpy(out, mac, VG_KEY_LEN);
}
