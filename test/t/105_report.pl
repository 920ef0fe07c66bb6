# access_audit.report() as analysts use it: psql writes the page, headless
# Chromium renders it.  Checks that the page is self-contained, that every
# user-chosen string (actor, table and column names, tags) is shown as text
# and never becomes markup, that the rendered text names the top exporter
# first, and that a screenshot has charts with pixels in them (the volume
# line, its filled area and the baseline band).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AccessAuditTest qw(clear_of_day_boundary);
use Compress::Zlib qw(uncompress);
use Encode qw(decode encode);

my $chromium;
for my $c (qw(chromium chromium-browser google-chrome))
{
	for my $dir (split /:/, $ENV{PATH} . ':/usr/bin')
	{
		if (-x "$dir/$c") { $chromium = "$dir/$c"; last; }
	}
	last if $chromium;
}
plan skip_all => 'chromium is not installed (Debian package "chromium")'
  unless $chromium;

my $node = PostgreSQL::Test::Cluster->new('report');
$node->init(extra => [ '--encoding=UTF8', '--locale=C' ]);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
});
$node->start;
# the seed and the ranking fall on one business day
clear_of_day_boundary($node, 180);

# Hostile names everywhere a user can choose one.
my $evil_actor = q{<script>alert('actor')</script>};
my $evil_table = q{<img src=x onerror=alert(1)>};
# a right-to-left override makes "exe.gnp" read as "png.exe"
my $rlo_actor = "clerk-\x{202E}exe.gnp";
$node->safe_psql('postgres', qq{
CREATE EXTENSION access_audit;
CREATE ROLE app LOGIN IN ROLE access_audit_app;
CREATE ROLE analyst LOGIN IN ROLE access_audit_reader;
CREATE TABLE customers (id int PRIMARY KEY, name text, phone text);
INSERT INTO customers SELECT g, 'n' || g, '555-' || g FROM generate_series(1, 6000) g;
CREATE TABLE "$evil_table" ("<b>col</b>" text);
INSERT INTO "$evil_table" VALUES ('x');
GRANT SELECT ON customers, "$evil_table" TO app;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
SECURITY LABEL FOR access_audit ON COLUMN "$evil_table"."<b>col</b>" IS 'pii:secret';
-- history: 30 quiet days for twelve clerks
SET access_audit.maintenance = on;
INSERT INTO access_audit.actor_daily (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
SELECT access_audit.business_day(now()) - d, 'clerk-' || a, 'public.customers',
       100 + (a * 37 + d * 11) % 60, 0, 5, 0
  FROM generate_series(1, 30) d, generate_series(1, 12) a;
RESET access_audit.maintenance;
});

# Today: the clerks read as usual, one of them exports everything, and a
# hostile actor name reads the oddly named table.
my $reads = '';
for my $k (1 .. 12)
{
	my $n = $k == 7 ? 6000 : 120;
	$reads .= "SET access_audit.actor = 'clerk-$k'; SELECT phone FROM customers WHERE id <= $n;\n";
}
(my $q_actor = $evil_actor) =~ s/'/''/g;
$reads .= "SET access_audit.actor = '$q_actor'; SELECT * FROM \"$evil_table\";\n";
$reads .= "SET access_audit.actor = '$rlo_actor'; SELECT phone FROM customers WHERE id <= 3;\n";
$node->safe_psql('postgres', encode('UTF-8', $reads),
	connstr => $node->connstr('postgres') . ' user=app');
$node->safe_psql('postgres', q{SELECT access_audit.flush()});
is($node->safe_psql('postgres',
	q{SELECT actor FROM access_audit.rank_exporters() WHERE rank = 1}),
	'clerk-7', 'the exporter ranks first');
# an open alert for the exporter, and one naming the hostile actor
$node->safe_psql('postgres', qq{
SET access_audit.maintenance = on;
INSERT INTO access_audit.alerts (actor, window_start, window_end, score, reason)
VALUES ('clerk-7', now() - interval '1 day', now(), 9.87654, 'exported 6,000 rows'),
       ('$q_actor', now() - interval '1 day', now(), 4.2,
        E'reason with </td></tr></table><h1>x</h1>, a \\\\ backslash,\\ta tab and\\na newline');
RESET access_audit.maintenance;
});

$node->safe_psql('postgres', encode('UTF-8', qq{
SET access_audit.maintenance = on;
INSERT INTO access_audit.alerts (actor, window_start, window_end, score, reason)
VALUES ('$rlo_actor', now() - interval '1 day', now(), 4.1, 'a name that reads backwards');
RESET access_audit.maintenance;
}));

# The page as the README writes it: psql -XAtc, as a member of
# access_audit_reader.
my $dir = PostgreSQL::Test::Utils::tempdir();
my $html_file = "$dir/report.html";
my ($html, $err);
IPC::Run::run([ 'psql', '-XAtc', 'SELECT access_audit.report()',
		'-d', $node->connstr('postgres') . ' user=analyst' ],
	'>', \$html, '2>', \$err) or die "psql failed: $err";
open(my $fh, '>', $html_file) or die "could not write $html_file: $!";
print $fh $html;
close($fh);

like($html, qr/^<!DOCTYPE html>/, 'the page is an HTML document');
like($html, qr/a &#92; backslash,&#9;a tab and&#10;a newline/,
	'backslash, tab and newline in values are character references');
unlike(substr($html, 0, -1), qr/[\n\t\\]/, 'the page is one line without tabs or backslashes');

# The pg_cron way: COPY ... TO a file writes the same page.
my $copy_file = "$dir/copy.html";
chmod 0777, $dir;
$node->safe_psql('postgres', 'SELECT access_audit.flush()');
my $same_txn = $node->safe_psql('postgres', qq{
BEGIN ISOLATION LEVEL REPEATABLE READ;
COPY (SELECT access_audit.report()) TO '$copy_file';
SELECT access_audit.report();
COMMIT;
});
is(slurp_file($copy_file), "$same_txn\n",
	'COPY (SELECT access_audit.report()) TO a file writes the page unchanged');
unlike($html, qr/<script/i, 'the page has no script element');
unlike($html, qr/<img|<b>|<h1>x/i, 'no user-chosen name became markup');
unlike($html, qr/<[^>]*\b(?:src|href)\s*=/i, 'the page loads nothing from elsewhere');
unlike($html, qr/(?:https?:)?\/\/(?!www\.w3\.org\/2000\/svg")/,
	'no URL but the SVG namespace');
like($html, qr/&lt;script&gt;alert\(&#39;actor&#39;\)&lt;\/script&gt;/,
	'the hostile actor name is escaped');
like($html, qr/&lt;img src=x onerror=alert\(1\)&gt;/,
	'the hostile table name is escaped');
like($html, qr/9\.9/, 'scores are rounded');
my $chars = decode('UTF-8', $html);
unlike($chars, qr/\x{202E}/, 'no bidirectional override reaches the page');
like($chars, qr/clerk-\x{FFFD}exe\.gnp/, 'it is replaced, the name shown as it is');
is(() = $html =~ /<svg class="chart"/g, 10, 'ten exporters have a chart');

# Chromium's view of the page: text and a screenshot.
my @chrome = ($chromium, '--headless', '--no-sandbox', '--disable-gpu',
	'--disable-quic', '--no-first-run', '--disable-background-networking',
	'--disable-component-update', '--disable-sync', '--hide-scrollbars',
	"--user-data-dir=$dir/profile", '--window-size=1200,1400');
local $ENV{HOME} = $dir;
my ($dom, $cerr);
IPC::Run::run([ @chrome, '--dump-dom', "file://$html_file" ],
	'>', \$dom, '2>', \$cerr) or die "chromium --dump-dom failed: $cerr";
unlike($dom, qr/<script/i, 'the rendered document has no script element');
(my $text = $dom) =~ s/<[^>]*>/ /g;
$text =~ s/&lt;/</g;
$text =~ s/&gt;/>/g;
$text =~ s/&amp;/&/g;
like($text, qr/Top exporters\s+.*?#1\s+clerk-7\b/s,
	'the rendered text names the top exporter first');
like($text, qr/\Q$evil_actor\E/, 'the hostile actor name is shown as text');

my $png_file = "$dir/report.png";
IPC::Run::run([ @chrome, "--screenshot=$png_file", "file://$html_file" ],
	'>', \my $sout, '2>', \$cerr) or die "chromium --screenshot failed: $cerr";
ok(-s $png_file, 'chromium wrote a screenshot');
my $img = read_png($png_file);
is($img->{width}, 1200, 'the screenshot is 1200 pixels wide');

# Count pixels of the chart colours (see the style sheet of report()).
# The legend shows two of them in 18x10 swatches; charts are far larger.
my %count = (line => 0, area => 0, band => 0, white => 0);
my %colour = (
	'192,57,43' => 'line',     # #c0392b volume line
	'244,199,195' => 'area',   # #f4c7c3 area under it
	'188,215,242' => 'band',   # #bcd7f2 baseline band
	'255,255,255' => 'white');
for my $y (0 .. $img->{height} - 1)
{
	my $row = $img->{rows}[$y];
	for my $x (0 .. $img->{width} - 1)
	{
		my $key = join(',', unpack('C3', substr($row, $x * $img->{bpp}, 3)));
		$count{ $colour{$key} }++ if exists $colour{$key};
	}
}
note(join(', ', map { "$_=$count{$_}" } sort keys %count));
cmp_ok($count{area}, '>', 20000, 'the charts have filled volume areas');
cmp_ok($count{line}, '>', 2000, 'the charts draw the volume lines');
cmp_ok($count{band}, '>', 5000, 'the charts draw baseline bands');
cmp_ok($count{white}, '<', $img->{width} * $img->{height} * 0.95,
	'the screenshot is not blank');

# Printing: Chromium's print to PDF lays it out on pages.
my $pdf_file = "$dir/report.pdf";
IPC::Run::run([ @chrome, '--no-pdf-header-footer', "--print-to-pdf=$pdf_file",
		"file://$html_file" ], '>', \my $pout, '2>', \$cerr)
  or die "chromium --print-to-pdf failed: $cerr";
my $pdf = slurp_file($pdf_file);
like($pdf, qr/^%PDF-/, 'the report prints to PDF');
cmp_ok(scalar(() = $pdf =~ m{/Type /Page\b}g), '>=', 1, 'on at least one page');

# Without the chain walk, the page says so.
like($node->safe_psql('postgres', 'SELECT access_audit.report(verify_chain => false)'),
	qr/head at record \d+, not verified on this page/, 'verify_chain => false skips the chain walk');
like($html, qr/Hash chain: <span class="ok">verified<\/span> up to record \d+/,
	'by default the page says up to which record the chain is verified');
like($html, qr/<th>counted since \([^)]*\)<\/th><\/tr><tr><td>postgres<\/td>.*?<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d<\/td><\/tr>/,
	'the capture pipeline says since when its counters count');

# Bad arguments are refused with a hint.
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'SELECT access_audit.report(days => 0)');
like($stderr, qr/days must be between 1 and 366/, 'days is checked');

# Only the extension's roles may run it.
$node->safe_psql('postgres', 'CREATE ROLE nobody LOGIN');
($ret, $stdout, $stderr) = $node->psql('postgres',
	'SELECT access_audit.report()',
	connstr => $node->connstr('postgres') . ' user=nobody');
like($stderr, qr/permission denied/, 'roles outside access_audit may not run it');

$node->stop;
done_testing();

# read_png(FILE): decode an 8-bit RGB or RGBA, non-interlaced PNG (what
# Chromium writes) into {width, height, bpp, rows => [raw scanlines]}.
sub read_png
{
	my ($file) = @_;
	open(my $in, '<:raw', $file) or die "could not read $file: $!";
	local $/;
	my $data = <$in>;
	close($in);
	die "$file is not a PNG" unless substr($data, 0, 8) eq "\x89PNG\r\n\x1a\n";
	my ($pos, $idat, $w, $h, $depth, $ctype, $interlace) = (8, '');
	while ($pos < length($data))
	{
		my ($len, $type) = unpack('Na4', substr($data, $pos, 8));
		my $body = substr($data, $pos + 8, $len);
		$pos += 12 + $len;
		if ($type eq 'IHDR')
		{
			($w, $h, $depth, $ctype, undef, undef, $interlace) =
			  unpack('NNCCCCC', $body);
		}
		$idat .= $body if $type eq 'IDAT';
		last if $type eq 'IEND';
	}
	die "unsupported PNG (depth $depth, colour type $ctype, interlace $interlace)"
	  unless $depth == 8 && ($ctype == 2 || $ctype == 6) && !$interlace;
	my $bpp = $ctype == 6 ? 4 : 3;
	my $raw = uncompress($idat);
	die "could not inflate $file" unless defined $raw;
	my $stride = $w * $bpp;
	my @rows;
	my $prev = "\0" x $stride;
	for my $y (0 .. $h - 1)
	{
		my $off = $y * ($stride + 1);
		my $filter = ord(substr($raw, $off, 1));
		my @cur = unpack('C*', substr($raw, $off + 1, $stride));
		my @up = unpack('C*', $prev);
		for my $i (0 .. $stride - 1)
		{
			my $l = $i >= $bpp ? $cur[ $i - $bpp ] : 0;
			my $u = $up[$i];
			my $ul = $i >= $bpp ? $up[ $i - $bpp ] : 0;
			if ($filter == 1) { $cur[$i] = ($cur[$i] + $l) & 255; }
			elsif ($filter == 2) { $cur[$i] = ($cur[$i] + $u) & 255; }
			elsif ($filter == 3)
			{
				$cur[$i] = ($cur[$i] + (($l + $u) >> 1)) & 255;
			}
			elsif ($filter == 4)
			{
				my $p = $l + $u - $ul;
				my ($pa, $pb, $pc) = (abs($p - $l), abs($p - $u), abs($p - $ul));
				my $pr = ($pa <= $pb && $pa <= $pc) ? $l : ($pb <= $pc ? $u : $ul);
				$cur[$i] = ($cur[$i] + $pr) & 255;
			}
		}
		$prev = pack('C*', @cur);
		push @rows, $prev;
	}
	return { width => $w, height => $h, bpp => $bpp, rows => \@rows };
}
