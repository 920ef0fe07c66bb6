/*-------------------------------------------------------------------------
 *
 * notify.h
 *		Interface of the NOTIFY announcement of new alerts.
 *
 * IDENTIFICATION
 *	  extension/notify.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_NOTIFY_H
#define AA_NOTIFY_H

#include "access_audit.h"

extern void aa_alert_notify_hold(bool hold);

#endif							/* AA_NOTIFY_H */
