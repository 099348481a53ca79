'use strict';
// vote_guard example: one vote endpoint on node's http module, with a pg Pool.
//
//   POST /contests/:contest/entries/:entry/vote
//   optional JSON body {"user_id": "...", "email": "..."}, optional header Idempotency-Key
//
// It calls vote_guard.cast_vote once and answers with the row's http_status and
// a JSON body.  Settings come from the environment: PGHOST, PGPORT, PGDATABASE,
// PGUSER, PGPASSWORD (read by pg itself), HOST (default 127.0.0.1), PORT
// (default 8080), POOL_SIZE (default 10), TRUSTED_PROXIES (addresses or CIDR
// prefixes, comma-separated, default none).
//
// Behind PgBouncer in transaction mode (any version) it works as it is: every
// query is unnamed (no `name:`), so no prepared statement outlives its
// transaction, and pg's Pool runs each query in autocommit.

const http = require('node:http');
const net = require('node:net');
const { Pool } = require('pg');

const CAST_VOTE = 'SELECT * FROM vote_guard.cast_vote($1, $2, $3, $4, $5, $6)';
const MAX_BODY = 16 * 1024;
const MAX_BIGINT = 9223372036854775807n;
const RETRIES = 3;   // for 40001 and 40P01

// A positive bigint in decimal, or null.  It is passed on as the string it
// is: a JavaScript number would lose digits above 2^53.
function parseId(text) {
  if (!/^[0-9]{1,19}$/.test(text)) return null;
  const n = BigInt(text);
  return n >= 1n && n <= MAX_BIGINT ? n.toString() : null;
}

// '::ffff:192.0.2.1' is 192.0.2.1 (a dual-stack socket reports IPv4 peers so).
function unmap(addr) {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1] : addr;
}

// One hop of X-Forwarded-For: an address, maybe with a port
// ('192.0.2.1:5555', '[2001:db8::1]:443') that some proxies add; null when it
// is not an address.
function parseHop(hop) {
  let m;
  if ((m = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(hop))) hop = m[1];
  else if ((m = /^(\d+\.\d+\.\d+\.\d+):\d{1,5}$/.exec(hop))) hop = m[1];
  // a zone ('fe80::1%eth0') is no address of the client's: inet rejects it too
  return net.isIP(hop) && !hop.includes('%') ? unmap(hop) : null;
}

function proxyList(spec) {
  const list = new net.BlockList();
  for (const item of (spec || '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const [addr, bits] = item.split('/');
    const type = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
    if (!net.isIP(addr)) throw new Error(`TRUSTED_PROXIES: not an address: ${item}`);
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return list;
}

function trusted(list, addr) {
  return list.check(addr, net.isIPv6(addr) ? 'ipv6' : 'ipv4');
}

// The client's address: the socket's peer, unless that peer is a trusted
// proxy; then X-Forwarded-For is read from the right, and the first address
// that is not a trusted proxy is the client (the ones left of it are whatever
// the client chose to send).  null when a hop that must be read is malformed.
function clientAddress(req, proxies) {
  let addr = unmap(req.socket.remoteAddress.replace(/%.*$/, ''));   // a link-local peer's zone
  const header = req.headers['x-forwarded-for'];   // several headers arrive joined by ', '
  if (!trusted(proxies, addr) || !header) return addr;
  const hops = header.split(',').map((s) => s.trim());
  for (let i = hops.length - 1; i >= 0; i--) {
    addr = parseHop(hops[i]);
    if (addr === null) return null;
    if (!trusted(proxies, addr)) return addr;
  }
  return addr;   // only proxies: the leftmost is the client
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(Object.assign(new Error('body too large'), { status: 413 }));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function optionalString(v) {
  return v === undefined || v === null || typeof v === 'string';
}

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(body);
}

function invalid(res, detail) {
  send(res, 400, JSON.stringify({
    success: false, error_code: 'invalid_input', vote_count: null, vote_id: null,
    retry_at: null, replayed: false, detail,
  }));
}

// The result as JSON.  bigint columns arrive as strings (node-postgres does
// not make them JavaScript numbers, which would round above 2^53): their
// digits are written into the JSON as they are, so the client gets numbers.
function resultJson(r) {
  return '{"success":' + r.success +
    ',"error_code":' + JSON.stringify(r.error_code) +
    ',"vote_count":' + (r.vote_count ?? 'null') +
    ',"vote_id":' + (r.vote_id ?? 'null') +
    ',"retry_at":' + (r.retry_at ? JSON.stringify(r.retry_at.toISOString()) : 'null') +
    ',"replayed":' + r.replayed + '}';
}

function createPool(config = {}) {
  const pool = new Pool({ max: Number(process.env.POOL_SIZE || 10), ...config });
  // an idle connection that breaks (server restart) must not end the process
  pool.on('error', (err) => console.error('idle connection:', err.message));
  return pool;
}

async function castVote(pool, params) {
  for (let attempt = 1; ; attempt++) {
    try {
      const { rows } = await pool.query(CAST_VOTE, params);
      return rows[0];
    } catch (err) {
      // serialization failure or deadlock: the vote was rolled back, and
      // running it again is safe (the same request_id, if any)
      if ((err.code === '40001' || err.code === '40P01') && attempt < RETRIES) continue;
      throw err;
    }
  }
}

const ROUTE = /^\/contests\/([^/]+)\/entries\/([^/]+)\/vote$/;

function createServer(pool, { trustedProxies = '' } = {}) {
  const proxies = proxyList(trustedProxies);
  return http.createServer(async (req, res) => {
    try {
      const m = ROUTE.exec(new URL(req.url, 'http://x').pathname);
      if (!m) return send(res, 404, '{"error_code":"not_found"}');
      if (req.method !== 'POST') {
        return send(res, 405, '{"error_code":"method_not_allowed"}', { Allow: 'POST' });
      }
      const contestId = parseId(m[1]);
      const entryId = parseId(m[2]);
      if (!contestId || !entryId) return invalid(res, 'contest and entry ids are positive integers');
      const ip = clientAddress(req, proxies);
      if (!ip) return invalid(res, 'X-Forwarded-For holds something that is not an address');
      const text = await readBody(req);
      let body = {};
      if (text.trim() !== '') {
        try { body = JSON.parse(text); } catch { return invalid(res, 'the body is not JSON'); }
      }
      if (body === null || typeof body !== 'object' || Array.isArray(body) ||
          !optionalString(body.user_id) || !optionalString(body.email)) {
        return invalid(res, 'the body is an object with optional strings user_id and email');
      }
      // In an application, user_id is the user that it has authenticated, not
      // something the request states.
      const r = await castVote(pool, [contestId, entryId, ip, body.user_id ?? null,
        body.email ?? null, req.headers['idempotency-key'] ?? null]);
      const headers = {};
      if (r.http_status === 429 && r.retry_at) {
        headers['Retry-After'] = String(Math.max(1, Math.ceil((r.retry_at - Date.now()) / 1000)));
      }
      send(res, r.http_status, resultJson(r), headers);
    } catch (err) {
      if (err.status === 413) return send(res, 413, '{"error_code":"body_too_large"}');
      console.error('vote failed:', err.code || '', err.message);
      if (!res.headersSent) send(res, 500, '{"error_code":"internal_error"}');
    }
  });
}

// Serve until SIGTERM or ^C.  pool: a ready pool (tests pass their own).
function main(pool = createPool()) {
  const server = createServer(pool, { trustedProxies: process.env.TRUSTED_PROXIES });
  const host = process.env.HOST || '127.0.0.1';
  server.listen(Number(process.env.PORT || 8080), host, () => {
    console.log(`listening on http://${host}:${server.address().port}`);
  });
  const stop = () => server.close(() => pool.end());
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}

module.exports = { createPool, createServer, clientAddress, parseId, main, CAST_VOTE };

if (require.main === module) main();
