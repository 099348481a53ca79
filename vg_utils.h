/*-------------------------------------------------------------------------
 *
 * vg_utils.h
 *	  The bottom layer: kept SPI plans, per-backend caches, small checks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef VG_UTILS_H
#define VG_UTILS_H

#include "vg_types.h"

#include "datatype/timestamp.h"
#include "executor/spi.h"
#include "storage/lockdefs.h"
#include "utils/hsearch.h"

extern SPIPlanPtr vg_prepare_kept(const char *query, int nargs, Oid *argtypes);
extern void vg_execute(SPIPlanPtr plan, Datum *args, const char *nulls,
					   int expected, long count);
extern void vg_execute_snapshot(SPIPlanPtr plan, Datum *args, const char *nulls,
								Snapshot snapshot, bool read_only,
								int expected, long count);
extern Datum vg_spi_value(uint64 row, int col, bool *isnull);
extern void vg_spi_connect(void);

extern HTAB *vg_backend_cache_create(const char *name, Size keysize,
									 Size entrysize, long nelem);
extern void *vg_backend_cache_enter(HTAB **cache, const char *name,
									Size keysize, Size entrysize, long max,
									const void *key);
extern void vg_backend_cache_drop(HTAB **cache);
extern Oid	vg_table_relid(const char *relname);

extern bool vg_text_length_ok(text *t, int max_chars);
extern bool vg_interval_usecs(const Interval *iv, int64 *usecs);
extern void vg_advisory_xact_lock(uint64 key, uint16 lock_class, LOCKMODE mode);

#endif							/* VG_UTILS_H */
