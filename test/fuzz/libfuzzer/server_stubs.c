/*
 * Server functions that vg_normalize.c and vg_crypto.c refer to outside the
 * paths vg_fuzz.c calls (SQL-callable wrappers, caches, secrets): linked so
 * the harness builds without a server; reaching one is a bug in the harness
 * or an error path, and aborts.  No PostgreSQL header here, on purpose.
 */
#include <stdio.h>
#include <stdlib.h>

#define STUB(name) \
	void name(void); \
	void name(void) { fprintf(stderr, "vg_fuzz: %s reached\n", #name); abort(); }

STUB(pg_detoast_datum_packed)
STUB(cstring_to_text)
STUB(errstart_cold)
STUB(MemoryContextAllocZero)
STUB(MemoryContextRegisterResetCallback)
STUB(MemoryContextAlloc)
STUB(pg_strong_random)
STUB(hash_seq_init)
STUB(hash_seq_search)
STUB(hash_destroy)
STUB(hash_search)
STUB(vg_backend_cache_create)
