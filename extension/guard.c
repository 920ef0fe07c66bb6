/*-------------------------------------------------------------------------
 *
 * guard.c
 *		Append-only guard of the extension's audit tables.
 *
 * This file owns the refusal of changes to audit data: the hooks that stop
 * UPDATE, DELETE, TRUNCATE, ALTER and DROP of the log and its sibling
 * tables by anyone (owners and superusers included) outside maintenance
 * mode.
 *
 * Ownership: no shared state.
 *
 * IDENTIFICATION
 *	  extension/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access_audit.h"
#include "guard.h"

/*
 * Install the guard's hooks.  Called from _PG_init.
 */
void
aa_guard_init(void)
{
}
