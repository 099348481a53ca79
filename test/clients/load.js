'use strict';
// Load client for test/clients/run.sh: fires real concurrent HTTP requests at
// one of the examples (examples/node, examples/python) and checks every answer
// against the rows in vote_guard.votes.  Prints "ok - ..." / "not ok - ..."
// lines (run.sh numbers them) and "# ..." figures.
//
//   node load.js SCENARIO URL LABEL [--expect-failures]
//
// SCENARIO: one-voter (50 requests from one voter at once), crowd (2000 from
// 500 voters), inputs (bad ids, X-Forwarded-For, bodies).  The database (the
// one the example uses, reached directly) comes from PGHOST, PGPORT,
// PGDATABASE.  --expect-failures: crowd under a setting known to lose votes;
// the check is then that failures were seen.
//
// The example is expected to trust 127.0.0.1 and 192.0.2.0/24 as proxies.

const http = require('node:http');
const path = require('node:path');
const { Client } = require(require.resolve('pg',
  { paths: [path.join(__dirname, '..', '..', 'examples', 'node')] }));

const [scenario, base, label, flag] = process.argv.slice(2);
const expectFailures = flag === '--expect-failures';
const DEADLINE_MS = 90000;      // the whole scenario
const REQUEST_MS = 30000;       // one request

setTimeout(() => {
  console.log(`not ok - ${label} ${scenario}: not finished after ${DEADLINE_MS / 1000} s`);
  process.exit(1);
}, DEADLINE_MS).unref();

let db;
async function sql(text, values) {
  return (await db.query(text, values)).rows;
}

function check(ok, what) {
  console.log(`${ok ? 'ok' : 'not ok'} - ${label} ${scenario}: ${what}`);
  return ok;
}

// One POST; resolves to {status, body, retryAfter}, or {status: 0, error}
// when the request itself failed.
function post(url, { agent, xff, body, key, localAddress, method = 'POST' } = {}) {
  return new Promise((resolve) => {
    const headers = { 'Content-Type': 'application/json' };
    if (xff !== undefined) headers['X-Forwarded-For'] = xff;
    if (key !== undefined) headers['Idempotency-Key'] = key;
    const data = body === undefined ? '' : (typeof body === 'string' ? body : JSON.stringify(body));
    headers['Content-Length'] = Buffer.byteLength(data);
    const req = http.request(base + url, { method, agent, headers, localAddress, timeout: REQUEST_MS },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let parsed = null;
          try { parsed = JSON.parse(Buffer.concat(chunks).toString()); } catch { /* not JSON */ }
          resolve({ status: res.statusCode, body: parsed, retryAfter: res.headers['retry-after'] });
        });
      });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ status: 0, error: error.message }));
    req.end(data);
  });
}

async function newContest(name, policy = '') {
  const [{ id }] = await sql(`SELECT vote_guard.create_contest($1${policy}) AS id`, [name]);
  return id;
}

async function addEntries(contest, n) {
  await sql('SELECT vote_guard.add_entry($1, e) FROM generate_series(1, $2::int) e', [contest, n]);
}

async function drift(contest) {
  const [{ d }] = await sql(
    'SELECT coalesce(sum(abs(drift)), 0)::int AS d FROM vote_guard.verify($1)', [contest]);
  return d;
}

function tally(list) {
  const t = {};
  for (const x of list) t[x] = (t[x] || 0) + 1;
  return t;
}

function show(t) {
  return Object.keys(t).sort().map((k) => `${k} x${t[k]}`).join(', ');
}

// Run the requests with at most `width` in flight, in the order given.
async function fire(requests, width) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: width });
  const answers = new Array(requests.length);
  let next = 0;
  async function worker() {
    while (next < requests.length) {
      const i = next++;
      answers[i] = await post(requests[i].url, { ...requests[i], agent });
    }
  }
  await Promise.all(Array.from({ length: width }, worker));
  agent.destroy();
  return answers;
}

// 50 requests from one voter (the socket's address, no X-Forwarded-For), all
// sent at once on their own connections: exactly one 200, 49 x 409.
async function oneVoter() {
  const contest = await newContest(`one voter ${label}`);
  await addEntries(contest, 2);
  const answers = await Promise.all(Array.from({ length: 50 }, (_, i) =>
    post(`/contests/${contest}/entries/${1 + (i % 2)}/vote`, { agent: false })));
  const statuses = tally(answers.map((a) => `${a.status} ${a.body?.error_code ?? a.error ?? ''}`));
  console.log(`# ${label} one-voter: 50 requests: ${show(statuses)}`);
  const ok = answers.filter((a) => a.status === 200);
  const dup = answers.filter((a) => a.status === 409 && a.body?.error_code === 'duplicate_ip');
  check(ok.length === 1 && dup.length === 49, 'one 200 and 49 x 409 duplicate_ip');
  const rows = await sql('SELECT vote_id, entry_id FROM vote_guard.votes WHERE contest_id = $1', [contest]);
  check(rows.length === 1 && ok.length === 1 && Number(rows[0].vote_id) === ok[0].body.vote_id &&
        ok[0].body.vote_count === 1 && typeof ok[0].body.vote_id === 'number',
        'one row, the vote_id and vote_count (numbers) of the 200');
  const [{ n }] = await sql('SELECT coalesce(sum(votes), 0)::int AS n FROM vote_guard.results($1)', [contest]);
  check(n === 1 && await drift(contest) === 0, 'results() counts 1, verify() drift 0');
}

// A seeded shuffle, so that a voter's requests interleave with others' the
// same way on every run.
function shuffle(list, seed) {
  for (let i = list.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const j = seed % (i + 1);
    [list[i], list[j]] = [list[j], list[i]];
  }
  return list;
}

// 2000 requests from 500 voters, 4 each, up to 100 in flight, in a contest of
// 3 votes per voter per day for 3 different entries.  Voter v (address
// 198.18.x.y through the trusted proxy, user u-v) asks, by v % 4, for entries
// [1,2,3,1] (a duplicate), [1,2,3,4] (one too many), [2,2,4,5] with the two
// 2s under one Idempotency-Key (a replay), or [5,5,5,5]: it must end with 3,
// 3, 3 or 1 votes.
async function crowd() {
  const contest = await newContest(`crowd ${label}`, ", votes_per_voter => 3, vote_window => '1 day'");
  await addEntries(contest, 5);
  const plans = [[1, 2, 3, 1], [1, 2, 3, 4], [2, 2, 4, 5], [5, 5, 5, 5]];
  const expected = [3, 3, 3, 1];
  const voters = 500;
  const requests = [];
  for (let v = 0; v < voters; v++) {
    plans[v % 4].forEach((entry, k) => requests.push({
      voter: v, entry,
      url: `/contests/${contest}/entries/${entry}/vote`,
      xff: `198.18.${v >> 8}.${v & 255}`,
      body: { user_id: `u-${v}` },
      key: v % 4 === 2 && k < 2 ? `replay-${v}` : `req-${v}-${k}`,
    }));
  }
  const t0 = Date.now();
  const order = shuffle(requests, 42);
  const answers = await fire(order, 100);
  const seconds = (Date.now() - t0) / 1000;
  const statuses = tally(answers.map((a) => `${a.status} ${a.body?.error_code ?? a.error ?? ''}`));
  console.log(`# ${label} crowd: ${answers.length} requests from ${voters} voters in ${seconds.toFixed(1)} s: ${show(statuses)}`);

  const rows = await sql(
    'SELECT vote_id, entry_id, user_id FROM vote_guard.votes WHERE contest_id = $1', [contest]);
  const stored = new Map(rows.map((r) => [Number(r.vote_id), r]));
  const answered = new Map();   // vote_id -> request, for new (not replayed) 200s
  let serverErrors = 0;
  let unexpected = 0;
  let badRetry = 0;
  let replays = 0;
  answers.forEach((a, i) => {
    const r = order[i];
    if (a.status === 200 && a.body?.success === true) {
      if (a.body.replayed) replays++;
      else answered.set(a.body.vote_id, r);
    } else if (a.status === 429 && a.body?.error_code === 'limit_reached') {
      const s = Number(a.retryAfter);
      if (!(Number.isInteger(s) && s >= 1 && s <= 86400)) badRetry++;
    } else if (a.status >= 500 || a.status === 0) serverErrors++;
    else unexpected++;
  });
  let notStored = 0;
  for (const [id, r] of answered) {
    const row = stored.get(id);
    if (!row || Number(row.entry_id) !== r.entry || row.user_id !== `u-${r.voter}`) notStored++;
  }
  const notAnswered = rows.filter((r) => !answered.has(Number(r.vote_id))).length;
  const perVoter = tally(rows.map((r) => r.user_id));
  let short = 0;
  for (let v = 0; v < voters; v++) if ((perVoter[`u-${v}`] || 0) !== expected[v % 4]) short++;
  const failures = serverErrors + notStored + notAnswered;
  console.log(`# ${label} crowd: failures ${failures} (HTTP 5xx or no answer: ${serverErrors}, ` +
              `answered 200 but not stored: ${notStored}, stored but not answered 200: ${notAnswered}); ` +
              `voters without their exact votes: ${short}; rows ${rows.length}, replays ${replays}`);
  if (expectFailures) {
    check(failures + short > 0, `the naive setting loses votes or fails requests (failures ${failures}, voters short ${short})`);
    return;
  }
  check(failures === 0 && unexpected === 0, 'no 5xx, every answer 200 or 429 limit_reached');
  check(badRetry === 0, 'every 429 has a Retry-After of 1 to 86400 s');
  check(notStored === 0 && notAnswered === 0 && rows.length === answered.size,
        'every new 200 is a row with its vote_id, entry and user, and every row was answered 200');
  check(short === 0 && rows.length === 1250 && replays === 125,
        'each voter has exactly its 3, 3, 3 or 1 votes (1250 rows), 125 replays');
  const results = await sql('SELECT entry_id, votes FROM vote_guard.results($1)', [contest]);
  const perEntry = tally([...answered.values()].map((r) => r.entry));
  check(results.every((r) => Number(r.votes) === (perEntry[r.entry_id] || 0)) &&
        results.reduce((s, r) => s + Number(r.votes), 0) === 1250,
        'results() per entry equals the 200s per entry');
  check(await drift(contest) === 0, 'verify() drift 0');
}

// Bad ids and bodies answer 400 invalid_input (the database would raise
// 22P02 or 22003 on some of them: a 500); X-Forwarded-For is read only from a
// trusted peer, from the right, ports stripped.
async function inputs() {
  const contest = await newContest(`inputs ${label}`);
  await addEntries(contest, 3);
  const c = `/contests/${contest}`;
  const cases = [
    ['non-numeric contest id', '/contests/abc/entries/1/vote', {}, 400],
    ['contest id above 2^63-1', '/contests/9223372036854775808/entries/1/vote', {}, 400],
    ['negative contest id', '/contests/-1/entries/1/vote', {}, 400],
    ['entry id 0', `${c}/entries/0/vote`, {}, 400],
    ['fractional entry id', `${c}/entries/1.5/vote`, {}, 400],
    ['body not JSON', `${c}/entries/1/vote`, { body: 'not json', xff: '203.0.113.30' }, 400],
    ['user_id a number', `${c}/entries/1/vote`, { body: '{"user_id": 5}', xff: '203.0.113.31' }, 400],
    ['body an array', `${c}/entries/1/vote`, { body: '[1]', xff: '203.0.113.32' }, 400],
    ['X-Forwarded-For not an address', `${c}/entries/1/vote`, { xff: '203.0.113.33, garbage' }, 400],
    ['X-Forwarded-For with an IPv6 zone', `${c}/entries/1/vote`, { xff: 'fe80::1%eth0' }, 400],
    ['GET', `${c}/entries/1/vote`, { method: 'GET' }, 405],
    ['unknown path', '/nothing', {}, 404],
    ['unknown contest', '/contests/9223372036854775807/entries/1/vote', { xff: '203.0.113.34' }, 404],
    // [what, url, options, status, the address that must be stored]
    ['X-Forwarded-For with a port', `${c}/entries/1/vote`, { xff: '203.0.113.9:5555' }, 200, '203.0.113.9'],
    ['X-Forwarded-For [IPv6]:port', `${c}/entries/1/vote`, { xff: '[2001:db8::7]:443' }, 200, '2001:db8::7'],
    ['spoofed hop left of the client', `${c}/entries/2/vote`, { xff: '6.6.6.6, 203.0.113.10' }, 200, '203.0.113.10'],
    ['a chain of trusted proxies', `${c}/entries/2/vote`, { xff: '6.6.6.6, 203.0.113.11, 192.0.2.1' }, 200, '203.0.113.11'],
    ['garbage left of the client', `${c}/entries/3/vote`, { xff: 'garbage, 203.0.113.12' }, 200, '203.0.113.12'],
    ['IPv4-mapped IPv6', `${c}/entries/3/vote`, { xff: '::ffff:203.0.113.13' }, 200, '203.0.113.13'],
    ['untrusted peer: X-Forwarded-For ignored', `${c}/entries/3/vote`,
      { xff: '203.0.113.14', localAddress: '127.0.0.2' }, 200, '127.0.0.2'],
  ];
  let n = 0;
  for (const [what, url, opts, status, ip] of cases) {
    const key = `inputs-${n++}`;
    const a = await post(url, { agent: false, key, ...opts });
    const code = a.body?.error_code;
    let ok = a.status === status && (status !== 400 || code === 'invalid_input');
    if (ip && ok) {
      const [{ same }] = await sql(`SELECT count(*)::int AS same FROM vote_guard.votes
                                    WHERE contest_id = $1 AND request_id = $2
                                      AND ip_key = vote_guard.ip_key($1, $3::inet)`, [contest, key, ip]);
      ok = same === 1;
    }
    check(ok, `${what}: ${status}${ip ? ` as ${ip}` : ''} (got ${a.status} ${code ?? a.error ?? ''})`);
  }
  const [{ rows }] = await sql('SELECT count(*)::int AS rows FROM vote_guard.votes WHERE contest_id = $1', [contest]);
  check(rows === cases.filter((x) => x[3] === 200).length && await drift(contest) === 0,
        'only the accepted requests are rows, verify() drift 0');
}

(async () => {
  db = new Client();
  await db.connect();
  try {
    if (scenario === 'one-voter') await oneVoter();
    else if (scenario === 'crowd') await crowd();
    else if (scenario === 'inputs') await inputs();
    else throw new Error(`unknown scenario ${scenario}`);
  } finally {
    await db.end();
  }
})().catch((err) => {
  console.log(`not ok - ${label} ${scenario}: ${err.stack}`);
  process.exit(1);
});
