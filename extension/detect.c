/*-------------------------------------------------------------------------
 *
 * detect.c
 *		Per-actor statistics behind rank_exporters: one pass over the daily
 *		roll-up, then the self, peer, ramp and context terms in memory.
 *
 * rank_exporters (extension/sql/10_detect.sql) used to compute these terms
 * with a dozen CTEs; grouping 350,000 actor-days by text and running
 * thousands of small percentile sorts took seconds at 10,000 actors.  This
 * file computes exactly the same quantities (the comments name the CTE each
 * step replaces) and returns one row per scored actor; the SQL keeps the
 * combination into a score, the ranking and the reason text.  The terms
 * added since (cold start, calendar rhythms, the team's shared excess; their
 * comments name a CTE the SQL never had) live only here; docs/detect.md
 * explains them.
 *
 * Ownership: nothing outlives a call.  Everything is allocated in a memory
 * context private to the call, deleted before returning; on error it goes
 * with its parent, the caller's per-query context.  The source is read
 * through SPI with the caller's rights.
 *
 * Sums of row counts are added as float8.  They are exact, and equal to the
 * SQL's sum-then-cast, while they stay below 2^53; medians follow
 * percentile_cont(0.5) exactly; means may differ from avg() in the last bit
 * because the order of addition differs.
 *
 * IDENTIFICATION
 *	  extension/detect.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/regproc.h"

#include "detect.h"

/* Peer key of actors judged against all humans (the SQL's '*'). */
#define AA_DETECT_ALL	(-1)
/* Relation id of a NULL relation: never "seen before". */
#define AA_DETECT_NULL_REL	(-1)
/* Rows fetched from the source per SPI round trip. */
#define AA_DETECT_BATCH	10000
/* Number of output columns of _detect_actors. */
#define AA_DETECT_NCOLS	30
/* Active days before the window below which peers alone carry the score. */
#define AA_DETECT_MIN_HISTORY	10
/* Days a cold-start actor's daily volumes are compared with peers over. */
#define AA_DETECT_COLD_DAYS	14
/* The ramp CUSUM's allowance per day, robust SDs: half the shift it seeks. */
#define AA_DETECT_RAMP_K	0.75

/*
 * Calendar rhythms: the window day's tags, and how many earlier occurrences
 * of each are looked at (month ends and quarter ends may lie before the
 * baseline; only those days are read for them).
 */
#define AA_CAL_WEEKDAY		0x01
#define AA_CAL_MONTH_END	0x02
#define AA_CAL_QUARTER_END	0x04
#define AA_CAL_WEEKS		8
#define AA_CAL_MONTHS		6
#define AA_CAL_QUARTERS		4
#define AA_CAL_MAX_DATES	(AA_CAL_WEEKS + AA_CAL_MONTHS + AA_CAL_QUARTERS)

/* One day of one actor: the roll-up summed over relations (CTEs agg, days). */
typedef struct DetectDay
{
	int32		day;
	double		vol;			/* sum of greatest(rows, tagged_rows) */
	double		rws;			/* sum of rows */
	double		off;			/* sum of off_hours_rows */
	double		y;				/* ln(1 + same-length total) */
	double		ya;				/* y, weekday-corrected for 1-day windows */
	double		yd;				/* ln(1 + vol), weekday-corrected */
	double		sdow;			/* the weekday's correction */
} DetectDay;

/* One actor and everything computed for it. */
typedef struct DetectActor
{
	char	   *name;
	int			len;
	uint32		hash;
	int			grp;			/* index into the group table */
	bool		bulk;
	int			pkey;			/* group index, or AA_DETECT_ALL */
	DetectDay  *days;			/* active days, ascending after loading */
	int			ndays;
	int			maxdays;
	/* CTE self */
	bool		has_self;
	int64		n_base;
	double		med_raw;
	double		med;
	double		off_b;
	double		rws_b;
	double		s_self;
	int64		n_ref;
	double		ref_med;
	double		s_ref;
	int64		n_hist;			/* active days before the window */
	/* calendar rhythm: volumes on earlier occurrences, and the result */
	double	   *calvol;
	double		cal_uplift;		/* ln units above the ordinary level */
	int			cal_tag;
	int			cal_n;			/* active occurrences */
	int			cal_occ;		/* occurrences the actor was around for */
	/* CTE win */
	bool		has_win;
	double		v;
	double		wrws;
	double		woff;
	/* CTE relw */
	int64		n_rel;
	double		new_vol;
	/* CTE ramp */
	bool		has_ramp;
	double		ramp_z;
	double		excess;
	bool		has_recent;
	/* cold start: daily volumes against the peers of the same day */
	int			cold_n;
	double		cold_z;
	double		cold_lr;		/* mean ln ratio to the peers' median */
	/* self_z before the team's shared excess is taken off */
	bool		has_z;
	double		self_z;
	double		recent_ratio;
} DetectActor;

/* An open-addressing table of strings (actors, relations, groups). */
typedef struct DetectStrTab
{
	int		   *slots;			/* id + 1, 0 = empty */
	uint32		mask;
	int			n;
	int			max;
	char	  **strs;
	int		   *lens;
	uint32	   *hashes;
} DetectStrTab;

/* One (actor, relation) pair read in the look-back (CTEs wrel, seen). */
typedef struct DetectPair
{
	int64		key;			/* actor << 32 | relation; 0 = empty slot */
	double		wvol;
	bool		in_window;
	bool		seen;
} DetectPair;

/* A growable list of doubles, for medians. */
typedef struct DetectVec
{
	double	   *v;
	int			n;
	int			max;
} DetectVec;

/* Median, spread and size of one peer key (CTEs pws, pbs). */
typedef struct DetectPeer
{
	bool		exists;
	int64		n;
	double		med;
	double		s;
} DetectPeer;

/*
 * The days one call looks at, all ending on d1 (clamped to the date range):
 * the window, the baseline before it, the ramp period and the ramp's
 * reference level before that.
 */
typedef struct DetectBounds
{
	int32		d1;				/* last day of the window */
	int32		nd;				/* window length, days */
	int32		nb;				/* baseline length, days */
	int32		nr;				/* ramp period length, days */
	int32		w_lo;			/* first day of the window */
	int32		b_lo;			/* first day of the baseline */
	int32		r_lo;			/* first day of the ramp period */
	int32		ref_lo;			/* first day of the ramp's reference */
	int32		lo;				/* first day read from the source */
} DetectBounds;

/*
 * What each actor is compared with, per peer key (a group index; the last
 * key, ngroups, is all humans).
 */
typedef struct DetectPeers
{
	int			nkeys;
	DetectPeer *window;			/* humans active in the window (CTE pws) */
	DetectPeer *pooled;			/* their pooled baselines (CTE pbs) */
	int		   *team_n;			/* peers with a self_z in the window */
	double	   *team_z;			/* their median self_z when positive, else 0 */
} DetectPeers;

/*
 * Create an empty string table.
 */
static void
strtab_init(DetectStrTab *t, int size)
{
	uint32		cap = 64;

	while (cap < (uint32) size * 2)
		cap <<= 1;
	t->slots = palloc0(sizeof(int) * cap);
	t->mask = cap - 1;
	t->n = 0;
	t->max = 64;
	t->strs = palloc(sizeof(char *) * t->max);
	t->lens = palloc(sizeof(int) * t->max);
	t->hashes = palloc(sizeof(uint32) * t->max);
}

/*
 * Id of a string, added (copied) if new; *added says which.
 */
static int
strtab_id(DetectStrTab *t, const char *s, int len, bool *added)
{
	uint32		h = hash_bytes((const unsigned char *) s, len);
	uint32		i = h & t->mask;
	int			id;

	for (;;)
	{
		int			e = t->slots[i];

		if (e == 0)
			break;
		e--;
		if (t->hashes[e] == h && t->lens[e] == len &&
			memcmp(t->strs[e], s, len) == 0)
		{
			*added = false;
			return e;
		}
		i = (i + 1) & t->mask;
	}

	if (t->n == t->max)
	{
		t->max *= 2;
		t->strs = repalloc(t->strs, sizeof(char *) * t->max);
		t->lens = repalloc(t->lens, sizeof(int) * t->max);
		t->hashes = repalloc(t->hashes, sizeof(uint32) * t->max);
	}
	id = t->n++;
	t->strs[id] = palloc(len + 1);
	memcpy(t->strs[id], s, len);
	t->strs[id][len] = '\0';
	t->lens[id] = len;
	t->hashes[id] = h;
	t->slots[i] = id + 1;
	*added = true;

	/* Keep the load under one half: rebuild the slots at twice the size. */
	if ((uint32) t->n * 2 > t->mask)
	{
		uint32		cap = (t->mask + 1) * 2;
		int			k;

		pfree(t->slots);
		t->slots = palloc0(sizeof(int) * cap);
		t->mask = cap - 1;
		for (k = 0; k < t->n; k++)
		{
			uint32		j = t->hashes[k] & t->mask;

			while (t->slots[j] != 0)
				j = (j + 1) & t->mask;
			t->slots[j] = k + 1;
		}
	}
	return id;
}

/*
 * Id of a string, or -1 if it is not in the table.
 */
static int
strtab_find(DetectStrTab *t, const char *s, int len)
{
	uint32		h = hash_bytes((const unsigned char *) s, len);
	uint32		i = h & t->mask;

	for (;;)
	{
		int			e = t->slots[i];

		if (e == 0)
			return -1;
		e--;
		if (t->hashes[e] == h && t->lens[e] == len &&
			memcmp(t->strs[e], s, len) == 0)
			return e;
		i = (i + 1) & t->mask;
	}
}

/*
 * Hash of a pair key: both halves mixed, so that neighbouring actors and
 * relations do not collide.
 */
static inline uint32
pair_hash(int64 key)
{
	return hash_combine(murmurhash32((uint32) (key >> 32)),
						murmurhash32((uint32) key));
}

/*
 * The pair (actor, relation), added if new.  The table has room for every
 * row of the source, so it never fills.
 */
static DetectPair *
pair_get(DetectPair *tab, uint32 mask, int actor, int rel, bool *isnew)
{
	int64		key = ((int64) (actor + 1) << 32) | (uint32) (rel + 2);
	uint32		i = pair_hash(key) & mask;

	while (tab[i].key != 0 && tab[i].key != key)
		i = (i + 1) & mask;
	*isnew = tab[i].key == 0;
	tab[i].key = key;
	return &tab[i];
}

/*
 * Append a value to a list.
 */
static void
vec_push(DetectVec *vec, double x)
{
	if (vec->n == vec->max)
	{
		vec->max = Max(16, vec->max * 2);
		if (vec->v == NULL)
			vec->v = palloc(sizeof(double) * vec->max);
		else
			vec->v = repalloc(vec->v, sizeof(double) * vec->max);
	}
	vec->v[vec->n++] = x;
}

/*
 * qsort comparator for doubles (no NaNs arise here: every logarithm is of
 * a number of at least 1).
 */
static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * qsort comparator for days.
 */
static int
cmp_day(const void *a, const void *b)
{
	int32		x = ((const DetectDay *) a)->day;
	int32		y = ((const DetectDay *) b)->day;

	return (x > y) - (x < y);
}

/*
 * percentile_cont(0.5) of n > 0 values, which it sorts in place: the same
 * interpolation as PostgreSQL's (orderedsetaggs.c).
 */
static double
median(double *v, int n)
{
	double		pos = 0.5 * (n - 1);
	int64		first = (int64) floor(pos);
	int64		second = (int64) ceil(pos);
	double		lo;

	qsort(v, n, sizeof(double), cmp_double);
	lo = v[first];
	if (first == second)
		return lo;
	return lo + ((pos - first) * (v[second] - lo));
}

/*
 * The robust spread greatest(1.4826 * MAD, 1.2533 * mean absolute
 * deviation, 0.5) of n values around med; 0.5 when n is 0 (greatest()
 * ignores the NULLs of empty aggregates).  Uses scratch, n long.
 */
static double
robust_spread(const double *v, int n, double med, double *scratch)
{
	double		sum = 0;
	double		s = 0.5;
	int			i;

	if (n == 0)
		return s;
	for (i = 0; i < n; i++)
	{
		scratch[i] = fabs(v[i] - med);
		sum += scratch[i];
	}
	s = Max(s, 1.2533 * (sum / n));
	s = Max(s, 1.4826 * median(scratch, n));
	return s;
}

/*
 * Median and spread of a peer key's values (CTE pws); exists only with
 * values.  The values keep their order.
 */
static void
peer_stats(DetectVec *vec, DetectPeer *out)
{
	double	   *scratch;

	out->exists = vec->n > 0;
	if (!out->exists)
		return;
	out->n = vec->n;
	scratch = palloc(sizeof(double) * vec->n);
	memcpy(scratch, vec->v, sizeof(double) * vec->n);
	out->med = median(scratch, vec->n);
	out->s = robust_spread(vec->v, vec->n, out->med, scratch);
	pfree(scratch);
}

/*
 * ISO day of the week (1 = Monday .. 7 = Sunday) of a date.
 */
static int
iso_dow(int32 day)
{
	int			dow = j2day(day + POSTGRES_EPOCH_JDATE);

	return dow == 0 ? 7 : dow;
}

/*
 * Open a cursor over the source's rows of days lo .. d1 with volume > 0:
 * day, volume, rows, off-hours rows, actor, relation.
 */
static Portal
source_cursor_open(Oid source, int32 lo, int32 d1)
{
	StringInfoData q;
	Oid			argtypes[2] = {DATEOID, DATEOID};
	Datum		args[2];

	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT s.day, greatest(s.rows, s.tagged_rows)::pg_catalog.float8, "
					 "s.rows::pg_catalog.float8, s.off_hours_rows::pg_catalog.float8, "
					 "s.actor::pg_catalog.text, s.relation::pg_catalog.text "
					 "FROM %s s WHERE s.day OPERATOR(pg_catalog.>=) $1 "
					 "AND s.day OPERATOR(pg_catalog.<=) $2 "
					 "AND greatest(s.rows, s.tagged_rows) OPERATOR(pg_catalog.>) 0",
					 DatumGetCString(DirectFunctionCall1(regclassout,
														 ObjectIdGetDatum(source))));
	args[0] = DateADTGetDatum(lo);
	args[1] = DateADTGetDatum(d1);
	return SPI_cursor_open_with_args(NULL, q.data, 2, argtypes, args, NULL,
									 true, 0);
}

/*
 * Make room in the open-addressing table of (actor, relation) pairs for
 * need pairs at a load under one half (*pairs, *pmask: table and mask;
 * the table grows four times what is needed, rehashing every pair).
 */
static void
pairs_reserve(DetectPair **pairs, uint32 *pmask, uint64 need)
{
	uint32		cap = 1024;
	DetectPair *old = *pairs;
	uint32		oldcap = old ? *pmask + 1 : 0;
	uint32		k;

	if (need * 2 <= (uint64) *pmask)
		return;
	while ((uint64) cap < need * 4)
		cap <<= 1;
	*pairs = MemoryContextAllocHuge(CurrentMemoryContext,
									sizeof(DetectPair) * (Size) cap);
	memset(*pairs, 0, sizeof(DetectPair) * (Size) cap);
	*pmask = cap - 1;
	for (k = 0; k < oldcap; k++)
	{
		if (old[k].key != 0)
		{
			uint32		j = pair_hash(old[k].key) & *pmask;

			while ((*pairs)[j].key != 0)
				j = (j + 1) & *pmask;
			(*pairs)[j] = old[k];
		}
	}
	if (old)
		pfree(old);
}

/*
 * The index of the actor named t in actors and *act, adding it (with no
 * days yet) if new; *act grows as needed (*maxact entries).
 */
static int
actor_id(DetectStrTab *actors, DetectActor **act, int *maxact, int *nactors,
		 text *t)
{
	bool		added;
	int			a = strtab_id(actors, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
							  &added);

	if (added)
	{
		if (a == *maxact)
		{
			*maxact *= 2;
			*act = repalloc(*act, sizeof(DetectActor) * *maxact);
		}
		memset(&(*act)[a], 0, sizeof(DetectActor));
		(*act)[a].name = actors->strs[a];
		(*act)[a].len = actors->lens[a];
		(*act)[a].hash = actors->hashes[a];
		(*act)[a].maxdays = 0;
		(*nactors)++;
	}
	Assert(a < *maxact);
	return a;
}

/*
 * Append to ac's days the day of row tup (desc: source_cursor_open's
 * columns), whose volume is vol.
 */
static void
actor_add_day(DetectActor *ac, HeapTuple tup, TupleDesc desc, int32 day,
			  double vol)
{
	DetectDay  *dd;
	bool		isnull;
	Datum		d;

	if (ac->ndays == ac->maxdays)
	{
		ac->maxdays = Max(32, ac->maxdays * 2);
		if (ac->days == NULL)
			ac->days = palloc(sizeof(DetectDay) * ac->maxdays);
		else
			ac->days = repalloc(ac->days, sizeof(DetectDay) * ac->maxdays);
	}
	dd = &ac->days[ac->ndays++];
	dd->day = day;
	dd->vol = vol;
	d = heap_getattr(tup, 3, desc, &isnull);
	dd->rws = isnull ? 0 : DatumGetFloat8(d);
	d = heap_getattr(tup, 4, desc, &isnull);
	dd->off = isnull ? 0 : DatumGetFloat8(d);
}

/*
 * Read the source's rows of days lo .. d1 with volume > 0 (CTEs agg and
 * wrel/seen): fills the actor table with each actor's days (not yet sorted
 * or merged) and marks (actor, relation) pairs: in the window (from w_lo),
 * or seen before it.
 */
static DetectActor *
load_source(Oid source, int32 lo, int32 w_lo, int32 d1, DetectStrTab *actors,
			int *nactors, DetectPair **pairs_out, uint32 *pmask_out)
{
	Portal		portal;
	DetectActor *act;
	int			maxact = 1024;
	DetectStrTab rels;
	DetectPair *pairs = NULL;
	uint32		pmask = 0;
	int64		npairs = 0;
	MemoryContext work = CurrentMemoryContext;

	portal = source_cursor_open(source, lo, d1);
	/* SPI calls may leave their own context current: come back each time. */
	MemoryContextSwitchTo(work);

	act = palloc(sizeof(DetectActor) * maxact);
	strtab_init(actors, 16384);
	strtab_init(&rels, 1024);
	*nactors = 0;

	for (;;)
	{
		uint64		i;
		uint64		nrows;
		TupleDesc	desc;

		SPI_cursor_fetch(portal, true, AA_DETECT_BATCH);
		MemoryContextSwitchTo(work);
		nrows = SPI_processed;
		if (nrows == 0)
			break;
		desc = SPI_tuptable->tupdesc;

		/* Room for every pair read so far at a load under one half. */
		pairs_reserve(&pairs, &pmask, (uint64) (npairs + nrows));

		for (i = 0; i < nrows; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			bool		isnull;
			Datum		d;
			text	   *t;
			int			a;
			int			rel;
			bool		added;
			DetectPair *p;
			int32		day;
			double		vol;

			d = heap_getattr(tup, 5, desc, &isnull);
			/* A NULL actor can match no peer group or window: skip it. */
			if (isnull)
				continue;
			a = actor_id(actors, &act, &maxact, nactors, DatumGetTextPP(d));
			day = DatumGetDateADT(heap_getattr(tup, 1, desc, &isnull));
			vol = DatumGetFloat8(heap_getattr(tup, 2, desc, &isnull));
			actor_add_day(&act[a], tup, desc, day, vol);

			/* Relations: in the window, or seen before it. */
			d = heap_getattr(tup, 6, desc, &isnull);
			if (isnull)
				rel = AA_DETECT_NULL_REL;
			else
			{
				t = DatumGetTextPP(d);
				rel = strtab_id(&rels, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t),
								&added);
			}
			p = pair_get(pairs, pmask, a, rel, &added);
			if (added)
				npairs++;
			if (day >= w_lo)
			{
				p->in_window = true;
				p->wvol += vol;
			}
			else if (rel != AA_DETECT_NULL_REL)
				p->seen = true;
		}
		SPI_freetuptable(SPI_tuptable);
		MemoryContextSwitchTo(work);
	}
	SPI_cursor_close(portal);
	MemoryContextSwitchTo(work);

	*pairs_out = pairs;
	*pmask_out = pmask;
	return act;
}

/*
 * Read peer groups and bulk flags from access_audit.actor_groups (CTEs who,
 * peerkey) into groups; unmapped actors are in 'default'.  pkey is the
 * group when it has at least 5 humans, else AA_DETECT_ALL.
 */
static void
load_groups(DetectActor *act, int nactors, DetectStrTab *actors,
			DetectStrTab *groups)
{
	uint64		i;
	int			a;
	int		   *humans;
	bool		added;
	int			dflt;
	int			rc;
	MemoryContext work = CurrentMemoryContext;

	strtab_init(groups, 64);
	for (a = 0; a < nactors; a++)
		act[a].grp = -1;

	rc = SPI_execute("SELECT g.actor::pg_catalog.text, g.peer_group::pg_catalog.text, g.bulk_user "
					 "FROM access_audit.actor_groups g", true, 0);
	MemoryContextSwitchTo(work);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "unrecognized SPI result: %d", rc);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Datum		d;
		text	   *t;

		d = heap_getattr(tup, 1, desc, &isnull);
		if (isnull)
			continue;
		t = DatumGetTextPP(d);
		a = strtab_find(actors, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
		if (a < 0)
			continue;
		d = heap_getattr(tup, 2, desc, &isnull);
		if (isnull)
			act[a].grp = strtab_id(groups, "default", 7, &added);
		else
		{
			t = DatumGetTextPP(d);
			act[a].grp = strtab_id(groups, VARDATA_ANY(t),
								   VARSIZE_ANY_EXHDR(t), &added);
		}
		d = heap_getattr(tup, 3, desc, &isnull);
		act[a].bulk = isnull ? false : DatumGetBool(d);
	}
	SPI_freetuptable(SPI_tuptable);
	MemoryContextSwitchTo(work);

	dflt = strtab_id(groups, "default", 7, &added);
	humans = palloc0(sizeof(int) * groups->n);
	for (a = 0; a < nactors; a++)
	{
		if (act[a].grp < 0)
		{
			act[a].grp = dflt;
			act[a].bulk = false;
		}
		if (!act[a].bulk)
			humans[act[a].grp]++;
	}
	for (a = 0; a < nactors; a++)
	{
		int			g = act[a].grp;

		/* A group literally named '*' is the SQL's all-humans key. */
		if (humans[g] >= 5 &&
			!(groups->lens[g] == 1 && groups->strs[g][0] == '*'))
			act[a].pkey = g;
		else
			act[a].pkey = AA_DETECT_ALL;
	}
	pfree(humans);
}

/*
 * Sort each actor's days and merge the rows of one day (several relations)
 * into one (CTE agg).
 */
static void
merge_days(DetectActor *act, int nactors)
{
	int			a;

	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];
		int			i;
		int			k = 0;

		if (ac->ndays == 0)
			continue;
		qsort(ac->days, ac->ndays, sizeof(DetectDay), cmp_day);
		for (i = 1; i < ac->ndays; i++)
		{
			if (ac->days[i].day == ac->days[k].day)
			{
				ac->days[k].vol += ac->days[i].vol;
				ac->days[k].rws += ac->days[i].rws;
				ac->days[k].off += ac->days[i].off;
			}
			else
				ac->days[++k] = ac->days[i];
		}
		ac->ndays = k + 1;
	}
}

/*
 * Day-of-week effect (CTEs hist, centred, season): the mean, by ISO
 * weekday, of humans' ln volumes before the window around their own mean,
 * each clipped to [-3, 3].  season[1..7]; 0 for a weekday without data.
 */
static void
compute_season(DetectActor *act, int nactors, int32 w_lo, double *season)
{
	double		sum[8] = {0};
	int64		cnt[8] = {0};
	int			a;
	int			i;

	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];
		double		my = 0;
		int			n = 0;

		if (ac->bulk)
			continue;
		for (i = 0; i < ac->ndays && ac->days[i].day < w_lo; i++)
		{
			my += log(1 + ac->days[i].vol);
			n++;
		}
		if (n == 0)
			continue;
		my = my / n;
		for (i = 0; i < n; i++)
		{
			double		res = log(1 + ac->days[i].vol) - my;
			int			dow = iso_dow(ac->days[i].day);

			sum[dow] += Max(-3, Min(3, res));
			cnt[dow]++;
		}
	}
	for (i = 1; i <= 7; i++)
		season[i] = cnt[i] > 0 ? sum[i] / cnt[i] : 0;
}

/*
 * Per actor: the day values (CTE days), own baselines (CTEs self1, self)
 * and the window totals (CTE win).
 */
static void
compute_self(DetectActor *act, int nactors, const double *season,
			 const DetectBounds *b)
{
	int			a;
	int			maxdays = 1;
	int32		self_end = Max(b->w_lo, b->r_lo);
	double	   *base_y;			/* window-length totals, baseline days */
	double	   *base_ya;		/* the same, weekday-corrected */
	double	   *ref_yd;			/* daily values, the ramp's reference */
	double	   *scratch;

	for (a = 0; a < nactors; a++)
		maxdays = Max(maxdays, act[a].ndays);
	base_y = palloc(sizeof(double) * maxdays);
	base_ya = palloc(sizeof(double) * maxdays);
	ref_yd = palloc(sizeof(double) * maxdays);
	scratch = palloc(sizeof(double) * maxdays);

	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];
		int			i;
		int			nbv = 0;
		int			nrv = 0;
		int			head = 0;

		for (i = 0; i < ac->ndays; i++)
		{
			DetectDay  *dd = &ac->days[i];
			double		tot;

			Assert(i == 0 || ac->days[i - 1].day < dd->day);
			dd->sdow = season[iso_dow(dd->day)];
			if (b->nd == 1)
				tot = dd->vol;
			else
			{
				int			j;

				/* sum(vol) OVER (RANGE nd - 1 days PRECEDING), in day order */
				while (ac->days[head].day < dd->day - (b->nd - 1))
					head++;
				tot = 0;
				for (j = head; j <= i; j++)
					tot += ac->days[j].vol;
			}
			dd->y = log(1 + tot);
			dd->ya = b->nd == 1 ? dd->y - dd->sdow : dd->y;
			dd->yd = log(1 + dd->vol) - dd->sdow;

			if (dd->day < self_end)
				ac->has_self = true;
			if (dd->day < b->w_lo)
				ac->n_hist++;
			if (dd->day >= b->b_lo && dd->day < b->w_lo)
			{
				base_y[nbv] = dd->y;
				base_ya[nbv] = dd->ya;
				nbv++;
				ac->off_b += dd->off;
				ac->rws_b += dd->rws;
			}
			if (dd->day >= b->ref_lo && dd->day < b->r_lo)
				ref_yd[nrv++] = dd->yd;
			if (dd->day >= b->w_lo)
			{
				ac->has_win = true;
				ac->v += dd->vol;
				ac->wrws += dd->rws;
				ac->woff += dd->off;
			}
		}

		ac->n_base = nbv;
		ac->n_ref = nrv;
		if (!ac->has_self)
			continue;
		if (nbv > 0)
		{
			ac->med_raw = median(base_y, nbv);
			/* base_ya keeps its order for the spread: sort a copy */
			memcpy(scratch, base_ya, sizeof(double) * nbv);
			ac->med = median(scratch, nbv);
		}
		ac->s_self = robust_spread(base_ya, nbv, ac->med, scratch);
		if (nrv > 0)
		{
			memcpy(scratch, ref_yd, sizeof(double) * nrv);
			ac->ref_med = median(scratch, nrv);
		}
		ac->s_ref = robust_spread(ref_yd, nrv, ac->ref_med, scratch);
		Assert(ac->s_self >= 0.5 && ac->s_ref >= 0.5);
	}
	pfree(base_y);
	pfree(base_ya);
	pfree(ref_yd);
	pfree(scratch);
}

/*
 * Relations read in the window, and the window volume from relations not
 * read earlier in the look-back (CTE relw).
 */
static void
compute_relations(DetectActor *act, DetectPair *pairs, uint32 pmask)
{
	uint64		i;

	if (pairs == NULL)
		return;
	for (i = 0; i <= pmask; i++)
	{
		DetectActor *ac;

		if (pairs[i].key == 0 || !pairs[i].in_window)
			continue;
		ac = &act[(pairs[i].key >> 32) - 1];
		ac->n_rel++;
		if (!pairs[i].seen)
			ac->new_vol += pairs[i].wvol;
	}
}

/*
 * Slow ramp (CTEs rdays, rpeer, rc, ramp): Page's CUSUM of each actor's
 * standardised daily excess over the ramp period.  The team's shared rise
 * of the day (the peers' median excess over their own earlier level, in ln
 * units, when positive) is taken off before standardising and clipping: a
 * ramp to 12x in a team that doubled is a ramp to 6x beyond the team's, not
 * a clipped 3 SDs less the team's rise in the peers' SD units (which left
 * almost nothing of it).
 */
static void
compute_ramp(DetectActor *act, int nactors, int ngroups, int32 d1,
			 int32 r_lo, int32 nr)
{
	int			nkeys = ngroups + 1;	/* last: all humans */
	DetectVec  *pu = palloc0(sizeof(DetectVec) * nkeys * nr);
	double	   *pmed = palloc(sizeof(double) * nkeys * nr);
	bool	   *phas = palloc0(sizeof(bool) * nkeys * nr);
	int			a;
	int			i;

/* the day's excess over the actor's earlier level, ln units */
#define RAMP_X(dd, ac) ((dd)->yd - (ac)->ref_med)

	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];

		if (!ac->has_self || ac->n_ref < 5 || ac->bulk)
			continue;
		for (i = 0; i < ac->ndays; i++)
		{
			DetectDay  *dd = &ac->days[i];
			double		u;

			if (dd->day < r_lo)
				continue;
			u = RAMP_X(dd, ac);
			if (ac->pkey != AA_DETECT_ALL)
				vec_push(&pu[ac->pkey * nr + (dd->day - r_lo)], u);
			vec_push(&pu[ngroups * nr + (dd->day - r_lo)], u);
		}
	}
	for (i = 0; i < nkeys * nr; i++)
	{
		if (pu[i].n > 0)
		{
			phas[i] = true;
			pmed[i] = median(pu[i].v, pu[i].n);
		}
	}

	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];
		int			key = ac->pkey == AA_DETECT_ALL ? ngroups : ac->pkey;
		double		c = 0;
		double		minc = 0;
		double		sumx = 0;
		double		sumr = 0;
		int64		nrec = 0;

		if (!ac->has_self || ac->n_ref < 5)
			continue;
		for (i = 0; i < ac->ndays; i++)
		{
			DetectDay  *dd = &ac->days[i];
			double		u;
			double		p = 0;
			double		x;
			double		expected;

			if (dd->day < r_lo)
				continue;
			if (!ac->bulk && phas[key * nr + (dd->day - r_lo)])
				p = pmed[key * nr + (dd->day - r_lo)];
			/* clipped so one odd day cannot make a ramp */
			u = Max(-3, Min(3, (RAMP_X(dd, ac) - Max(0, p)) / ac->s_ref));
			x = u - AA_DETECT_RAMP_K;
			c += x;
			sumx += x;
			if (!ac->has_ramp || c < minc)
				minc = c;
			expected = exp(ac->ref_med + dd->sdow) - 1;
			ac->excess += Max(0, dd->vol - expected);
			if (dd->day > d1 - 7)
			{
				sumr += log((1 + dd->vol) / (1 + expected));
				nrec++;
			}
			ac->has_ramp = true;
		}
		if (!ac->has_ramp)
			continue;
		ac->ramp_z = sumx - Min(0, minc);
		if (nrec > 0)
		{
			ac->has_recent = true;
			ac->recent_ratio = exp(sumr / nrec);
		}
	}
#undef RAMP_X
}

/*
 * The last working day (Monday to Friday) of a month; month may be out of
 * 1..12 and is normalised.
 */
static int32
last_working_day(int year, int month)
{
	int			jd;
	int			dow;

	while (month < 1)
	{
		month += 12;
		year--;
	}
	while (month > 12)
	{
		month -= 12;
		year++;
	}
	/* the day before the first of the next month */
	jd = (month == 12 ? date2j(year + 1, 1, 1) : date2j(year, month + 1, 1)) - 1;
	dow = j2day(jd);
	if (dow == 0)
		jd -= 2;
	else if (dow == 6)
		jd -= 1;
	return jd - POSTGRES_EPOCH_JDATE;
}

/*
 * The calendar tags of day d1 and the earlier days that carry the same
 * tags: the same weekday in the AA_CAL_WEEKS weeks before, the last working
 * days of the AA_CAL_MONTHS months before if d1 is a month end, and of the
 * AA_CAL_QUARTERS quarters before if it is a quarter end.  Fills dates and
 * their tag masks (a date may carry several tags) and returns how many.
 */
static int
calendar_dates(int32 d1, int *tags, int32 *dates, int *masks)
{
	int			year;
	int			month;
	int			mday;
	int			n = 0;
	int			k;
	int			i;

	j2date(d1 + POSTGRES_EPOCH_JDATE, &year, &month, &mday);
	*tags = AA_CAL_WEEKDAY;
	if (d1 == last_working_day(year, month))
	{
		*tags |= AA_CAL_MONTH_END;
		if (month % 3 == 0)
			*tags |= AA_CAL_QUARTER_END;
	}

	for (k = 1; k <= AA_CAL_WEEKS; k++)
	{
		dates[n] = d1 - 7 * k;
		masks[n++] = AA_CAL_WEEKDAY;
	}
	for (k = 1; (*tags & AA_CAL_MONTH_END) && k <= AA_CAL_MONTHS; k++)
	{
		int32		d = last_working_day(year, month - k);
		int			tag = AA_CAL_MONTH_END;

		if ((*tags & AA_CAL_QUARTER_END) && k % 3 == 0)
			tag |= AA_CAL_QUARTER_END;
		for (i = 0; i < n && dates[i] != d; i++)
			;
		if (i == n)
		{
			dates[n] = d;
			masks[n++] = 0;
		}
		masks[i] |= tag;
	}
	for (k = AA_CAL_MONTHS / 3 + 1; (*tags & AA_CAL_QUARTER_END) && k <= AA_CAL_QUARTERS; k++)
	{
		dates[n] = last_working_day(year, month - 3 * k);
		masks[n++] = AA_CAL_QUARTER_END;
	}
	Assert(n <= AA_CAL_MAX_DATES);
	return n;
}

/*
 * Read each actor's volume on the calendar dates (CTE cal): one small query
 * for a handful of days, which may lie before the look-back.
 */
static void
load_calendar(Oid source, const int32 *dates, int ndates, DetectActor *act,
			  int nactors, DetectStrTab *actors)
{
	StringInfoData q;
	Oid			argtypes[1] = {DATEARRAYOID};
	Datum		args[1];
	Datum	   *elems;
	Portal		portal;
	int			a;
	int			k;
	MemoryContext work = CurrentMemoryContext;

	for (a = 0; a < nactors; a++)
		act[a].calvol = palloc0(sizeof(double) * Max(ndates, 1));
	if (ndates == 0)
		return;
	elems = palloc(sizeof(Datum) * ndates);
	for (k = 0; k < ndates; k++)
		elems[k] = DateADTGetDatum(dates[k]);
	args[0] = PointerGetDatum(construct_array(elems, ndates, DATEOID,
											  sizeof(DateADT), true,
											  TYPALIGN_INT));
	initStringInfo(&q);
	appendStringInfo(&q,
					 "SELECT s.day, s.actor::pg_catalog.text, "
					 "greatest(s.rows, s.tagged_rows)::pg_catalog.float8 "
					 "FROM %s s WHERE s.day OPERATOR(pg_catalog.=) ANY ($1) "
					 "AND greatest(s.rows, s.tagged_rows) OPERATOR(pg_catalog.>) 0",
					 DatumGetCString(DirectFunctionCall1(regclassout,
														 ObjectIdGetDatum(source))));
	portal = SPI_cursor_open_with_args(NULL, q.data, 1, argtypes, args, NULL,
									   true, 0);
	MemoryContextSwitchTo(work);
	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, AA_DETECT_BATCH);
		MemoryContextSwitchTo(work);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		d;
			text	   *t;
			int32		day;

			d = heap_getattr(tup, 2, desc, &isnull);
			if (isnull)
				continue;
			t = DatumGetTextPP(d);
			a = strtab_find(actors, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			if (a < 0)
				continue;
			day = DatumGetDateADT(heap_getattr(tup, 1, desc, &isnull));
			for (k = 0; k < ndates && dates[k] != day; k++)
				;
			if (k < ndates)
				act[a].calvol[k] += DatumGetFloat8(heap_getattr(tup, 3, desc,
																&isnull));
		}
		SPI_freetuptable(SPI_tuptable);
		MemoryContextSwitchTo(work);
	}
	SPI_cursor_close(portal);
	MemoryContextSwitchTo(work);
}

/*
 * Calendar rhythms (CTE rhythm): for each tag of the window day, the
 * actor's usual excess on its earlier occurrences over their ordinary level
 * (weekday-corrected ln volume minus the baseline median), as the median
 * over the occurrences since the actor was first seen, a day without
 * exports counting as no excess.  A tag needs at least two active
 * occurrences, and four occurrences for a weekday, and a usual excess of at
 * least 2x and two robust SDs (a rhythm is a recurring spike, not noise);
 * the largest such usual excess becomes the actor's calendar uplift, which the window day is
 * discounted by.  Only for 1-day windows and actors with a baseline.
 */
static void
compute_calendar(DetectActor *act, int nactors, const double *season,
				 int tags, const int32 *dates, const int *masks, int ndates)
{
	double		buf[AA_CAL_MAX_DATES];	/* excess on each occurrence */
	static const int tag_list[3] = {AA_CAL_QUARTER_END, AA_CAL_MONTH_END,
	AA_CAL_WEEKDAY};
	int			a;
	int			t;
	int			k;

	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];
		int32		first;

		if (!ac->has_self || ac->n_base < 3 || ac->ndays == 0)
			continue;
		first = ac->days[0].day;
		for (k = 0; k < ndates; k++)
			if (ac->calvol[k] > 0 && dates[k] < first)
				first = dates[k];

		for (t = 0; t < 3; t++)
		{
			int			tag = tag_list[t];
			int			nocc = 0;
			int			nact = 0;
			double		up;

			if (!(tags & tag))
				continue;
			for (k = 0; k < ndates; k++)
			{
				if (!(masks[k] & tag) || dates[k] < first)
					continue;
				if (ac->calvol[k] > 0)
				{
					buf[nocc++] = log(1 + ac->calvol[k])
						- season[iso_dow(dates[k])] - ac->med;
					nact++;
				}
				else
					buf[nocc++] = 0;
			}
			if (nact < 2 || nocc < (tag == AA_CAL_WEEKDAY ? 4 : 2))
				continue;
			up = median(buf, nocc);
			/* a rhythm is a usual spike: notable on its own, and at least 2x */
			if (up < Max(M_LN2, 2 * ac->s_self))
				continue;
			if (up > ac->cal_uplift)
			{
				ac->cal_uplift = up;
				ac->cal_tag = tag;
				ac->cal_n = nact;
				ac->cal_occ = nocc;
			}
		}
	}
}

/*
 * Cold start (CTE cold): an actor with fewer than AA_DETECT_MIN_HISTORY
 * active days before the window has no usual of their own to speak of, so
 * each of their active days in the last AA_DETECT_COLD_DAYS is compared with
 * the peers active that day (median and robust spread of ln(1 + volume);
 * all humans when fewer than 5 peers were active).  cold_z combines the
 * days as mean(z) * sqrt(n), n capped at 5 so a long run cannot grow
 * without bound: a contractor exporting 25x their peers on each of their
 * first five days stands out although no single day is extreme.
 */
static void
compute_cold(DetectActor *act, int nactors, int ngroups, int32 d1)
{
	int			nkeys = ngroups + 1;
	int32		c_lo = d1 - AA_DETECT_COLD_DAYS + 1;
	DetectVec  *dv = palloc0(sizeof(DetectVec) * nkeys * AA_DETECT_COLD_DAYS);
	DetectPeer *dp = palloc0(sizeof(DetectPeer) * nkeys * AA_DETECT_COLD_DAYS);
	int			a;
	int			i;

	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];

		if (ac->bulk)
			continue;
		for (i = 0; i < ac->ndays; i++)
		{
			DetectDay  *dd = &ac->days[i];
			double		y;

			if (dd->day < c_lo || dd->day > d1)
				continue;
			y = log(1 + dd->vol);
			if (ac->pkey != AA_DETECT_ALL)
				vec_push(&dv[ac->pkey * AA_DETECT_COLD_DAYS + (dd->day - c_lo)], y);
			vec_push(&dv[ngroups * AA_DETECT_COLD_DAYS + (dd->day - c_lo)], y);
		}
	}
	for (i = 0; i < nkeys * AA_DETECT_COLD_DAYS; i++)
		peer_stats(&dv[i], &dp[i]);

	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];
		int			key = ac->pkey == AA_DETECT_ALL ? ngroups : ac->pkey;
		double		sz = 0;
		double		slr = 0;

		if (ac->bulk || ac->n_hist >= AA_DETECT_MIN_HISTORY)
			continue;
		for (i = 0; i < ac->ndays; i++)
		{
			DetectDay  *dd = &ac->days[i];
			DetectPeer *p;
			double		y;

			if (dd->day < c_lo || dd->day > d1)
				continue;
			p = &dp[key * AA_DETECT_COLD_DAYS + (dd->day - c_lo)];
			if (!p->exists || p->n < 5)
				p = &dp[ngroups * AA_DETECT_COLD_DAYS + (dd->day - c_lo)];
			if (!p->exists || p->n < 5)
				continue;
			y = log(1 + dd->vol);
			sz += (y - p->med) / p->s;
			slr += y - p->med;
			ac->cold_n++;
		}
		if (ac->cold_n > 0)
		{
			ac->cold_z = sz / ac->cold_n * sqrt(Min(ac->cold_n, 5));
			ac->cold_lr = slr / ac->cold_n;
		}
	}
}

/*
 * The days of a call: the window of nd days ending on d1, the baseline of
 * nb days before it, the ramp period (the last min(28, nb) days) and its
 * reference level (the nb days before that), clamped to the date range.
 */
static void
detect_bounds(DateADT d1, int32 nd, int32 nb, DetectBounds *b)
{
	int64		t;

	Assert(nd >= 1 && nb >= nd);
	b->d1 = d1;
	b->nd = nd;
	b->nb = nb;
	b->nr = Min(28, nb);
	t = (int64) d1 - nd + 1;
	b->w_lo = (int32) Max(t, DATEVAL_NOBEGIN + 1);
	t = t - nb;
	b->b_lo = (int32) Max(t, DATEVAL_NOBEGIN + 1);
	t = (int64) d1 - b->nr + 1;
	b->r_lo = (int32) Max(t, DATEVAL_NOBEGIN + 1);
	t = t - nb;
	b->ref_lo = (int32) Max(t, DATEVAL_NOBEGIN + 1);
	b->lo = Min(b->b_lo, b->ref_lo);
	Assert(b->lo <= b->b_lo && b->b_lo <= b->w_lo && b->w_lo <= b->d1);
	Assert(b->ref_lo <= b->r_lo && b->r_lo <= b->d1);
}

/*
 * Peers in the same window (CTEs pw, pws) and pooled baselines (CTEs pb,
 * pbs), per peer key.  A pooled baseline's median is the median of the
 * members' own medians; its spread combines how far those medians lie
 * apart with the members' typical own spread, at least 0.5.
 */
static void
compute_peers(DetectActor *act, int nactors, int ngroups, DetectPeers *peers)
{
	int			nkeys = ngroups + 1;
	DetectVec  *window_y = palloc0(sizeof(DetectVec) * nkeys);
	DetectVec  *base_med = palloc0(sizeof(DetectVec) * nkeys);
	DetectVec  *base_s = palloc0(sizeof(DetectVec) * nkeys);
	int			a;
	int			k;

	peers->nkeys = nkeys;
	peers->window = palloc0(sizeof(DetectPeer) * nkeys);
	peers->pooled = palloc0(sizeof(DetectPeer) * nkeys);
	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];

		if (ac->bulk)
			continue;
		Assert(ac->pkey == AA_DETECT_ALL || (ac->pkey >= 0 && ac->pkey < ngroups));
		if (ac->has_win)
		{
			double		y = log(1 + ac->v);

			if (ac->pkey != AA_DETECT_ALL)
				vec_push(&window_y[ac->pkey], y);
			vec_push(&window_y[ngroups], y);
		}
		if (ac->has_self && ac->n_base >= 3)
		{
			if (ac->pkey != AA_DETECT_ALL)
			{
				vec_push(&base_med[ac->pkey], ac->med);
				vec_push(&base_s[ac->pkey], ac->s_self);
			}
			vec_push(&base_med[ngroups], ac->med);
			vec_push(&base_s[ngroups], ac->s_self);
		}
	}
	for (k = 0; k < nkeys; k++)
	{
		DetectPeer *pooled = &peers->pooled[k];
		int			n = base_med[k].n;
		double	   *dev;
		double		s_within;
		int			i;

		peer_stats(&window_y[k], &peers->window[k]);
		if (n == 0)
			continue;
		Assert(base_s[k].n == n);
		pooled->exists = true;
		pooled->n = n;
		dev = palloc(sizeof(double) * n);
		memcpy(dev, base_med[k].v, sizeof(double) * n);
		pooled->med = median(dev, n);
		s_within = median(base_s[k].v, n);
		for (i = 0; i < n; i++)
			dev[i] = fabs(base_med[k].v[i] - pooled->med);
		pooled->s = Max(sqrt(pow(1.4826 * median(dev, n), 2) + pow(s_within, 2)),
						0.5);
		pfree(dev);
	}
}

/*
 * self_z of every actor with a window and a baseline of their own (before
 * the team's share is taken off), and the team's shared excess of the day
 * (CTE team): the median self_z of the humans of the peer key active in the
 * window with such a baseline, when positive.  A quarter-end report or a
 * team taking on new work raises everyone's self_z at once; only the
 * excess beyond the team's is the actor's own.
 */
static void
compute_team(DetectActor *act, int nactors, int ngroups, double se,
			 DetectPeers *peers)
{
	DetectVec  *team = palloc0(sizeof(DetectVec) * peers->nkeys);
	int			a;
	int			k;

	peers->team_n = palloc0(sizeof(int) * peers->nkeys);
	peers->team_z = palloc0(sizeof(double) * peers->nkeys);
	for (a = 0; a < nactors; a++)
	{
		DetectActor *ac = &act[a];

		if (!ac->has_win || !ac->has_self || ac->n_base < 3)
			continue;
		ac->has_z = true;
		ac->self_z = (log(1 + ac->v) - se - ac->med - ac->cal_uplift) / ac->s_self;
		if (ac->bulk)
			continue;
		if (ac->pkey != AA_DETECT_ALL)
			vec_push(&team[ac->pkey], ac->self_z);
		vec_push(&team[ngroups], ac->self_z);
	}
	for (k = 0; k < peers->nkeys; k++)
	{
		peers->team_n[k] = team[k].n;
		if (team[k].n >= 3)
			peers->team_z[k] = Max(0, median(team[k].v, team[k].n));
	}
}

/*
 * The peers an actor is compared with: those active in the same window
 * when there are 5; else the group's pooled baseline (*pooled); else, in a
 * new installation without baselines, all humans active in the window
 * (*all_humans).  NULL for bulk accounts and when there are none.
 */
static const DetectPeer *
choose_peers(const DetectActor *ac, int key, const DetectPeers *peers,
			 bool *pooled, bool *all_humans)
{
	int			all = peers->nkeys - 1;

	*pooled = false;
	*all_humans = key == all;
	if (ac->bulk)
		return NULL;
	if (peers->window[key].exists && peers->window[key].n >= 5)
		return &peers->window[key];
	if (peers->pooled[key].exists)
	{
		*pooled = true;
		return &peers->pooled[key];
	}
	if (peers->window[all].exists && peers->window[all].n >= 5)
	{
		*all_humans = true;
		return &peers->window[all];
	}
	return NULL;
}

/* Columns of access_audit._detect_actors, in order. */
enum
{
	COL_ACTOR, COL_GRP, COL_BULK, COL_V, COL_N_BASE, COL_BASE_MEDIAN,
	COL_S_SELF, COL_SELF_TYP, COL_SELF_Z, COL_PEER_TYP, COL_PEER_Z,
	COL_RAMP_Z, COL_RAMP_EXCESS, COL_RECENT_RATIO, COL_REF_TYP,
	COL_OFF_SHARE, COL_OFF_SHARE_BASE, COL_N_REL, COL_NEW_SHARE, COL_N_HIST,
	COL_PEER_LABEL, COL_CAL_UPLIFT, COL_CAL_LABEL, COL_CAL_N, COL_CAL_OCC,
	COL_COLD_N, COL_COLD_Z, COL_COLD_RATIO, COL_TEAM_Z, COL_W_ROWS
};

StaticAssertDecl(COL_W_ROWS + 1 == AA_DETECT_NCOLS,
				 "the column list must match AA_DETECT_NCOLS");

#define SET_COL(col, datum) (values[(col)] = (datum), nulls[(col)] = false)

/*
 * Append one actor's row (the SQL's CTE z) to the result.  se is the
 * weekday correction of the window for 1-day windows, else 0.
 */
static void
emit_actor(ReturnSetInfo *rsinfo, const DetectActor *ac,
		   const DetectStrTab *groups, const DetectPeers *peers, double se,
		   int window_dow)
{
	static const char *const weekdays[8] = {NULL, "on Mondays", "on Tuesdays",
		"on Wednesdays", "on Thursdays", "on Fridays", "on Saturdays",
	"on Sundays"};
	Datum		values[AA_DETECT_NCOLS];
	bool		nulls[AA_DETECT_NCOLS];
	int			all = peers->nkeys - 1;
	int			key = ac->pkey == AA_DETECT_ALL ? all : ac->pkey;
	double		ly = log(1 + ac->v);
	int64		n_base = ac->has_self ? ac->n_base : 0;
	double		up = ac->cal_uplift;
	const DetectPeer *peer;
	bool		pooled;
	bool		all_humans;
	double		tz = 0;

	Assert(key >= 0 && key < peers->nkeys);
	Assert(up >= 0);
	memset(nulls, true, sizeof(nulls));
	SET_COL(COL_ACTOR, PointerGetDatum(cstring_to_text_with_len(ac->name, ac->len)));
	SET_COL(COL_GRP, PointerGetDatum(cstring_to_text_with_len(groups->strs[ac->grp],
															  groups->lens[ac->grp])));
	SET_COL(COL_BULK, BoolGetDatum(ac->bulk));
	SET_COL(COL_V, Float8GetDatum(ac->v));
	SET_COL(COL_N_BASE, Int64GetDatum(n_base));
	if (n_base >= 1)
	{
		SET_COL(COL_BASE_MEDIAN, Float8GetDatum(exp(ac->med_raw) - 1));
		SET_COL(COL_S_SELF, Float8GetDatum(ac->s_self));
	}

	/*
	 * The usual of the window day includes its calendar rhythm and the team's
	 * shared excess of the day (the group's, or all humans' when fewer than 3
	 * of the group have a self_z).
	 */
	if (ac->has_z && !ac->bulk)
		tz = peers->team_n[key] >= 3 ? peers->team_z[key] : peers->team_z[all];
	/* a cold start's own days count from two: the dump of a new hire */
	if (n_base >= 3 ||
		(n_base == 2 && !ac->bulk && ac->n_hist < AA_DETECT_MIN_HISTORY))
	{
		SET_COL(COL_SELF_TYP, Float8GetDatum(exp(ac->med + se + up + tz * ac->s_self) - 1));
		SET_COL(COL_SELF_Z, Float8GetDatum((ly - se - ac->med - up) / ac->s_self - tz));
	}

	/* Peers; the actor's own calendar rhythm is taken off before comparing. */
	peer = choose_peers(ac, key, peers, &pooled, &all_humans);
	if (peer != NULL)
	{
		double		pse = pooled ? se : 0;

		Assert(peer->s >= 0.5);
		SET_COL(COL_PEER_TYP, Float8GetDatum(exp(peer->med + pse) - 1));
		SET_COL(COL_PEER_Z, Float8GetDatum((ly - up - peer->med - pse) / peer->s));
		if (all_humans)
			SET_COL(COL_PEER_LABEL, CStringGetTextDatum("all people"));
		else
			SET_COL(COL_PEER_LABEL,
					PointerGetDatum(cstring_to_text_with_len(groups->strs[ac->pkey],
															 groups->lens[ac->pkey])));
	}

	if (ac->has_ramp)
		SET_COL(COL_RAMP_Z, Float8GetDatum(ac->ramp_z));
	SET_COL(COL_RAMP_EXCESS, Float8GetDatum(ac->has_ramp ? ac->excess : 0));
	if (ac->has_recent)
		SET_COL(COL_RECENT_RATIO, Float8GetDatum(ac->recent_ratio));
	if (ac->has_self && ac->n_ref >= 1)
		SET_COL(COL_REF_TYP, Float8GetDatum(exp(ac->ref_med) - 1));

	SET_COL(COL_OFF_SHARE, Float8GetDatum(ac->has_win ?
										  Min(1.0, ac->woff / Max(ac->v, ac->wrws)) : 0));
	SET_COL(COL_OFF_SHARE_BASE, Float8GetDatum(ac->has_self && ac->rws_b != 0 ?
											   Min(1.0, ac->off_b / ac->rws_b) : 0));
	SET_COL(COL_N_REL, Int64GetDatum(ac->n_rel));
	SET_COL(COL_NEW_SHARE, Float8GetDatum(n_base >= 3 && ac->has_win && ac->v != 0 ?
										  ac->new_vol / ac->v : 0));
	SET_COL(COL_N_HIST, Int64GetDatum(ac->n_hist));

	SET_COL(COL_CAL_UPLIFT, Float8GetDatum(up));
	if (ac->cal_tag != 0)
		SET_COL(COL_CAL_LABEL,
				CStringGetTextDatum(ac->cal_tag == AA_CAL_QUARTER_END ? "at quarter end" :
									ac->cal_tag == AA_CAL_MONTH_END ? "at month end" :
									weekdays[window_dow]));
	SET_COL(COL_CAL_N, Int32GetDatum(ac->cal_n));
	SET_COL(COL_CAL_OCC, Int32GetDatum(ac->cal_occ));

	SET_COL(COL_COLD_N, Int32GetDatum(ac->cold_n));
	if (ac->cold_n > 0)
	{
		SET_COL(COL_COLD_Z, Float8GetDatum(ac->cold_z));
		SET_COL(COL_COLD_RATIO, Float8GetDatum(exp(ac->cold_lr)));
	}
	SET_COL(COL_TEAM_Z, Float8GetDatum(tz));
	/* rows returned in the window: far below v, the volume was probed */
	SET_COL(COL_W_ROWS, Float8GetDatum(ac->wrws));

	/* the tuplestore copies the row into its own context */
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

#undef SET_COL

/*
 * Compute the per-actor terms of rank_exporters over the source (a table
 * or view of actor_daily's shape) for the window of nd days ending on d1
 * and a baseline of nb days, and return them as the rows of a materialized
 * SRF: one row per actor active in the window or in the ramp period, with
 * the columns of access_audit._detect_actors (the SQL's CTE z).  Must be
 * called from a set-returning function; reads through SPI.
 */
void
aa_detect_actor_stats(FunctionCallInfo fcinfo, Oid source, DateADT d1,
					  int32 nd, int32 nb)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext work;
	MemoryContext old;
	DetectBounds b;
	DetectStrTab actors;
	DetectStrTab groups;
	DetectActor *act;
	int			nactors;
	DetectPair *pairs;
	uint32		pmask;
	double		season[8];
	double		se;				/* weekday correction of a 1-day window */
	DetectPeers peers;
	int			cal_tags = 0;
	int			ncal = 0;
	int32		cal_dates[AA_CAL_MAX_DATES];
	int			cal_masks[AA_CAL_MAX_DATES];
	int			a;
	int			rc;

	InitMaterializedSRF(fcinfo, 0);
	/* An infinite as_of leaves no day to read, as in the SQL. */
	if (DATE_NOT_FINITE(d1))
		return;
	detect_bounds(d1, nd, nb, &b);

	work = AllocSetContextCreate(CurrentMemoryContext, "access_audit detect",
								 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	/* Read: the roll-up, the peer groups, the calendar's earlier days. */
	if ((rc = SPI_connect()) != SPI_OK_CONNECT)
		elog(ERROR, "unrecognized SPI result: %d", rc);
	/* SPI_connect switched to its own context: allocate in ours. */
	MemoryContextSwitchTo(work);
	act = load_source(source, b.lo, b.w_lo, b.d1, &actors, &nactors, &pairs,
					  &pmask);
	load_groups(act, nactors, &actors, &groups);
	/* calendar rhythms are learnt for 1-day windows only */
	if (nd == 1)
		ncal = calendar_dates(b.d1, &cal_tags, cal_dates, cal_masks);
	load_calendar(source, cal_dates, ncal, act, nactors, &actors);
	SPI_finish();
	MemoryContextSwitchTo(work);

	/* Per actor: own history, relations, calendar rhythm. */
	merge_days(act, nactors);
	compute_season(act, nactors, b.w_lo, season);
	se = nd == 1 ? season[iso_dow(b.d1)] : 0;
	compute_self(act, nactors, season, &b);
	compute_relations(act, pairs, pmask);
	compute_calendar(act, nactors, season, cal_tags, cal_dates, cal_masks,
					 ncal);

	/* Against others: peers, ramp, cold start, the team's shared excess. */
	compute_peers(act, nactors, groups.n, &peers);
	compute_ramp(act, nactors, groups.n, b.d1, b.r_lo, b.nr);
	compute_cold(act, nactors, groups.n, b.d1);
	compute_team(act, nactors, groups.n, se, &peers);

	/* One row per actor active in the window or the ramp period (CTE z). */
	for (a = 0; a < nactors; a++)
	{
		if (act[a].has_win || act[a].has_ramp)
			emit_actor(rsinfo, &act[a], &groups, &peers, se, iso_dow(b.d1));
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(work);
}
