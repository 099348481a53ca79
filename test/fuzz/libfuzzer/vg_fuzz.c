/*-------------------------------------------------------------------------
 *
 * vg_fuzz.c
 *	  libFuzzer harness for vote_guard's pure C parts, built without a
 *	  server (test/fuzz/libfuzzer/run.sh): e-mail normalisation and address
 *	  canonicalisation (vg_normalize.c), HMAC-SHA-256 (vg_crypto.c) against
 *	  OpenSSL's one-shot HMAC().
 *
 * The first input byte picks the target; the rest is its input.  Checked,
 * besides what AddressSanitizer and UndefinedBehaviorSanitizer see:
 *
 *	- vg_normalize_email_cstr: the result is NULL or a NUL-terminated
 *	  string no longer than the trimmed input, with exactly one '@', no
 *	  upper-case letter, no '+' in the local part, and normalising it again
 *	  gives it back;
 *	- vg_ip_canonical: the family tag and prefix come first, IPv4-mapped
 *	  IPv6 gives the IPv4 bytes, every bit past the prefix is zero, and the
 *	  canonical bytes of the masked address are the same;
 *	- vg_hmac: equal to HMAC(EVP_sha256(), ...).
 *
 * The server's functions these files call on their normal paths (palloc,
 * pfree, pg_ascii_tolower) are given here, and the error functions abort:
 * an error in these pure functions is a finding.  The rest of the two files
 * (SQL-callable functions, caches) is left out by the linker.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "vg_keys.h"

#undef fprintf				/* (port.h) the C library's, not the server's */

/* what the server would provide */
sigjmp_buf *PG_exception_stack = NULL;
ErrorContextCallback *error_context_stack = NULL;

void *
palloc(Size size)
{
	void	   *p = malloc(size > 0 ? size : 1);

	if (p == NULL)
		abort();
	return p;
}

void
pfree(void *pointer)
{
	free(pointer);
}

/* an error (ereport, a rethrow) would end the server's call: here, a crash */
bool
errstart(int elevel, const char *domain)
{
	fprintf(stderr, "vg_fuzz: ereport(%d) reached\n", elevel);
	abort();
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	abort();
}

int
errcode(int sqlerrcode)
{
	return 0;
}

int
errmsg(const char *fmt,...)
{
	return 0;
}

void
pg_re_throw(void)
{
	abort();
}

unsigned char
pg_ascii_tolower(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		ch += 'a' - 'A';
	return ch;
}

static void
check(bool ok, const char *what)
{
	if (!ok)
	{
		fprintf(stderr, "vg_fuzz: %s\n", what);
		abort();
	}
}

static void
fuzz_email(const uint8_t *data, size_t size)
{
	char	   *norm = vg_normalize_email_cstr((const char *) data, size);
	char	   *again;
	const char *at;
	size_t		len;
	const char *p;

	if (norm == NULL)
		return;
	len = strlen(norm);
	check(len <= size, "normalised e-mail longer than its input");
	at = strchr(norm, '@');
	check(at != NULL && at > norm && strchr(at + 1, '@') == NULL,
		  "normalised e-mail without exactly one '@' after a local part");
	for (p = norm; *p; p++)
		check(!(*p >= 'A' && *p <= 'Z'), "upper case in a normalised e-mail");
	check(memchr(norm, '+', at - norm) == NULL, "+tag left in a normalised e-mail");
	again = vg_normalize_email_cstr(norm, len);
	check(again != NULL && strcmp(again, norm) == 0, "normalisation is not idempotent");
	pfree(again);
	pfree(norm);
}

static void
make_inet(inet *ip, int family, int bits, const uint8 *addr)
{
	SET_INET_VARSIZE(ip);
	ip_family(ip) = family;
	ip_bits(ip) = bits;
	memcpy(ip_addr(ip), addr, ip_addrsize(ip));
	SET_INET_VARSIZE(ip);
}

static void
fuzz_ip(const uint8_t *data, size_t size)
{
	inet		ip;
	inet		masked;
	VgIpBytes	out;
	VgIpBytes	out2;
	uint8		addr[16] = {0};
	int			family;
	int			v4,
				v6,
				prefix,
				nbytes,
				i;
	bool		mapped;

	if (size < 3)
		return;
	family = (data[0] & 1) ? PGSQL_AF_INET6 : PGSQL_AF_INET;
	v4 = 1 + data[1] % 32;		/* the contests' CHECKs: 1 .. 32, 1 .. 128 */
	v6 = 1 + data[2] % 128;
	memcpy(addr, data + 3, Min(size - 3, sizeof(addr)));
	if (family == PGSQL_AF_INET6 && (data[0] & 2))
	{
		/* an IPv4-mapped address */
		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
	}
	memset(&ip, 0, sizeof(ip));
	make_inet(&ip, family, family == PGSQL_AF_INET ? 32 : 128, addr);
	check(vg_inet_is_host(&ip), "a host address is not a host");

	vg_ip_canonical(&ip, v4, v6, &out);
	mapped = family == PGSQL_AF_INET6 && addr[10] == 0xff && addr[11] == 0xff &&
		memcmp(addr, "\0\0\0\0\0\0\0\0\0\0", 10) == 0;
	if (family == PGSQL_AF_INET || mapped)
	{
		check(out.len == 6 && out.data[0] == '4' && out.data[1] == v4,
			  "IPv4 canonical bytes: tag, prefix, 4 bytes");
		prefix = v4;
		nbytes = 4;
	}
	else
	{
		check(out.len == 18 && out.data[0] == '6' && out.data[1] == v6,
			  "IPv6 canonical bytes: tag, prefix, 16 bytes");
		prefix = v6;
		nbytes = 16;
	}
	for (i = 0; i < nbytes; i++)
	{
		int			keep = prefix - i * 8;
		uint8		allowed = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8) (0xff << (8 - keep));
		const uint8 *src = nbytes == 4 && family == PGSQL_AF_INET6 ? addr + 12 : addr;

		check((out.data[2 + i] & ~allowed) == 0, "a bit past the prefix is set");
		check(out.data[2 + i] == (src[i] & allowed), "a bit within the prefix changed");
	}

	/* the masked address (as IPv4 when mapped) canonicalises the same */
	memset(&masked, 0, sizeof(masked));
	if (nbytes == 4)
		make_inet(&masked, PGSQL_AF_INET, 32, out.data + 2);
	else
		make_inet(&masked, PGSQL_AF_INET6, 128, out.data + 2);
	vg_ip_canonical(&masked, v4, v6, &out2);
	check(out2.len == out.len && memcmp(out2.data, out.data, out.len) == 0,
		  "canonical bytes of the canonical address differ");

	/* an address with a netmask is not a host */
	ip_bits(&ip) = data[1] % (family == PGSQL_AF_INET ? 32 : 128);
	check(!vg_inet_is_host(&ip), "an address with a netmask is a host");
}

static void
fuzz_hmac(const uint8_t *data, size_t size)
{
	uint8		ours[VG_HMAC_LEN];
	uint8		theirs[EVP_MAX_MD_SIZE];
	unsigned int theirs_len = 0;
	size_t		keylen;

	if (size < 2)
		return;
	/* the first byte says how much of the rest is key (up to 255 bytes) */
	keylen = Min((size_t) data[0], size - 1);
	vg_hmac(data + 1, keylen, data + 1 + keylen, size - 1 - keylen, ours);
	check(HMAC(EVP_sha256(), data + 1, (int) keylen, data + 1 + keylen,
			   size - 1 - keylen, theirs, &theirs_len) != NULL &&
		  theirs_len == VG_HMAC_LEN, "OpenSSL HMAC failed");
	check(memcmp(ours, theirs, VG_HMAC_LEN) == 0, "vg_hmac differs from OpenSSL's HMAC");
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3)
	{
		case 0:
			fuzz_email(data + 1, size - 1);
			break;
		case 1:
			fuzz_ip(data + 1, size - 1);
			break;
		default:
			fuzz_hmac(data + 1, size - 1);
			break;
	}
	return 0;
}
