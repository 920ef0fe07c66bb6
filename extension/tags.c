/*-------------------------------------------------------------------------
 *
 * tags.c
 *		The "access_audit" security label provider and the tag cache.
 *
 * This file owns what a tag is (its syntax), who may change one (and that
 * tags are set only where the extension is installed), the audit record
 * of every change and of every refused attempt, and each backend's cache
 * of effective tags per relation (a relation's own labels plus those of
 * all its inheritance and partition ancestors, matched by column name).  Tags follow the data: a
 * partition detached from its parent (or a child taken out of an
 * inheritance tree) keeps, as labels of its own, the tags it inherited,
 * with an audit record of each (a ProcessUtility hook).
 *
 * Locking and ownership: the only shared state is the generation counter
 * in AuditTagsShared, an atomic bumped at commit of any transaction that
 * changed a label (or created the extension).  Each backend compares it at
 * the start of every audited statement and drops its whole cache when it
 * moved.  A relcache callback drops single entries on DDL (renames,
 * ATTACH PARTITION, ...).  Dropped entries are freed only at the start of
 * the next top-level statement, because capture may still hold pointers
 * into them; everything capture keeps past a statement is copied.
 *
 * IDENTIFICATION
 *	  extension/tags.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_seclabel.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/seclabel.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "access_audit.h"
#include "compat.h"
#include "queue.h"
#include "records.h"
#include "tags.h"

#define AA_MAX_TAG_LEN		63

typedef struct AuditTagsShared
{
	pg_atomic_uint64 generation;
} AuditTagsShared;

typedef struct TagCacheEntry
{
	Oid			relid;			/* hash key */
	MemoryContext cxt;			/* holds everything of this entry */
	AuditRelTags tags;
} TagCacheEntry;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static AuditTagsShared *tags_shared = NULL;

static HTAB *tag_cache = NULL;
static MemoryContext tag_cache_cxt = NULL;
static List *graveyard = NIL;	/* contexts of dropped entries */
static uint64 cached_generation = PG_UINT64_MAX;
static bool db_active = false;
static bool bump_at_commit = false;

/*
 * Tags set or removed in a database without the extension by this
 * transaction, registered centrally at its commit (aa_queue_tag_note), so
 * that status() elsewhere lists them.  Bounded like the registry.
 */
typedef struct ElsewhereTag
{
	Oid			reloid;
	int			attnum;
	char		object[3 * NAMEDATALEN];
	char		tag[AA_QUEUE_TAG_LEN];
	bool		removed;
} ElsewhereTag;

static ElsewhereTag *elsewhere = NULL;
static int	n_elsewhere = 0;
static int	n_elsewhere_lost = 0;	/* beyond what the registry holds */

/* check this database's registered tags before commit (a DROP ran) */
static bool elsewhere_recheck = false;

/*
 * The member of access_audit_admin whose SECURITY LABEL statement is
 * running as the table's owner (see seclabel_owner_for_admin), else
 * InvalidOid.  Set and reset around that one statement.
 */
static Oid	label_admin = InvalidOid;

/*
 * Moves whenever an answer of aa_tags_lookup() may have changed (the cache
 * was dropped, or an entry of it), so that capture can keep what it
 * derived from tags per plan and know when to derive it again.
 */
static uint64 tags_epoch = 1;

static void tags_shmem_request(void);
static void tags_shmem_startup(void);
static void tags_relabel_hook(const ObjectAddress *object, const char *seclabel);
static void tags_xact_callback(XactEvent event, void *arg);
static void tag_elsewhere_note(const ObjectAddress *object, const char *seclabel);
static void tags_elsewhere_copy(CreatedbStmt * stmt);
static void tags_relcache_callback(Datum arg, Oid relid);
static void tags_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
								bool readOnlyTree, ProcessUtilityContext context,
								ParamListInfo params, QueryEnvironment *queryEnv,
								DestReceiver *dest, QueryCompletion *qc);
static void tags_refuse_change(const char *relation, const char *column,
							   const char *old, const char *label);
static void tags_check_seclabel_stmt(SecLabelStmt * stmt);
static Oid	seclabel_owner_for_admin(Node *parsetree);
static void tag_change_record(const ObjectAddress *object, const char *old,
							  const char *label, const char *why);

/*
 * Put a dropped entry's context in the graveyard.  The list lives in
 * TopMemoryContext because invalidations arrive in any context.
 */
static void
graveyard_add(MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	graveyard = lappend(graveyard, cxt);
	MemoryContextSwitchTo(old);
}

/*
 * Register the label provider, the shared generation counter and the
 * callbacks.  Called from _PG_init.
 */
void
aa_tags_init(void)
{
	register_label_provider(AA_LABEL_PROVIDER, tags_relabel_hook);

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = tags_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = tags_shmem_startup;

	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = tags_ProcessUtility;

	RegisterXactCallback(tags_xact_callback, NULL);
	CacheRegisterRelcacheCallback(tags_relcache_callback, (Datum) 0);
}

static void
tags_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(AuditTagsShared)));
}

static void
tags_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	tags_shared = ShmemInitStruct("access_audit tags", sizeof(AuditTagsShared),
								  &found);
	if (!found)
		pg_atomic_init_u64(&tags_shared->generation, 1);
	LWLockRelease(AddinShmemInitLock);
}

/*
 * Is label a valid tag: a lower-case identifier, optionally followed by
 * ':'-separated lower-case identifiers (pii, pii:phone, financial)?
 */
bool
aa_tags_valid_label(const char *label)
{
	const char *p = label;
	bool		at_start = true;

	if (label == NULL || *label == '\0' || strlen(label) > AA_MAX_TAG_LEN)
		return false;
	for (; *p; p++)
	{
		if (*p == ':')
		{
			if (at_start)
				return false;
			at_start = true;
			continue;
		}
		if (at_start)
		{
			if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
				return false;
			at_start = false;
		}
		else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				   *p == '_'))
			return false;
	}
	return !at_start;
}

/* Relations whose columns can carry tags: those that hold data */
static bool
taggable_relkind(char relkind)
{
	return relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE ||
		relkind == RELKIND_MATVIEW || relkind == RELKIND_FOREIGN_TABLE;
}

/*
 * Label provider hook: validate the tag, refuse anyone but superusers and
 * members of access_audit_admin (even table owners), and write the audit
 * record of the change.  seclabel is NULL for IS NULL (removal).
 */
static void
tags_relabel_hook(const ObjectAddress *object, const char *seclabel)
{
	Oid			admin;
	char		relkind;
	char	   *old;

	if (seclabel != NULL && !aa_tags_valid_label(seclabel))
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid access_audit tag \"%s\"", seclabel),
				errhint("Tags are lower-case identifiers of at most %d characters, optionally with ':' parts, for example \"pii\" or \"pii:phone\".",
						AA_MAX_TAG_LEN));

	if (object->classId != RelationRelationId)
		ereport(ERROR,
				errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				errmsg("access_audit tags apply only to tables and their columns"),
				errhint("Tag the columns of the table that holds the data."));

	relkind = get_rel_relkind(object->objectId);
	if (!taggable_relkind(relkind))
		ereport(ERROR,
				errcode(ERRCODE_WRONG_OBJECT_TYPE),
				errmsg("cannot tag \"%s\"", get_rel_name(object->objectId)),
				errdetail("Only tables, partitioned tables, materialized views and foreign tables can be tagged."),
				errhint("Tag the columns of the underlying table: reads through views are audited there."));

	/* an admin's statement runs as the owner: it was checked before */
	admin = get_role_oid(AA_ROLE_ADMIN, true);
	if (!OidIsValid(label_admin) && !superuser() &&
		!(OidIsValid(admin) && has_privs_of_role(GetUserId(), admin)))
	{
		char	   *relname;
		char	   *colname = NULL;

		relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(object->objectId)),
											 get_rel_name(object->objectId));
		if (object->objectSubId > 0)
			colname = psprintf("%s.%s", relname,
							   quote_identifier(get_attname(object->objectId,
															(AttrNumber) object->objectSubId,
															false)));
		tags_refuse_change(relname, colname,
						   GetSecurityLabel(object, AA_LABEL_PROVIDER),
						   seclabel);
	}

	/*
	 * Take turns with a copy labelling this column (label_existing()), and
	 * see a label it committed meanwhile, which SetSecurityLabel is then to
	 * replace rather than insert beside.
	 */
	LockDatabaseObject(SecLabelRelationId, object->objectId,
					   (uint16) object->objectSubId, ExclusiveLock);
	InvalidateCatalogSnapshot();
	old = GetSecurityLabel(object, AA_LABEL_PROVIDER);

	/*
	 * A tag in a database without the extension audits nothing there: say so
	 * now, since no status view of another database can see it.
	 */
	if (!OidIsValid(get_extension_oid(AA_NAME, true)))
	{
		if (seclabel != NULL)
			ereport(WARNING,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("access_audit is not installed in database \"%s\"",
						   get_database_name(MyDatabaseId)),
					errdetail("The tag is kept, but reads of \"%s\" are not audited until the extension is created.",
							  get_rel_name(object->objectId)),
					errhint("Run CREATE EXTENSION access_audit in this database."));
		tag_elsewhere_note(object, seclabel);
	}
	tag_change_record(object, old, seclabel,
					  OidIsValid(label_admin) ?
					  psprintf("tagged by a member of %s on a table owned by %s",
							   AA_ROLE_ADMIN,
							   GetUserNameFromId(GetUserId(), false)) : NULL);
	/* a new tag, not a changed one, starts a publication's export of it */
	if (old == NULL)
		aa_capture_tag_published(object->objectId, object->objectSubId, seclabel);

	/* others see the change at their next statement after our commit */
	CacheInvalidateRelcacheByRelid(object->objectId);
	bump_at_commit = true;
}

/*
 * Refuse a tag change by a role that may not make it: record the attempt
 * (command REFUSED, like the guard's refusals), then raise the error.  The
 * record goes to the queue before the error, so the rollback does not take
 * it away.  relation and column name the target as far as it is known
 * (either may be NULL); old is its current tag if known, label the one
 * asked for (NULL: removal).
 */
static void
tags_refuse_change(const char *relation, const char *column,
				   const char *old, const char *label)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"action\": ");
	escape_json(&buf, label ? "SECURITY LABEL" : "SECURITY LABEL IS NULL");
	appendStringInfoString(&buf, ", \"object\": ");
	aa_json_string_or_null(&buf, column ? column : relation);
	appendStringInfoString(&buf, ", \"old\": ");
	aa_json_string_or_null(&buf, old);
	appendStringInfoString(&buf, ", \"new\": ");
	aa_json_string_or_null(&buf, label);
	appendStringInfoString(&buf, ", \"by\": ");
	escape_json(&buf, GetUserNameFromId(GetUserId(), false));
	appendStringInfoChar(&buf, '}');

	/* aa_capture_event() records only where the extension (a log) exists */
	aa_capture_event("REFUSED", relation, column, label ? label : old,
					 buf.data);
	ereport(ERROR,
			errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			errmsg("permission denied to change access_audit tags"),
			errdetail("Only superusers and members of role \"%s\" may tag or untag columns; this attempt has been recorded.",
					  AA_ROLE_ADMIN),
			errhint("Ask for membership in \"%s\".", AA_ROLE_ADMIN));
}

/*
 * SECURITY LABEL FOR access_audit, before PostgreSQL looks at the object:
 * refuse a new tag where the extension is not installed (no capture
 * happens there, so a tag would be a promise nobody keeps), and refuse and
 * record
 * it for anyone but superusers and members of access_audit_admin, before
 * PostgreSQL's own ownership check would refuse a non-owner without a
 * record.  The provider hook checks the privilege again (it also sees the
 * object's current tag).
 */
static void
tags_check_seclabel_stmt(SecLabelStmt * stmt)
{
	Oid			admin;
	char	   *relation = NULL;
	char	   *column = NULL;
	char	   *old = NULL;

	/* no provider named: PostgreSQL takes the only one loaded (ours) */
	if (stmt->provider != NULL &&
		strcmp(stmt->provider, AA_LABEL_PROVIDER) != 0)
		return;
	if (!IsTransactionState())
		return;

	/*
	 * Removing a label stays possible: DROP EXTENSION leaves the labels in
	 * place, and cleaning them up is no promise of capture.
	 */
	if (stmt->label != NULL && !OidIsValid(get_extension_oid(AA_NAME, true)))
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("extension \"%s\" is not installed in database \"%s\"",
					   AA_NAME, get_database_name(MyDatabaseId)),
				errdetail("Reads are audited only in databases where the extension is installed, so this tag would have no effect."),
				errhint("Run CREATE EXTENSION %s in this database first.",
						AA_NAME));

	admin = get_role_oid(AA_ROLE_ADMIN, true);
	if (superuser() ||
		(OidIsValid(admin) && has_privs_of_role(GetUserId(), admin)))
		return;

	if (stmt->objtype == OBJECT_TABLE || stmt->objtype == OBJECT_COLUMN ||
		stmt->objtype == OBJECT_MATVIEW ||
		stmt->objtype == OBJECT_FOREIGN_TABLE)
	{
		List	   *names = castNode(List, stmt->object);
		List	   *relnames = names;
		char	   *attname = NULL;
		Oid			relid;

		if (stmt->objtype == OBJECT_COLUMN && list_length(names) >= 2)
		{
			attname = strVal(llast(names));
			relnames = list_truncate(list_copy(names), list_length(names) - 1);
		}
		relation = NameListToString(relnames);
		column = attname ? NameListToString(names) : NULL;

		/* as the log names it, with the current tag, if it exists */
		relid = RangeVarGetRelid(makeRangeVarFromNameList(relnames), NoLock,
								 true);
		if (OidIsValid(relid))
		{
			ObjectAddress addr;

			relation = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												  get_rel_name(relid));
			addr.classId = RelationRelationId;
			addr.objectId = relid;
			addr.objectSubId = 0;
			if (attname)
			{
				column = psprintf("%s.%s", relation, quote_identifier(attname));
				addr.objectSubId = get_attnum(relid, attname);
			}
			if (addr.objectSubId != InvalidAttrNumber || attname == NULL)
				old = GetSecurityLabel(&addr, AA_LABEL_PROVIDER);
		}
	}
	tags_refuse_change(relation, column, old, stmt->label);
}

/*
 * The audit record of a tag change on object from old to label (either may
 * be NULL), with why it happened if not by SECURITY LABEL itself.
 */
static void
tag_change_record(const ObjectAddress *object, const char *old,
				  const char *label, const char *why)
{
	char	   *relname;
	char	   *colname = NULL;
	StringInfoData buf;

	/* the log exists only where the extension was created */
	if (!OidIsValid(get_extension_oid(AA_NAME, true)))
		return;

	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(object->objectId)),
										 get_rel_name(object->objectId));
	if (object->objectSubId > 0)
		colname = psprintf("%s.%s", relname,
						   quote_identifier(get_attname(object->objectId,
														(AttrNumber) object->objectSubId,
														false)));

	/*
	 * "by" is the role that asked for the change: the helper functions run as
	 * the extension owner, so the effective role alone would hide it.
	 */
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"old\": ");
	aa_json_string_or_null(&buf, old);
	appendStringInfoString(&buf, ", \"new\": ");
	aa_json_string_or_null(&buf, label);
	appendStringInfoString(&buf, ", \"by\": ");
	escape_json(&buf, GetUserNameFromId(GetOuterUserId(), false));
	if (why)
	{
		appendStringInfoString(&buf, ", \"why\": ");
		escape_json(&buf, why);
	}
	appendStringInfoChar(&buf, '}');

	aa_capture_event("SECURITY LABEL", relname, colname,
					 label ? label : old, buf.data);
}

/*
 * Ask for every backend's tag cache to be rebuilt once this transaction
 * commits.  Used by CREATE EXTENSION (through the SQL API).
 */
void
aa_tags_changed(void)
{
	bump_at_commit = true;
}

/*
 * Remember a tag set (or removed) in this database, which has no
 * extension, for the central registry at commit.
 */
static void
tag_elsewhere_note(const ObjectAddress *object, const char *seclabel)
{
	ElsewhereTag *e;
	char	   *relname;
	int			i;

	if (elsewhere == NULL)
		elsewhere = MemoryContextAllocZero(TopMemoryContext,
										   AA_QUEUE_TAGS_MAX * sizeof(ElsewhereTag));
	for (i = 0; i < n_elsewhere; i++)
		if (elsewhere[i].reloid == object->objectId &&
			elsewhere[i].attnum == object->objectSubId)
			break;
	if (i == AA_QUEUE_TAGS_MAX)
	{
		/* more than the registry holds anyway: said at commit */
		if (seclabel != NULL)
			n_elsewhere_lost++;
		return;
	}
	if (i == n_elsewhere)
		n_elsewhere++;
	e = &elsewhere[i];
	e->reloid = object->objectId;
	e->attnum = object->objectSubId;
	e->removed = (seclabel == NULL);
	strlcpy(e->tag, seclabel ? seclabel : "", sizeof(e->tag));
	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(object->objectId)),
										 get_rel_name(object->objectId));
	if (object->objectSubId > 0)
		relname = psprintf("%s.%s", relname,
						   quote_identifier(get_attname(object->objectId,
														(AttrNumber) object->objectSubId,
														false)));
	strlcpy(e->object, relname, sizeof(e->object));
}

/*
 * DROP EXTENSION access_audit leaves the labels in place: they are now tags
 * in a database without the extension, to be registered at commit.
 */
static void
tags_elsewhere_collect(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;

	rel = table_open(SecLabelRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		FormData_pg_seclabel *sl = (FormData_pg_seclabel *) GETSTRUCT(tup);
		bool		isnull;
		Datum		provider;
		Datum		label;
		ObjectAddress addr;

		if (sl->classoid != RelationRelationId ||
			get_rel_name(sl->objoid) == NULL)
			continue;
		provider = heap_getattr(tup, Anum_pg_seclabel_provider,
								RelationGetDescr(rel), &isnull);
		if (isnull || strcmp(TextDatumGetCString(provider), AA_LABEL_PROVIDER) != 0)
			continue;
		label = heap_getattr(tup, Anum_pg_seclabel_label,
							 RelationGetDescr(rel), &isnull);
		if (isnull)
			continue;
		ObjectAddressSubSet(addr, RelationRelationId, sl->objoid, sl->objsubid);
		tag_elsewhere_note(&addr, TextDatumGetCString(label));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * Before commit of a DROP or ALTER in a database without the extension:
 * registered tags whose label went with a table or column leave the
 * registry (PostgreSQL removes those labels without calling the provider).
 */
static void
tags_elsewhere_recheck(void)
{
	AuditQueueTagEntry *tags;
	int			n;
	int			i;

	tags = palloc(AA_QUEUE_TAGS_MAX * sizeof(AuditQueueTagEntry));
	n = aa_queue_tags_elsewhere(tags, AA_QUEUE_TAGS_MAX);
	for (i = 0; i < n; i++)
	{
		ObjectAddress addr;

		if (tags[i].dboid != MyDatabaseId)
			continue;
		ObjectAddressSubSet(addr, RelationRelationId, tags[i].reloid, tags[i].attnum);
		if (GetSecurityLabel(&addr, AA_LABEL_PROVIDER) == NULL)
			(void) aa_queue_tag_note(MyDatabaseId, tags[i].reloid,
									 tags[i].attnum, "", NULL, InvalidOid);
	}
	pfree(tags);
}

static void
tags_elsewhere_register(void)
{
	int			i;
	int			full = n_elsewhere_lost;

	for (i = 0; i < n_elsewhere; i++)
		if (!aa_queue_tag_note(MyDatabaseId, elsewhere[i].reloid,
							   elsewhere[i].attnum, elsewhere[i].object,
							   elsewhere[i].removed ? NULL : elsewhere[i].tag,
							   GetUserId()))
			full++;
	n_elsewhere = 0;
	if (full > 0)
		ereport(WARNING,
				errmsg("access_audit's registry of tags in databases without the extension is full: %d tags are not listed by access_audit.status",
					   full),
				errhint("Create the extension in the databases that hold tags, or remove tags there that are no longer needed."));
}

static void
tags_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (elsewhere_recheck && aa_queue_ready() &&
				!OidIsValid(get_extension_oid(AA_NAME, true)))
				tags_elsewhere_recheck();
			elsewhere_recheck = false;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (bump_at_commit && tags_shared)
				pg_atomic_fetch_add_u64(&tags_shared->generation, 1);
			bump_at_commit = false;
			if ((n_elsewhere > 0 || n_elsewhere_lost > 0) && aa_queue_ready())
				tags_elsewhere_register();
			n_elsewhere = 0;
			n_elsewhere_lost = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			bump_at_commit = false;
			n_elsewhere = 0;
			n_elsewhere_lost = 0;
			elsewhere_recheck = false;
			break;
		default:
			break;
	}
}

/*
 * Relcache callback: forget one relation's entry (or all, for InvalidOid).
 * Must not free memory capture may still use: the entry's context moves to
 * the graveyard, emptied at the next statement start.
 */
static void
tags_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	TagCacheEntry *entry;

	if (tag_cache == NULL)
		return;
	if (OidIsValid(relid))
	{
		entry = hash_search(tag_cache, &relid, HASH_FIND, NULL);
		if (entry)
		{
			MemoryContext cxt = entry->cxt;

			tags_epoch++;
			hash_search(tag_cache, &relid, HASH_REMOVE, NULL);
			if (cxt)
				graveyard_add(cxt);
		}
		return;
	}
	/* everything: the next statement start rebuilds from scratch */
	tags_epoch++;
	hash_seq_init(&status, tag_cache);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		MemoryContext cxt = entry->cxt;

		hash_search(tag_cache, &entry->relid, HASH_REMOVE, NULL);
		if (cxt)
			graveyard_add(cxt);
	}
}

/*
 * Does any relation of this database carry an access_audit label?
 */
static bool
db_has_labels(void)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	rel = table_open(SecLabelRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Datum		prov = heap_getattr(tup, Anum_pg_seclabel_provider,
										RelationGetDescr(rel), &isnull);

		if (!isnull && strcmp(TextDatumGetCString(prov), AA_LABEL_PROVIDER) == 0)
		{
			found = true;
			break;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Start of an audited-statement check: is capture active in this database
 * (extension created and at least one label)?  Refreshes the cache when
 * the generation moved and frees dropped entries.  Needs a transaction.
 */
bool
aa_tags_active(void)
{
	uint64		gen;

	if (tags_shared == NULL || !IsTransactionState())
		return false;

	gen = pg_atomic_read_u64(&tags_shared->generation);
	if (gen != cached_generation)
	{
		HASHCTL		ctl;

		if (tag_cache_cxt == NULL)
			tag_cache_cxt = AllocSetContextCreate(CacheMemoryContext,
												  "access_audit tag cache",
												  ALLOCSET_DEFAULT_SIZES);
		/* drop everything: all entries live under tag_cache_cxt */
		tags_epoch++;
		tag_cache = NULL;
		list_free(graveyard);
		graveyard = NIL;
		MemoryContextReset(tag_cache_cxt);

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(TagCacheEntry);
		ctl.hcxt = tag_cache_cxt;
		tag_cache = hash_create("access_audit tags", 256, &ctl,
								HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

		db_active = OidIsValid(get_extension_oid(AA_NAME, true)) &&
			db_has_labels();
		cached_generation = gen;
	}
	else if (graveyard != NIL)
	{
		ListCell   *lc;

		foreach(lc, graveyard)
			MemoryContextDelete((MemoryContext) lfirst(lc));
		list_free(graveyard);
		graveyard = NIL;
	}
	return db_active;
}

/*
 * Direct parents of relid, from pg_inherits.
 */
static List *
direct_parents(Oid relid)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	List	   *result = NIL;

	rel = table_open(InheritsRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, InheritsRelidSeqnoIndexId, true, NULL, 1,
							  &key);
	while ((tup = systable_getnext(scan)) != NULL)
		result = lappend_oid(result,
							 ((Form_pg_inherits) GETSTRUCT(tup))->inhparent);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return result;
}

/* one label found while building an entry */
typedef struct FoundLabel
{
	Oid			relid;
	int32		subid;
	char	   *label;
} FoundLabel;

/*
 * Labels of provider access_audit on relid and its columns.
 */
static List *
labels_of(Oid relid, List *acc)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData keys[2];
	HeapTuple	tup;

	rel = table_open(SecLabelRelationId, AccessShareLock);
	ScanKeyInit(&keys[0], Anum_pg_seclabel_objoid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	ScanKeyInit(&keys[1], Anum_pg_seclabel_classoid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(RelationRelationId));
	scan = systable_beginscan(rel, SecLabelObjectIndexId, true, NULL, 2, keys);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		FormData_pg_seclabel *form = (FormData_pg_seclabel *) GETSTRUCT(tup);
		bool		isnull;
		Datum		prov;
		Datum		label;

		prov = heap_getattr(tup, Anum_pg_seclabel_provider,
							RelationGetDescr(rel), &isnull);
		if (isnull || strcmp(TextDatumGetCString(prov), AA_LABEL_PROVIDER) != 0)
			continue;
		label = heap_getattr(tup, Anum_pg_seclabel_label,
							 RelationGetDescr(rel), &isnull);
		if (!isnull)
		{
			FoundLabel *fl = palloc(sizeof(FoundLabel));

			fl->relid = relid;
			fl->subid = form->objsubid;
			fl->label = TextDatumGetCString(label);
			acc = lappend(acc, fl);
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return acc;
}

/*
 * Add tag to the column's list unless it is already there.
 */
static void
col_add_tag(AuditColumnTags *col, const char *tag, int max)
{
	int			i;

	for (i = 0; i < col->ntags; i++)
		if (strcmp(col->tags[i], tag) == 0)
			return;
	if (col->ntags < max)
		col->tags[col->ntags++] = tag;
}

/*
 * Automatic and normal dependencies of (classid, objid, objsubid) on
 * columns of relid other than skip, appended to srcs.
 */
static List *
column_deps(Oid classid, Oid objid, int32 objsubid, Oid relid,
			AttrNumber skip, List *srcs)
{
	Relation	dep = table_open(DependRelationId, AccessShareLock);
	ScanKeyData key[3];
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&key[0], Anum_pg_depend_classid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(classid));
	ScanKeyInit(&key[1], Anum_pg_depend_objid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(objid));
	ScanKeyInit(&key[2], Anum_pg_depend_objsubid, BTEqualStrategyNumber,
				F_INT4EQ, Int32GetDatum(objsubid));
	scan = systable_beginscan(dep, DependDependerIndexId, true, NULL, 3, key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend d = (Form_pg_depend) GETSTRUCT(tup);

		if (d->refclassid == RelationRelationId && d->refobjid == relid &&
			d->refobjsubid > 0 && d->refobjsubid != skip &&
			(d->deptype == DEPENDENCY_NORMAL || d->deptype == DEPENDENCY_AUTO))
			srcs = lappend_int(srcs, d->refobjsubid);
	}
	systable_endscan(scan);
	table_close(dep, AccessShareLock);
	return srcs;
}

/*
 * The columns of relid that its generated column attno is computed from:
 * the dependencies of its generation expression (PostgreSQL 15 records them
 * on the pg_attrdef entry; later versions also on the column itself).
 */
static List *
generated_sources(Oid relid, AttrNumber attno)
{
	Oid			def = GetAttrDefaultOid(relid, attno);
	List	   *srcs = column_deps(RelationRelationId, relid, attno, relid,
								   attno, NIL);

	if (OidIsValid(def))
		srcs = column_deps(AttrDefaultRelationId, def, 0, relid, attno, srcs);
	return srcs;
}

/*
 * Build the effective tags of relid.  All catalog access happens here,
 * before the entry is entered into the hash, so an invalidation arriving
 * meanwhile cannot leave a half-built entry behind.
 */
static TagCacheEntry *
build_entry(Oid relid)
{
	MemoryContext cxt;
	MemoryContext old;
	List	   *labels = NIL;
	List	   *todo;
	List	   *seen = NIL;
	AuditRelTags tags;
	ListCell   *lc;
	char		relkind;
	TagCacheEntry *entry;
	bool		found;
	int			maxtags;

	memset(&tags, 0, sizeof(tags));
	tags.relid = relid;

	relkind = get_rel_relkind(relid);
	if (relid >= FirstNormalObjectId && taggable_relkind(relkind))
	{
		/* the relation and all its ancestors */
		todo = list_make1_oid(relid);
		while (todo != NIL)
		{
			Oid			r = linitial_oid(todo);

			todo = list_delete_first(todo);
			if (list_member_oid(seen, r))
				continue;
			seen = lappend_oid(seen, r);
			labels = labels_of(r, labels);
			todo = list_concat(todo, direct_parents(r));
		}
	}

	cxt = AllocSetContextCreate(tag_cache_cxt, "access_audit tag entry",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);

	if (labels != NIL)
	{
		char	   *nsp = get_namespace_name(get_rel_namespace(relid));
		char	   *rname = get_rel_name(relid);
		AttrNumber	attno;
		int			natts;
		List	   *generated = NIL;

		{
			HeapTuple	ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

			if (!HeapTupleIsValid(ctup))
				elog(ERROR, "cache lookup failed for relation %u", relid);
			natts = ((Form_pg_class) GETSTRUCT(ctup))->relnatts;
			ReleaseSysCache(ctup);
		}

		maxtags = list_length(labels);
		tags.qualname = quote_qualified_identifier(nsp, rname);
		tags.natts = natts;
		tags.cols = palloc0(sizeof(AuditColumnTags) * (natts + 1));

		for (attno = 1; attno <= natts; attno++)
		{
			HeapTuple	atup;
			Form_pg_attribute att;
			AuditColumnTags *col = &tags.cols[attno];
			char	   *attname;

			atup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(relid),
								   Int16GetDatum(attno));
			if (!HeapTupleIsValid(atup))
				continue;
			att = (Form_pg_attribute) GETSTRUCT(atup);
			if (att->attisdropped)
			{
				ReleaseSysCache(atup);
				continue;
			}
			attname = pstrdup(NameStr(att->attname));
			if (att->attgenerated == ATTRIBUTE_GENERATED_STORED)
				generated = lappend_int(generated, attno);
			ReleaseSysCache(atup);

			col->tags = palloc0(sizeof(char *) * maxtags);
			foreach(lc, labels)
			{
				FoundLabel *fl = lfirst(lc);
				bool		applies;

				if (fl->subid == 0)
					applies = true; /* table-level: every column */
				else if (fl->relid == relid)
					applies = (fl->subid == attno);
				else
				{
					/* ancestor's column: same name */
					char	   *pname = get_attname(fl->relid,
													(AttrNumber) fl->subid, true);

					applies = pname && strcmp(pname, attname) == 0;
				}
				if (applies)
					col_add_tag(col, pstrdup(fl->label), maxtags);
			}
			if (col->ntags > 0)
			{
				col->qualname = psprintf("%s.%s", tags.qualname,
										 quote_identifier(attname));
				tags.tagged = true;
			}
		}

		/*
		 * A stored generated column holds values computed from its sources
		 * (phone_copy text GENERATED ALWAYS AS (phone) STORED): without a tag
		 * of its own it carries theirs, so granting it alone does not open an
		 * unaudited way to the data.
		 */
		foreach(lc, generated)
		{
			AttrNumber	g = (AttrNumber) lfirst_int(lc);
			AuditColumnTags *col = &tags.cols[g];
			ListCell   *lc2;

			if (col->ntags > 0)
				continue;
			foreach(lc2, generated_sources(relid, g))
			{
				AttrNumber	a = (AttrNumber) lfirst_int(lc2);
				int			k;

				for (k = 0; a <= natts && k < tags.cols[a].ntags; k++)
					col_add_tag(col, tags.cols[a].tags[k], maxtags);
			}
			if (col->ntags > 0)
				col->qualname = psprintf("%s.%s", tags.qualname,
										 quote_identifier(get_attname(relid, g, false)));
		}
	}
	MemoryContextSwitchTo(old);

	entry = hash_search(tag_cache, &relid, HASH_ENTER, &found);
	if (found && entry->cxt)
		graveyard_add(entry->cxt);
	entry->relid = relid;
	entry->cxt = cxt;
	entry->tags = tags;
	return entry;
}

/*
 * Current epoch of the tag cache: while it stays the same, every
 * aa_tags_lookup() answers as before.
 */
uint64
aa_tags_epoch(void)
{
	return tags_epoch;
}

/*
 * Effective tags of relid, or NULL if none of its columns is tagged.
 * Call aa_tags_active() first in the same statement.
 */
AuditRelTags *
aa_tags_lookup(Oid relid)
{
	TagCacheEntry *entry;

	if (tag_cache == NULL)
		return NULL;
	entry = hash_search(tag_cache, &relid, HASH_FIND, NULL);
	if (entry == NULL)
		entry = build_entry(relid);
	return entry->tags.tagged ? &entry->tags : NULL;
}

/* ---------------------------------------------------------------------
 * Tags follow the data out of a partition or inheritance tree
 * ---------------------------------------------------------------------
 */

/* a label the detached relation is to keep (TopMemoryContext) */
typedef struct KeptLabel
{
	Oid			relid;
	int32		subid;
	char	   *label;
	char	   *why;
}			KeptLabel;

static bool
kept_has(List *kept, Oid relid, int32 subid)
{
	ListCell   *lc;

	foreach(lc, kept)
	{
		KeptLabel  *k = lfirst(lc);

		if (k->relid == relid && k->subid == subid)
			return true;
	}
	return false;
}

/*
 * The labels child inherits through parent (parent's own, then those of
 * its ancestors, nearest first), mapped onto child's columns by name, where
 * child has no label of its own.  The nearest ancestor wins where two label
 * the same column, as a relation holds one label per column.
 */
static List *
labels_to_keep(Oid child, Oid parent, const char *command, List *kept)
{
	List	   *own = labels_of(child, NIL);
	List	   *todo = list_make1_oid(parent);
	List	   *seen = list_make1_oid(child);

	while (todo != NIL)
	{
		Oid			r = linitial_oid(todo);
		List	   *found;
		ListCell   *lc;

		todo = list_delete_first(todo);
		if (list_member_oid(seen, r))
			continue;
		seen = lappend_oid(seen, r);
		found = labels_of(r, NIL);
		foreach(lc, found)
		{
			FoundLabel *fl = lfirst(lc);
			int32		subid = 0;
			ListCell   *lc2;
			bool		has_own = false;
			MemoryContext old;
			KeptLabel  *k;

			if (fl->subid != 0)
			{
				char	   *name = get_attname(fl->relid, (AttrNumber) fl->subid, true);

				if (name == NULL ||
					(subid = get_attnum(child, name)) == InvalidAttrNumber)
					continue;
			}
			foreach(lc2, own)
			{
				if (((FoundLabel *) lfirst(lc2))->subid == subid)
					has_own = true;
			}
			if (has_own || kept_has(kept, child, subid))
				continue;

			old = MemoryContextSwitchTo(TopMemoryContext);
			k = palloc(sizeof(KeptLabel));
			k->relid = child;
			k->subid = subid;
			k->label = pstrdup(fl->label);
			k->why = psprintf("kept from %s on %s",
							  quote_qualified_identifier(get_namespace_name(get_rel_namespace(fl->relid)),
														 get_rel_name(fl->relid)),
							  command);
			kept = lappend(kept, k);
			MemoryContextSwitchTo(old);
		}
		todo = list_concat(todo, direct_parents(r));
	}
	return kept;
}

/*
 * Before ALTER TABLE runs: the labels each relation it takes out of a tree
 * (DETACH PARTITION, its FINALIZE, NO INHERIT) would stop inheriting.
 */
static List *
detach_prepare(Node *parsetree)
{
	AlterTableStmt *stmt;
	List	   *kept = NIL;
	ListCell   *lc;

	if (!IsA(parsetree, AlterTableStmt))
		return NIL;
	stmt = (AlterTableStmt *) parsetree;
	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst(lc);
		Oid			child;
		Oid			parent;
		const char *command;

		if (!IsA(cmd, AlterTableCmd))
			continue;
		if (cmd->subtype == AT_DetachPartition ||
			cmd->subtype == AT_DetachPartitionFinalize)
		{
			child = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name, NoLock, true);
			parent = RangeVarGetRelid(stmt->relation, NoLock, true);
			command = "DETACH PARTITION";
		}
		else if (cmd->subtype == AT_DropInherit)
		{
			child = RangeVarGetRelid(stmt->relation, NoLock, true);
			parent = RangeVarGetRelid((RangeVar *) cmd->def, NoLock, true);
			command = "NO INHERIT";
		}
		else
			continue;
		if (OidIsValid(child) && OidIsValid(parent))
			kept = labels_to_keep(child, parent, command, kept);
	}
	return kept;
}

/*
 * Label column subid of relid (0: the relation) unless it has a tag of its
 * own, as the extension keeping one of its rules (kept partition labels,
 * copies of tagged data): SetSecurityLabel skips the provider hook, so no
 * tagging privilege is needed, and the change is an audit record with its
 * why like any other.
 */
static void
label_unlabelled(Oid relid, int32 subid, const char *label, const char *why)
{
	ObjectAddress addr;

	ObjectAddressSubSet(addr, RelationRelationId, relid, subid);
	if (GetSecurityLabel(&addr, AA_LABEL_PROVIDER) != NULL)
		return;
	SetSecurityLabel(&addr, AA_LABEL_PROVIDER, label);
	tag_change_record(&addr, NULL, label, why);
	aa_capture_tag_published(relid, subid, label);
	CacheInvalidateRelcacheByRelid(relid);
	bump_at_commit = true;
}

/*
 * Label column subid of a relation that may be written concurrently, as
 * label_unlabelled() does.  Two transactions copying tagged data into the
 * same unlabelled column would both insert its pg_seclabel row, and the
 * second would fail on the catalog's unique index once the first commits:
 * the user's INSERT would fail for the audit's sake.  So they take turns on
 * a lock of the column as an object of pg_seclabel (SECURITY LABEL takes it
 * too), held to the end of the transaction, and look again with a new
 * catalog snapshot.  The lock is only tried: a copy never waits for another
 * transaction; the one that holds it is labelling the column.  Returns
 * false in that case.
 */
static bool
label_existing(Oid relid, int32 subid, const char *label, const char *why)
{
	if (!ConditionalLockDatabaseObject(SecLabelRelationId, relid,
									   (uint16) subid, ExclusiveLock))
		return false;
	InvalidateCatalogSnapshot();
	label_unlabelled(relid, subid, label, why);
	/* a second copy into the column in this statement sees the label */
	CommandCounterIncrement();
	return true;
}

/*
 * After ALTER TABLE succeeded: give the relations their kept labels, each
 * with its audit record.  SetSecurityLabel skips the provider hook, so the
 * owner's DETACH does not need the tagging privilege.
 */
static void
detach_apply(List *kept)
{
	ListCell   *lc;

	foreach(lc, kept)
	{
		KeptLabel  *k = lfirst(lc);

		if (get_rel_name(k->relid) != NULL)
			label_unlabelled(k->relid, k->subid, k->label, k->why);
	}
}

static void
detach_forget(List *kept)
{
	ListCell   *lc;

	foreach(lc, kept)
	{
		KeptLabel  *k = lfirst(lc);

		pfree(k->label);
		pfree(k->why);
		pfree(k);
	}
	list_free(kept);
}

/*
 * The tags of relations made from a query, computed by capture.c while the
 * query runs (aa_tags_derived_push) and applied here once the statement has
 * made its relation: a stack of entries, one per statement (nested CREATE
 * TABLE AS included), kept in TopTransactionContext and forgotten with the
 * transaction.
 */
static List *derived_stack = NIL;
static LocalTransactionId derived_lxid = InvalidLocalTransactionId;

static void
derived_check_xact(void)
{
	if (derived_lxid != AA_MY_LXID)
	{
		derived_stack = NIL;	/* its memory went with the transaction */
		derived_lxid = AA_MY_LXID;
	}
}

int
aa_tags_derived_depth(void)
{
	derived_check_xact();
	return list_length(derived_stack);
}

/* the first entry pushed since depth; it and those after it are removed */
AuditDerivedTags *
aa_tags_derived_take(int depth)
{
	AuditDerivedTags *d = NULL;

	derived_check_xact();
	if (list_length(derived_stack) > depth)
		d = list_nth(derived_stack, depth);
	while (list_length(derived_stack) > depth)
		derived_stack = list_delete_last(derived_stack);
	return d;
}

/*
 * Push d (NULL: the statement makes no tagged column) for tags.c, which
 * takes it once the statement has made its relation.  d lives in
 * TopTransactionContext.
 */
void
aa_tags_derived_push(AuditDerivedTags *d)
{
	MemoryContext old;

	derived_check_xact();
	old = MemoryContextSwitchTo(TopTransactionContext);
	derived_stack = lappend(derived_stack, d);
	MemoryContextSwitchTo(old);
}

/*
 * The relation a CREATE TABLE AS / SELECT INTO / CREATE or REFRESH
 * MATERIALIZED VIEW (also under EXPLAIN ANALYZE) has just made, or
 * InvalidOid for any other statement.
 */
static Oid
derived_target(Node *parsetree)
{
	if (parsetree != NULL && IsA(parsetree, ExplainStmt))
		parsetree = ((ExplainStmt *) parsetree)->query;
	if (parsetree != NULL && IsA(parsetree, Query))
		parsetree = ((Query *) parsetree)->utilityStmt;
	if (parsetree == NULL)
		return InvalidOid;
	if (IsA(parsetree, CreateTableAsStmt))
		return RangeVarGetRelid(((CreateTableAsStmt *) parsetree)->into->rel,
								NoLock, true);
	if (IsA(parsetree, RefreshMatViewStmt))
		return RangeVarGetRelid(((RefreshMatViewStmt *) parsetree)->relation,
								NoLock, true);
	return InvalidOid;
}

/*
 * Give the columns of a relation made from a query the tags of the tagged
 * columns they were computed from (capture.c traced them while the query
 * ran).  Columns that have a tag of their own keep it.  Like a kept
 * partition label, this needs no tagging privilege: it is the extension
 * keeping its own rule, and each label is a tag change with its why.
 */
static void
derived_apply(Oid relid, AuditDerivedTags *d)
{
	int			i;

	if (!OidIsValid(relid) || d == NULL)
		return;
	for (i = 0; i < d->natts; i++)
	{
		if (d->labels[i] != NULL && get_attname(relid, i + 1, true) != NULL)
			label_unlabelled(relid, i + 1, d->labels[i], d->whys[i]);
	}
}

/*
 * After an INSERT, UPDATE or MERGE that wrote values computed from tagged
 * columns into relid (d->attnos: the columns written): label those columns,
 * like a relation made from a query, unless they carry a tag already (their
 * own or inherited; the tag cache answers without catalog access).  The
 * relation exists and others may be writing it: label_existing().  A column
 * another transaction is labelling right now is left to it, with a line in
 * the server log.  Only tables are labelled, never a view.
 */
void
aa_tags_label_copies(Oid relid, AuditDerivedTags *d)
{
	AuditRelTags *rt = aa_tags_lookup(relid);
	int			i;

	/*
	 * Never a view: its INSTEAD OF trigger writes elsewhere, with values not
	 * traced (a materialized view takes no INSERT)
	 */
	if (!taggable_relkind(get_rel_relkind(relid)))
		return;
	for (i = 0; i < d->natts; i++)
	{
		AttrNumber	a = d->attnos[i];

		if (d->labels[i] == NULL || a <= 0 ||
			(rt != NULL && a <= rt->natts && rt->cols[a].ntags > 0) ||
			get_attname(relid, a, true) == NULL)
			continue;
		if (!label_existing(relid, a, d->labels[i], d->whys[i]))
			ereport(LOG,
					errmsg("access_audit did not tag column \"%s\" of \"%s\": another transaction is tagging it",
						   get_attname(relid, a, false), get_rel_name(relid)),
					errdetail("Its values were %s.", d->whys[i]));
	}
}

/*
 * SECURITY LABEL FOR access_audit by someone who does not own the table.
 * Core PostgreSQL requires ownership before it calls the label provider,
 * but tagging is the security team's job, not the table owners': members
 * of access_audit_admin may tag and untag any table, partitioned table,
 * materialized view or foreign table in a schema they have USAGE on, other
 * than the system's schemas and access_audit's own.  For such a statement
 * this returns the table's owner, as whom the caller runs it (the provider
 * hook then validates and records the change as usual, naming the admin as
 * "by").  Everyone else without ownership gets an error naming the role
 * to ask for, rather than core's "must be owner".
 * Returns InvalidOid when the statement needs nothing from us: not a
 * SECURITY LABEL for our provider on a relation, a superuser, or the
 * owner.  Takes the lock core takes on the object.
 */
static Oid
seclabel_owner_for_admin(Node *parsetree)
{
	SecLabelStmt *stmt;
	ObjectAddress address;
	Relation	relation = NULL;
	HeapTuple	tuple;
	Oid			owner;
	Oid			nsp;
	Oid			admin;

	if (parsetree == NULL || !IsA(parsetree, SecLabelStmt))
		return InvalidOid;
	stmt = (SecLabelStmt *) parsetree;
	if (stmt->provider != NULL && strcmp(stmt->provider, AA_LABEL_PROVIDER) != 0)
		return InvalidOid;
	/* views too, so that they get the provider's "cannot tag" */
	if (stmt->objtype != OBJECT_TABLE && stmt->objtype != OBJECT_COLUMN &&
		stmt->objtype != OBJECT_MATVIEW && stmt->objtype != OBJECT_FOREIGN_TABLE &&
		stmt->objtype != OBJECT_VIEW)
		return InvalidOid;
	if (superuser() || !OidIsValid(get_extension_oid(AA_NAME, true)))
		return InvalidOid;

	address = get_object_address(stmt->objtype, stmt->object, &relation,
								 ShareUpdateExclusiveLock, false);
	if (relation != NULL)
		relation_close(relation, NoLock);
	if (address.classId != RelationRelationId)
		return InvalidOid;
	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(address.objectId));
	if (!HeapTupleIsValid(tuple))
		return InvalidOid;
	owner = ((Form_pg_class) GETSTRUCT(tuple))->relowner;
	ReleaseSysCache(tuple);
	if (has_privs_of_role(GetUserId(), owner))
		return InvalidOid;

	admin = get_role_oid(AA_ROLE_ADMIN, true);
	if (!OidIsValid(admin) || !has_privs_of_role(GetUserId(), admin))
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied to change access_audit tags"),
				errdetail("Only superusers and members of role \"%s\" may tag or untag columns.",
						  AA_ROLE_ADMIN),
				errhint("Ask for membership in \"%s\".", AA_ROLE_ADMIN));
	nsp = get_rel_namespace(address.objectId);

	/*
	 * Not the system's tables nor our own: tagging pg_class would audit every
	 * catalog query, tagging the log would audit the audit.  Core leaves that
	 * to their owners, superusers.
	 */
	if (IsCatalogNamespace(nsp) || IsToastNamespace(nsp) ||
		nsp == get_namespace_oid("information_schema", true) ||
		nsp == get_namespace_oid(AA_SCHEMA, true))
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied to tag \"%s\"",
					   get_rel_name(address.objectId)),
				errdetail("Members of \"%s\" may tag tables they do not own, but not system catalogs or access_audit's own tables; only a superuser may tag those.",
						  AA_ROLE_ADMIN),
				errhint("Ask a superuser."));
	if (aa_namespace_aclcheck_compat(nsp, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied for schema %s", get_namespace_name(nsp)),
				errdetail("Members of \"%s\" may tag tables in the schemas they have USAGE on.",
						  AA_ROLE_ADMIN),
				errhint("Ask the schema's owner to grant USAGE on it."));
	return owner;
}

/*
 * ProcessUtility hook: keep inherited tags on relations leaving a tree, and
 * tag relations made from a query of tagged columns.
 * The kept list lives in TopMemoryContext because DETACH CONCURRENTLY
 * commits and starts transactions inside the statement.
 */
static void
tags_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
					bool readOnlyTree, ProcessUtilityContext context,
					ParamListInfo params, QueryEnvironment *queryEnv,
					DestReceiver *dest, QueryCompletion *qc)
{
	List	   *kept;
	int			derived_depth = aa_tags_derived_depth();
	Oid			owner;
	Oid			save_userid = InvalidOid;
	int			save_sec_context = 0;
	Node	   *parsetree = pstmt->utilityStmt;
	bool		drops_extension;

	drops_extension = IsA(parsetree, DropStmt) &&
		((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION &&
		IsTransactionState() && OidIsValid(get_extension_oid(AA_NAME, true));

	/* who may tag is judged as the user who asked, before any elevation */
	if (IsA(pstmt->utilityStmt, SecLabelStmt))
		tags_check_seclabel_stmt((SecLabelStmt *) pstmt->utilityStmt);

	/* an admin tagging a table it does not own: run it as the owner */
	owner = seclabel_owner_for_admin(pstmt->utilityStmt);
	if (OidIsValid(owner))
	{
		GetUserIdAndSecContext(&save_userid, &save_sec_context);
		label_admin = save_userid;
		SetUserIdAndSecContext(owner,
							   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
	}
	kept = detach_prepare(pstmt->utilityStmt);

	PG_TRY();
	{
		aa_next_ProcessUtility_compat(prev_ProcessUtility, pstmt, queryString,
									  readOnlyTree, context, params, queryEnv,
									  dest, qc);
	}
	PG_CATCH();
	{
		if (OidIsValid(owner))
		{
			SetUserIdAndSecContext(save_userid, save_sec_context);
			label_admin = InvalidOid;
		}
		detach_forget(kept);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (OidIsValid(owner))
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
		label_admin = InvalidOid;
	}

	if (kept != NIL)
	{
		detach_apply(kept);
		detach_forget(kept);
	}
	derived_apply(derived_target(pstmt->utilityStmt),
				  aa_tags_derived_take(derived_depth));

	/* the registry of tags in databases without the extension */
	if (IsA(parsetree, CreatedbStmt))
		tags_elsewhere_copy((CreatedbStmt *) parsetree);
	else if (IsTransactionState() && aa_queue_ready() &&
			 (IsA(parsetree, DropStmt) || IsA(parsetree, AlterTableStmt) ||
			  IsA(parsetree, DropOwnedStmt)) &&
			 !OidIsValid(get_extension_oid(AA_NAME, true)))
	{
		if (drops_extension)
			tags_elsewhere_collect();
		else
			elsewhere_recheck = true;
	}
}

/*
 * CREATE DATABASE copies its template's labels: registered tags of the
 * template are the new database's too.
 */
static void
tags_elsewhere_copy(CreatedbStmt * stmt)
{
	const char *template = "template1";
	ListCell   *lc;
	Oid			from;
	Oid			to;

	if (!aa_queue_ready())
		return;
	foreach(lc, stmt->options)
	{
		DefElem    *d = (DefElem *) lfirst(lc);

		if (strcmp(d->defname, "template") == 0 && d->arg != NULL)
			template = defGetString(d);
	}
	from = get_database_oid(template, true);
	to = get_database_oid(stmt->dbname, true);
	if (OidIsValid(from) && OidIsValid(to))
		aa_queue_tags_copy(from, to);
}
