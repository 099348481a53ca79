/*-------------------------------------------------------------------------
 *
 * vg_compat.h
 *	  The one place where vote_guard adapts to PostgreSQL major versions.
 *
 * Every PG_VERSION_NUM test of the project is in this file; the rest of the
 * code uses the names defined here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef VG_COMPAT_H
#define VG_COMPAT_H

#if PG_VERSION_NUM < 150000
#error "vote_guard requires PostgreSQL 15 or later"
#endif

/* The backend's small dense number: MyBackendId until 16, MyProcNumber since 17. */
#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#define VG_MY_BACKEND_NUMBER	((int) MyProcNumber)
#else
#include "storage/backendid.h"
#define VG_MY_BACKEND_NUMBER	((int) MyBackendId)
#endif

#endif							/* VG_COMPAT_H */
