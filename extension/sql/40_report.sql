-- ---------------------------------------------------------------------------
-- Analyst report: access_audit.report(as_of, days, top) returns one
-- self-contained HTML page (inline CSS and SVG, no script, no external
-- resource) for people to look at: top exporters with a chart each, open
-- alerts, tag changes, read volume per table and the capture pipeline's
-- health.
--
-- Everything that comes from the audited database (actor names, relation
-- and column names, tags, query text, reasons) is chosen by users and is
-- passed through access_audit._html before it reaches the page: an actor
-- named <script> is shown as text.  The functions run with the caller's
-- rights (members of access_audit_reader see everything they need) and pin
-- their search_path.
-- ---------------------------------------------------------------------------

/*
 * _html: text made safe as HTML element content and as a quoted attribute
 * value (NULL gives '').  Tab, newline, carriage return and backslash become
 * character references too, so that the page has none of them raw and
 * COPY (SELECT access_audit.report()) TO 'file' writes it unchanged; other
 * control characters, which HTML does not allow, and the bidirectional
 * overrides and isolates (U+202A-U+202E, U+2066-U+2069), which could make
 * one name read as another, become U+FFFD.
 */
CREATE FUNCTION access_audit._html(s text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.regexp_replace(
	pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
	pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
		pg_catalog.replace(coalesce(s, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
		'"', '&quot;'), '''', '&#39;'), E'\\', '&#92;'), E'\t', '&#9;'), E'\n', '&#10;'),
		E'\r', '&#13;'),
	'[\x01-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]', U&'\FFFD', 'g');

COMMENT ON FUNCTION access_audit._html(text) IS
'Internal: escapes text for HTML content and attribute values (& < > " and '' as entities, control characters replaced).';

/*
 * _html_cut: _html of s cut to at most n characters, with an ellipsis when
 * cut, so that one long query cannot make the page unreadable.
 */
CREATE FUNCTION access_audit._html_cut(s text, n integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN access_audit._html(CASE WHEN pg_catalog.length(s) > n
							   THEN pg_catalog.left(s, n - 1) || U&'\2026' ELSE s END);

COMMENT ON FUNCTION access_audit._html_cut(text, integer) IS
'Internal: escapes text for HTML after cutting it to n characters (with an ellipsis when cut).';

/*
 * _report_chart: one small inline SVG chart of an actor's daily volume
 * (vals, one per day of days, in order) against their baseline band
 * [band_lo, band_hi] (drawn when not null) and their peer group's daily
 * median (peer, nulls where no peer was active).  Linear scale from 0 to
 * the largest value shown; the largest value and the first and last day
 * label the axes.
 */
CREATE FUNCTION access_audit._report_chart(days date[], vals float8[], peer float8[],
										   band_lo float8, band_hi float8, label text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	w			constant int := 420;	/* viewBox width */
	h			constant int := 120;	/* viewBox height */
	ml			constant int := 52;		/* left margin (y labels) */
	mr			constant int := 8;
	mt			constant int := 8;
	mb			constant int := 20;		/* bottom margin (x labels) */
	n			int := coalesce(array_length(vals, 1), 0);
	ymax		float8;
	dx			float8;
	pts			text := '';
	ppts		text := '';
	seg			text := '';
	svg			text;
	i			int;
	x			float8;
	y			float8;
BEGIN
	IF n = 0 THEN
		RETURN '';
	END IF;
	SELECT greatest(max(v), 1) INTO ymax
	  FROM unnest(vals || peer || ARRAY[band_hi]) v;
	ymax := ymax * 1.08;
	dx := CASE WHEN n > 1 THEN (w - ml - mr)::float8 / (n - 1) ELSE 0 END;

	FOR i IN 1 .. n LOOP
		x := ml + (i - 1) * dx;
		y := mt + (h - mt - mb) * (1 - coalesce(vals[i], 0) / ymax);
		pts := pts || round(x::numeric, 1) || ',' || round(y::numeric, 1) || ' ';
		/* the peer median line breaks on days no peer was active */
		IF peer[i] IS NULL THEN
			IF seg <> '' THEN
				ppts := ppts || '<polyline class="peer" points="' || seg || '"/>';
			END IF;
			seg := '';
		ELSE
			seg := seg || round(x::numeric, 1) || ','
				|| round((mt + (h - mt - mb) * (1 - peer[i] / ymax))::numeric, 1) || ' ';
		END IF;
	END LOOP;
	IF seg <> '' THEN
		ppts := ppts || '<polyline class="peer" points="' || seg || '"/>';
	END IF;

	svg := '<svg class="chart" viewBox="0 0 ' || w || ' ' || h || '" width="' || w
		|| '" height="' || h || '" role="img" xmlns="http://www.w3.org/2000/svg">'
		|| '<title>' || access_audit._html(label) || '</title>'
		|| '<rect class="plot" x="' || ml || '" y="' || mt || '" width="' || (w - ml - mr)
		|| '" height="' || (h - mt - mb) || '"/>';
	IF band_lo IS NOT NULL AND band_hi IS NOT NULL THEN
		svg := svg || '<rect class="band" x="' || ml || '" width="' || (w - ml - mr)
			|| '" y="' || round((mt + (h - mt - mb) * (1 - band_hi / ymax))::numeric, 1)
			|| '" height="' || greatest(1.5, round(((h - mt - mb) * (band_hi - band_lo) / ymax)::numeric, 1))
			|| '"/>';
	END IF;
	svg := svg
		|| '<polygon class="area" points="' || ml || ',' || (h - mb) || ' ' || pts
		|| round((ml + (n - 1) * dx)::numeric, 1) || ',' || (h - mb) || '"/>'
		|| ppts
		|| '<polyline class="vol" points="' || pts || '"/>'
		|| '<text class="ax" x="' || (ml - 4) || '" y="' || (mt + 9) || '" text-anchor="end">'
		|| access_audit.format_count(ymax / 1.08) || '</text>'
		|| '<text class="ax" x="' || (ml - 4) || '" y="' || (h - mb) || '" text-anchor="end">0</text>'
		|| '<text class="ax" x="' || ml || '" y="' || (h - 5) || '">' || to_char(days[1], 'Mon DD') || '</text>'
		|| '<text class="ax" x="' || (w - mr) || '" y="' || (h - 5) || '" text-anchor="end">'
		|| to_char(days[n], 'Mon DD') || '</text>'
		|| '</svg>';
	RETURN svg;
END
$fn$;

COMMENT ON FUNCTION access_audit._report_chart(date[], float8[], float8[], float8, float8, text) IS
'Internal: inline SVG chart of daily volume against a baseline band and the peers'' median, for access_audit.report().';

/*
 * report: the analyst's page.  The period is the "days" business days
 * ending with the day of as_of.  Top exporters are the first "top" actors
 * of rank_exporters('1 day', '30 days', as_of) with a volume or a score; each chart
 * shows their daily volume over the period (volume = greatest(rows,
 * tagged_rows) summed over relations, as daily_exports), their baseline
 * band (the middle half, 25th to 75th percentile, of their active days'
 * volumes in the 30 days before the day of as_of) and their peer group's
 * median volume per day (non-bulk actors of the same peer group active
 * that day).  Open alerts are those without an acknowledgement now;
 * tag changes and read volume per table cover the period.  The pipeline
 * section shows access_audit.stats and walks the hash chain up to the
 * newest record (verify()), so the page says up to which record the log
 * is known to be intact.  source may name another table of actor_daily's
 * shape (as for rank_exporters), for example one with imported history;
 * it is read with the caller's rights.  verify_chain => false leaves out
 * the chain walk (it reads the whole log: about a second per million
 * records).
 */
CREATE FUNCTION access_audit.report(as_of timestamptz DEFAULT now(), days integer DEFAULT 14,
									top integer DEFAULT 10,
									source regclass DEFAULT 'access_audit.actor_daily',
									verify_chain boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
	d1			date;
	d0			date;
	tz			text;
	html		text;
	sec			text;
	r			record;
	n			bigint;
	head_seq	bigint;
	v			record;
	cal			date[];
	maxvol		float8;
	tops		jsonb;			/* the top exporters, in rank order */
	series		jsonb;			/* per actor: vals (per day), lo, hi */
	peers		jsonb;			/* per peer group: median per day */
BEGIN
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a timestamp such as now().';
	END IF;
	IF days IS NULL OR days < 1 OR days > 366 THEN
		RAISE EXCEPTION 'days must be between 1 and 366'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the number of days the report covers, such as 14.';
	END IF;
	IF top IS NULL OR top < 1 OR top > 100 THEN
		RAISE EXCEPTION 'top must be between 1 and 100'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass how many exporters get a chart, such as 10.';
	END IF;

	IF source IS NULL THEN
		RAISE EXCEPTION 'source must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass access_audit.actor_daily or a table of the same shape.';
	END IF;
	PERFORM access_audit.check_rollup_shape(source);

	tz := coalesce(nullif(current_setting('access_audit.business_timezone', true), ''),
				   current_setting('TimeZone'));
	d1 := access_audit.business_day(as_of);
	d0 := d1 - days + 1;
	SELECT array_agg(g::date ORDER BY g) INTO cal
	  FROM generate_series(d0, d1, interval '1 day') g;

	html := '<!DOCTYPE html>'
		|| '<html lang="en"><head><meta charset="utf-8">'
		|| '<meta name="viewport" content="width=device-width, initial-scale=1">'
		|| '<title>access_audit report: ' || access_audit._html(current_database()::text)
		|| ', ' || d0 || ' to ' || d1 || '</title>'
		|| '<style>'
		|| 'body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;color:#1b1b1b;margin:24px;max-width:1100px;'
		|| '-webkit-print-color-adjust:exact;print-color-adjust:exact}'
		|| 'h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:2px solid #2c3e50;padding-bottom:3px;margin-top:28px}'
		|| '.meta{color:#555;font-size:13px;margin:0 0 10px}'
		|| '.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px}'
		|| '.card{border:1px solid #ccc;border-radius:4px;padding:8px 10px;break-inside:avoid;page-break-inside:avoid}'
		|| 'svg.chart{width:100%;height:auto;display:block}'
		|| '.card h3{font-size:15px;margin:0 0 2px;word-break:break-all}'
		|| '.reason{font-size:12px;color:#333;margin:0 0 4px}'
		|| '.score{float:right;font-weight:bold}.hi{color:#b71c1c}'
		|| 'svg.chart .plot{fill:#fff;stroke:#bbb;stroke-width:1}'
		|| 'svg.chart .band{fill:#bcd7f2;stroke:none}'
		|| 'svg.chart .area{fill:#f4c7c3;stroke:none}'
		|| 'svg.chart .vol{fill:none;stroke:#c0392b;stroke-width:2.5;stroke-linejoin:round}'
		|| 'svg.chart .peer{fill:none;stroke:#555;stroke-width:1.5;stroke-dasharray:5 3}'
		|| 'svg.chart .ax{font-size:10px;fill:#555}'
		|| '.legend{font-size:12px;color:#333}.legend span{display:inline-block;width:18px;height:10px;margin:0 4px 0 12px;vertical-align:middle}'
		|| 'table{border-collapse:collapse;font-size:13px;width:100%}'
		|| 'th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}'
		|| 'th{background:#eef1f4}td.n{text-align:right;white-space:nowrap}td.d{white-space:nowrap}'
		|| 'td.q{font-family:"DejaVu Sans Mono",monospace;font-size:11px;word-break:break-all}'
		|| '.bar{display:inline-block;height:10px;background:#2c6fad;vertical-align:middle}'
		|| '.ok{color:#1b5e20;font-weight:bold}.bad{color:#b71c1c;font-weight:bold}'
		|| '.none{color:#777;font-style:italic}'
		|| '@media print{body{margin:0}h2{break-after:avoid}}'
		|| '</style></head><body>'
		|| '<h1>Sensitive data access report</h1>'
		|| '<p class="meta">Database <strong>' || access_audit._html(current_database()::text)
		|| '</strong> &middot; ' || days || (CASE WHEN days = 1 THEN ' day' ELSE ' days' END)
		|| ' from ' || to_char(d0, 'YYYY-MM-DD') || ' to ' || to_char(d1, 'YYYY-MM-DD')
		|| ' (business time zone ' || access_audit._html(tz) || ')'
		|| ' &middot; generated ' || access_audit._html(to_char(now() AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI'))
		|| ' ' || access_audit._html(tz) || ' by ' || access_audit._html(session_user::text) || '</p>';

	/* ---- top exporters ---- */
	html := html || '<h2>Top exporters</h2>'
		|| '<p class="legend">Ranked by rank_exporters for the day of ' || to_char(d1, 'YYYY-MM-DD')
		|| ' against a 30-day baseline.<span style="background:#c0392b"></span>daily volume (rows)'
		|| '<span style="background:#bcd7f2"></span>own baseline (middle half of active days)'
		|| '<span style="border-top:2px dashed #555;height:0"></span>peer group median</p>';
	sec := '';

	/*
	 * Three queries for all the charts, whatever "top" is: the top actors,
	 * their daily volumes over the period and the 30 baseline days (one
	 * range of days of the roll-up), and the daily medians of their peer
	 * groups (one pass over the period).
	 */
	SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.rank), '[]')
	  INTO tops
	  FROM (SELECT e.rank, e.actor, e.peer_group, e.volume, e.score, e.reason
			  FROM access_audit.rank_exporters(interval '1 day', interval '30 days', as_of, source) e
			 WHERE e.volume > 0 OR e.score > 0
			 ORDER BY e.rank
			 LIMIT top) x;

	/* $1 actors, $2 first day read, $3 last day, $4 the period's days */
	EXECUTE pg_catalog.format($q$
		WITH a AS (
			SELECT s.actor, s.day, sum(greatest(s.rows, s.tagged_rows))::float8 AS vol
			  FROM %s s
			 WHERE s.actor = ANY ($1) AND s.day BETWEEN $2 AND $3
			 GROUP BY s.actor, s.day
		)
		SELECT coalesce(jsonb_object_agg(t.actor, jsonb_build_object(
				   'vals', (SELECT jsonb_agg(coalesce(a.vol, 0) ORDER BY c.day)
							  FROM unnest($4) c(day)
							  LEFT JOIN a ON a.actor = t.actor AND a.day = c.day),
				   'lo', (SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY a.vol)
							FROM a WHERE a.actor = t.actor AND a.day BETWEEN $3 - 30 AND $3 - 1),
				   'hi', (SELECT percentile_cont(0.75) WITHIN GROUP (ORDER BY a.vol)
							FROM a WHERE a.actor = t.actor AND a.day BETWEEN $3 - 30 AND $3 - 1))),
			   '{}')
		  FROM unnest($1) t(actor)
		$q$, source)
	  INTO series
	  USING ARRAY(SELECT t.actor FROM jsonb_to_recordset(tops) AS t(actor text)),
			least(d0, d1 - 30), d1, cal;

	/* $1 peer groups, $2 first day, $3 last day, $4 the period's days */
	EXECUTE pg_catalog.format($q$
		WITH m AS (
			SELECT pd.grp, pd.day, percentile_cont(0.5) WITHIN GROUP (ORDER BY pd.vol) AS med
			  FROM (SELECT coalesce(g.peer_group, 'default') AS grp, s.day, s.actor,
						   sum(greatest(s.rows, s.tagged_rows))::float8 AS vol
					  FROM %s s
					  LEFT JOIN access_audit.actor_groups g ON g.actor = s.actor
					 WHERE s.day BETWEEN $2 AND $3 AND NOT coalesce(g.bulk_user, false)
					 GROUP BY 1, 2, 3) pd
			 WHERE pd.grp = ANY ($1)
			 GROUP BY pd.grp, pd.day
		)
		SELECT coalesce(jsonb_object_agg(gg.grp,
				   (SELECT jsonb_agg(m.med ORDER BY c.day)
					  FROM unnest($4) c(day)
					  LEFT JOIN m ON m.grp = gg.grp AND m.day = c.day)), '{}')
		  FROM (SELECT DISTINCT t.grp FROM unnest($1) t(grp)) gg
		$q$, source)
	  INTO peers
	  USING ARRAY(SELECT t.peer_group FROM jsonb_to_recordset(tops) AS t(peer_group text)),
			d0, d1, cal;

	FOR r IN
		SELECT t.*
		  FROM jsonb_to_recordset(tops)
			   AS t(rank int, actor text, peer_group text, volume bigint, score float8, reason text)
		 ORDER BY t.rank
	LOOP
		SELECT ARRAY(SELECT e.v::float8
					   FROM jsonb_array_elements_text(series -> r.actor -> 'vals')
							WITH ORDINALITY AS e(v, i)
					  ORDER BY e.i) AS vals,
			   ARRAY(SELECT e.v::float8
					   FROM jsonb_array_elements_text(peers -> r.peer_group)
							WITH ORDINALITY AS e(v, i)
					  ORDER BY e.i) AS peer,
			   (series -> r.actor ->> 'lo')::float8 AS lo,
			   (series -> r.actor ->> 'hi')::float8 AS hi
		  INTO v;

		sec := sec || '<div class="card"><h3><span class="score'
			|| CASE WHEN r.score > 4 THEN ' hi' ELSE '' END || '">score '
			|| to_char(round(r.score::numeric, 1), 'FM999990.0') || '</span>#' || r.rank || ' '
			|| access_audit._html_cut(r.actor, 200) || '</h3>'
			|| '<p class="reason">' || access_audit._html_cut(r.reason, 600)
			|| ' &middot; peer group ' || access_audit._html(r.peer_group) || '</p>'
			|| access_audit._report_chart(cal, v.vals, v.peer, v.lo, v.hi,
										  'Daily volume of ' || r.actor)
			|| '</div>';
	END LOOP;
	IF sec = '' THEN
		sec := '<p class="none">No reads of tagged columns on ' || to_char(d1, 'YYYY-MM-DD') || '.</p>';
	ELSE
		sec := '<div class="cards">' || sec || '</div>';
	END IF;
	html := html || sec;

	/* ---- open alerts ---- */
	html := html || '<h2>Open alerts</h2>';
	sec := '';
	n := 0;
	FOR r IN
		SELECT a.alert_id, a.raised_at, a.actor, a.window_start, a.window_end, a.score, a.reason,
			   count(*) OVER () AS total
		  FROM access_audit.alerts a
		 WHERE NOT EXISTS (SELECT 1 FROM access_audit.alert_acks k
							WHERE k.alert_id OPERATOR(pg_catalog.=) a.alert_id)
		 ORDER BY a.score DESC, a.alert_id
		 LIMIT 100
	LOOP
		n := r.total;
		sec := sec || '<tr><td class="n">' || r.alert_id || '</td><td class="d">'
			|| access_audit._html(to_char(r.raised_at AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI')) || '</td><td>'
			|| access_audit._html_cut(r.actor, 200) || '</td><td class="n">'
			|| to_char(round(r.score::numeric, 1), 'FM999990.0') || '</td><td class="d">'
			|| to_char(r.window_start AT TIME ZONE tz, 'YYYY-MM-DD')
			|| CASE WHEN (r.window_start AT TIME ZONE tz)::date
						 = ((r.window_end AT TIME ZONE tz) - interval '1 microsecond')::date
					THEN ''
					ELSE ' to ' || to_char((r.window_end AT TIME ZONE tz) - interval '1 microsecond', 'YYYY-MM-DD')
			   END
			|| '</td><td>' || access_audit._html_cut(r.reason, 400) || '</td></tr>';
	END LOOP;
	IF sec = '' THEN
		html := html || '<p class="none">No open alerts.</p>';
	ELSE
		html := html || '<table><tr><th>alert</th><th>raised (' || access_audit._html(tz)
			|| ')</th><th>actor</th><th>score</th><th>window</th><th>reason</th></tr>'
			|| sec || '</table>'
			|| CASE WHEN n > 100 THEN '<p class="meta">' || n - 100
				|| ' more in access_audit.alerts_open.</p>' ELSE '' END;
	END IF;

	/* ---- tag changes ---- */
	html := html || '<h2>Tag changes</h2>';
	sec := '';
	n := 0;
	FOR r IN
		SELECT t.ts, t.changed_by, t.relation, t."column", t.old_tag, t.new_tag, t.why, t.outcome,
			   count(*) OVER () AS total
		  FROM access_audit.tag_changes t
		 WHERE t.ts >= (d0::timestamp AT TIME ZONE tz) AND t.ts < ((d1 + 1)::timestamp AT TIME ZONE tz)
		 ORDER BY t.seq DESC
		 LIMIT 200
	LOOP
		n := r.total;
		sec := sec || '<tr><td class="d">' || access_audit._html(to_char(r.ts AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI'))
			|| '</td><td>' || access_audit._html_cut(r.changed_by, 200)
			|| '</td><td>' || access_audit._html_cut(coalesce(r."column", r.relation), 300)
			|| '</td><td>' || CASE WHEN coalesce(r.old_tag, '') = '' THEN '<span class="none">none</span>'
								   ELSE access_audit._html(r.old_tag) END
			|| '</td><td>' || CASE WHEN coalesce(r.new_tag, '') = '' THEN '<span class="none">none</span>'
								   ELSE access_audit._html(r.new_tag) END
			|| '</td><td>' || access_audit._html_cut(coalesce(r.why, ''), 200)
			|| CASE WHEN r.outcome IS DISTINCT FROM 'ok'
				THEN ' (' || access_audit._html(r.outcome) || ')' ELSE '' END
			|| '</td></tr>';
	END LOOP;
	IF sec = '' THEN
		html := html || '<p class="none">No tag changes in the period.</p>';
	ELSE
		html := html || '<table><tr><th>when (' || access_audit._html(tz)
			|| ')</th><th>by</th><th>column or table</th><th>old tag</th><th>new tag</th><th>why</th></tr>'
			|| sec || '</table>'
			|| CASE WHEN n > 200 THEN '<p class="meta">' || n - 200
				|| ' older ones in access_audit.tag_changes.</p>' ELSE '' END;
	END IF;

	/* ---- read volume per table ---- */
	html := html || '<h2>Reads per table</h2>';
	sec := '';
	maxvol := NULL;
	FOR r IN EXECUTE pg_catalog.format($q$
		SELECT a.relation, sum(greatest(a.rows, a.tagged_rows))::float8 AS vol,
			   sum(a.statements) AS stmts, count(DISTINCT a.actor) AS actors,
			   sum(a.off_hours_rows) AS off
		  FROM %s a
		 WHERE a.day BETWEEN $1 AND $2
		 GROUP BY a.relation
		 ORDER BY 2 DESC, a.relation COLLATE "C"
		 LIMIT 50
		$q$, source) USING d0, d1
	LOOP
		maxvol := coalesce(maxvol, greatest(r.vol, 1));
		sec := sec || '<tr><td>' || access_audit._html_cut(r.relation, 300) || '</td><td class="n">'
			|| access_audit.format_count(r.vol) || '</td><td><span class="bar" style="width:'
			|| round((300 * r.vol / maxvol)::numeric, 1) || 'px"></span></td><td class="n">'
			|| access_audit.format_count(r.stmts) || '</td><td class="n">' || r.actors
			|| '</td><td class="n">' || access_audit.format_count(r.off) || '</td></tr>';
	END LOOP;
	IF sec = '' THEN
		html := html || '<p class="none">No reads of tagged columns in the period.</p>';
	ELSE
		html := html || '<table><tr><th>relation</th><th>volume (rows)</th><th></th>'
			|| '<th>statements</th><th>actors</th><th>off-hours rows</th></tr>' || sec || '</table>';
	END IF;

	/* ---- capture pipeline ---- */
	html := html || '<h2>Capture pipeline</h2>';
	sec := '';
	FOR r IN
		SELECT s.database, s.queued, s.written, s.pending_bytes, s.waits, s.gaps, s.writer_pid,
			   s.oldest_pending_age, s.last_flush, ss.since
		  FROM access_audit.stats s
		  LEFT JOIN pg_catalog.pg_database d ON d.datname OPERATOR(pg_catalog.=) s.database
		  LEFT JOIN access_audit._stats_since() ss ON ss.dboid OPERATOR(pg_catalog.=) d.oid
		 ORDER BY s.database COLLATE "C"
	LOOP
		sec := sec || '<tr><td>' || access_audit._html(coalesce(r.database::text, '(dropped)'))
			|| '</td><td class="n">' || access_audit.format_count(r.queued)
			|| '</td><td class="n">' || access_audit.format_count(r.written)
			|| '</td><td class="n">' || access_audit.format_count(r.pending_bytes)
			|| '</td><td class="n">' || access_audit.format_count(r.waits)
			|| '</td><td class="n' || CASE WHEN r.gaps > 0 THEN ' bad' ELSE '' END || '">'
			|| access_audit.format_count(r.gaps)
			|| '</td><td>' || coalesce(r.writer_pid::text, '<span class="none">none</span>')
			|| '</td><td>' || coalesce(access_audit._html(to_char(r.oldest_pending_age, 'HH24:MI:SS')), '')
			|| '</td><td>' || coalesce(access_audit._html(to_char(r.last_flush AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI:SS')), '')
			|| '</td><td>' || coalesce(access_audit._html(to_char(r.since AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI:SS')), '')
			|| '</td></tr>';
	END LOOP;
	IF sec <> '' THEN
		html := html || '<table><tr><th>database</th><th>queued</th><th>written</th>'
			|| '<th>pending bytes</th><th>waits on full queue</th><th>gaps</th><th>writer pid</th>'
			|| '<th>oldest pending</th><th>last flush (' || access_audit._html(tz) || ')</th>'
			|| '<th>counted since (' || access_audit._html(tz) || ')</th></tr>'
			|| sec || '</table>';
	END IF;

	SELECT h.seq INTO head_seq FROM access_audit.chain_head() h;
	IF head_seq IS NULL THEN
		html := html || '<p>Hash chain: <span class="none">the log is empty.</span></p>';
	ELSIF NOT coalesce(verify_chain, true) THEN
		html := html || '<p>Hash chain: head at record ' || head_seq
			|| ', not verified on this page (verify_chain => false).</p>';
	ELSE
		SELECT * INTO r FROM access_audit.verify(NULL, head_seq);
		IF r.ok THEN
			html := html || '<p>Hash chain: <span class="ok">verified</span> up to record '
				|| head_seq || ' (' || access_audit.format_count(r.checked) || ' records checked).</p>';
		ELSE
			html := html || '<p>Hash chain: <span class="bad">broken</span> at record '
				|| coalesce(r.first_bad_seq::text, '?') || ': '
				|| access_audit._html_cut(r.detail, 400) || '</p>';
		END IF;
	END IF;

	html := html || '</body></html>';
	RETURN html;
END
$fn$;

COMMENT ON FUNCTION access_audit.report(timestamptz, integer, integer, regclass, boolean) IS
'One self-contained HTML page on one line (inline CSS and SVG, no script) for the "days" business days ending with the day of as_of: the "top" exporters of rank_exporters with a chart each of their daily volume against their own baseline band and their peers'' median, open alerts, tag changes, read volume per table, and the capture pipeline (access_audit.stats and the hash chain verified up to the newest record unless verify_chain is false). source may name a table of actor_daily''s shape, as for rank_exporters. Every user-controlled string is HTML-escaped. Example: psql -XAtc "SELECT access_audit.report()" shop > report.html';

REVOKE ALL ON FUNCTION access_audit._html(text), access_audit._html_cut(text, integer),
	access_audit._report_chart(date[], float8[], float8[], float8, float8, text),
	access_audit.report(timestamptz, integer, integer, regclass, boolean) FROM PUBLIC;
DO $do$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_reader') THEN
		GRANT EXECUTE ON FUNCTION access_audit._html(text), access_audit._html_cut(text, integer),
			access_audit._report_chart(date[], float8[], float8[], float8, float8, text),
			access_audit.report(timestamptz, integer, integer, regclass, boolean)
			TO access_audit_reader, access_audit_admin;
	END IF;
END
$do$;
