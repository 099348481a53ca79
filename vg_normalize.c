/*-------------------------------------------------------------------------
 *
 * vg_normalize.c
 *	  Canonical forms of voter addresses and e-mails, before they are keyed.
 *
 * Everything here is pure: no catalog access, no memory beyond the result.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"


#include "vg_keys.h"

/* family tags of the canonical address bytes */
#define VG_TAG_IPV4		'4'
#define VG_TAG_IPV6		'6'

/* ::ffff:0:0/96, the IPv4-mapped IPv6 range */
static const uint8 v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Is this inet a single host address (no netmask)? */
bool
vg_inet_is_host(const inet *ip)
{
	return ip_bits(ip) == ip_maxbits(ip);
}

/* Copy addr, keeping the first prefix bits and zeroing the rest. */
static void
mask_bytes(const uint8 *addr, int nbytes, int prefix, uint8 *out)
{
	int			i;

	for (i = 0; i < nbytes; i++)
	{
		int			keep = prefix - i * 8;

		if (keep >= 8)
			out[i] = addr[i];
		else if (keep <= 0)
			out[i] = 0;
		else
			out[i] = addr[i] & (uint8) (0xff << (8 - keep));
	}
}

/*
 * The bytes that identify a voter's address in a contest: IPv4-mapped IPv6
 * is folded to IPv4, then the address is masked to the contest's prefix, so
 * that every address of one /64 (by default) is one voter.  The family and
 * the prefix length are part of the bytes.
 */
void
vg_ip_canonical(const inet *ip, int ipv4_prefix, int ipv6_prefix,
				VgIpBytes *out)
{
	const uint8 *addr = (const uint8 *) ip_addr(ip);

	if (ip_family(ip) == PGSQL_AF_INET6 &&
		memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0)
	{
		out->data[0] = VG_TAG_IPV4;
		out->data[1] = (uint8) ipv4_prefix;
		mask_bytes(addr + 12, 4, ipv4_prefix, out->data + 2);
		out->len = 2 + 4;
	}
	else if (ip_family(ip) == PGSQL_AF_INET)
	{
		out->data[0] = VG_TAG_IPV4;
		out->data[1] = (uint8) ipv4_prefix;
		mask_bytes(addr, 4, ipv4_prefix, out->data + 2);
		out->len = 2 + 4;
	}
	else
	{
		out->data[0] = VG_TAG_IPV6;
		out->data[1] = (uint8) ipv6_prefix;
		mask_bytes(addr, 16, ipv6_prefix, out->data + 2);
		out->len = 2 + 16;
	}
}

/* characters of a dot-atom local part besides letters, digits and '.' */
static bool
is_atext_special(char c)
{
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

static bool
is_ascii_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9');
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\f' || c == '\v';
}

/* A dot-atom local part (RFC 5321 without quoted strings), 1 to 64 bytes. */
static bool
valid_local(const char *s, size_t len)
{
	size_t		i;

	if (len < 1 || len > 64 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++)
	{
		if (s[i] == '.')
		{
			if (s[i + 1] == '.')
				return false;
		}
		else if (!is_ascii_alnum(s[i]) && !is_atext_special(s[i]))
			return false;
	}
	return true;
}

/* A host name of two or more labels: letters, digits, inner hyphens. */
static bool
valid_domain(const char *s, size_t len)
{
	size_t		i;
	size_t		label = 0;
	int			labels = 1;

	if (len < 3 || len > 253)
		return false;
	for (i = 0; i < len; i++)
	{
		if (s[i] == '.')
		{
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			labels++;
		}
		else if (is_ascii_alnum(s[i]) || s[i] == '-')
		{
			if (label == 0 && s[i] == '-')
				return false;
			if (++label > 63)
				return false;
		}
		else
			return false;
	}
	return label > 0 && s[len - 1] != '-' && labels >= 2;
}

/*
 * Normalise an e-mail address: trim, lower-case, drop a +tag, and for Gmail
 * drop the dots of the local part and fold googlemail.com into gmail.com.
 * Returns a palloc'd string, or NULL when the address is malformed (no single
 * '@', quoted or non-ASCII local part, address literal, over 254 characters).
 */
char *
vg_normalize_email_cstr(const char *email, size_t len)
{
	const char *start = email;
	const char *end = email + len;
	const char *at = NULL;
	const char *p;
	char	   *result;
	char	   *out;
	size_t		local_len;
	size_t		domain_len;
	const char *domain;

	while (start < end && is_space(*start))
		start++;
	while (end > start && is_space(end[-1]))
		end--;
	len = end - start;
	if (len == 0 || len > VG_MAX_EMAIL_CHARS)
		return NULL;

	for (p = start; p < end; p++)
	{
		if (*p == '@')
		{
			if (at != NULL)
				return NULL;
			at = p;
		}
	}
	if (at == NULL)
		return NULL;

	local_len = at - start;
	domain = at + 1;
	domain_len = end - domain;
	if (!valid_local(start, local_len) || !valid_domain(domain, domain_len))
		return NULL;

	/* room for the whole address and its terminator */
	result = palloc(len + 1);
	out = result;

	/* the local part up to its +tag, lower-cased */
	for (p = start; p < at && *p != '+'; p++)
		*out++ = pg_ascii_tolower((unsigned char) *p);
	local_len = out - result;
	if (local_len == 0)
	{
		pfree(result);
		return NULL;
	}

	*out++ = '@';
	for (p = domain; p < end; p++)
		*out++ = pg_ascii_tolower((unsigned char) *p);
	*out = '\0';

	domain = result + local_len + 1;
	if (strcmp(domain, "googlemail.com") == 0 || strcmp(domain, "gmail.com") == 0)
	{
		/* Gmail ignores dots in the local part */
		char	   *w = result;
		const char *r;

		for (r = result; r < result + local_len; r++)
		{
			if (*r != '.')
				*w++ = *r;
		}
		if (w == result)
		{
			pfree(result);
			return NULL;
		}
		strcpy(w, "@gmail.com");
	}

	return result;
}

PG_FUNCTION_INFO_V1(vg_normalize_email);

/* vote_guard.normalize_email(text) RETURNS text */
Datum
vg_normalize_email(PG_FUNCTION_ARGS)
{
	text	   *email = PG_GETARG_TEXT_PP(0);
	char	   *normalized;

	normalized = vg_normalize_email_cstr(VARDATA_ANY(email),
										 VARSIZE_ANY_EXHDR(email));
	if (normalized == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(normalized));
}
