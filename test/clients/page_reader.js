// Page through a query with row-limited portals: pg-cursor sends Execute
// with a row limit and keeps the portal open between pages, as a client
// library showing a result page by page does.
//
// usage: node page_reader.js <query> <page size> <pages>
// Connection from the usual PGHOST, PGPORT, PGDATABASE, PGUSER variables.
// Prints one line per page ("page N: R rows") and "total: T".
'use strict';
const { Client } = require('pg');
const Cursor = require('pg-cursor');

async function main() {
	const [query, pageSize, pages] = process.argv.slice(2);
	const client = new Client({ application_name: 'page_reader' });
	await client.connect();
	let total = 0;
	try {
		await client.query('BEGIN');
		const cursor = client.query(new Cursor(query));
		for (let i = 1; i <= Number(pages); i++) {
			const rows = await cursor.read(Number(pageSize));
			total += rows.length;
			console.log(`page ${i}: ${rows.length} rows`);
			if (rows.length === 0)
				break;
		}
		await cursor.close();
		await client.query('COMMIT');
	} finally {
		await client.end();
	}
	console.log(`total: ${total}`);
}

main().catch((err) => {
	console.error(`error: ${err.message}`);
	process.exit(1);
});
