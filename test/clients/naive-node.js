'use strict';
// examples/node with node-postgres named statements (`name:`), the setting
// that PgBouncer in transaction mode (before 1.21, or without
// max_prepared_statements) breaks: a statement prepared on one server
// connection is then executed, or prepared again, on another.  run.sh shows
// that it fails; the example itself never names its queries.
const path = require('node:path');
const example = require(path.join(__dirname, '..', '..', 'examples', 'node', 'server.js'));

const pool = example.createPool();
const query = pool.query.bind(pool);
pool.query = (text, values) => query({ name: 'cast_vote', text, values });
example.main(pool);
