// A small Node.js service with the health endpoints memwatch's `http`
// cleanup step calls: node's own `http` module, no npm packages.
//
//   node --expose-gc server.js            (PORT=3000 HOST=127.0.0.1 by default)
//
//   GET    /work?key=K          answers K and caches a 1 MiB Buffer for it: the
//                               cache grows with distinct keys, and so does RSS
//   GET    /health/metrics      memory and cache figures, as JSON
//   POST   /health/gc           clears every cache, runs the garbage collector,
//                               answers what RSS fell by
//   DELETE /health/cache/:name  clears one cache
//
// Buffers live outside V8's heap: clearing the cache and collecting gives
// their memory back to the system, which is what memwatch measures (RSS).
'use strict';

const http = require('http');

const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || '127.0.0.1';
const ENTRY_BYTES = Number(process.env.CACHE_ENTRY_BYTES || 1024 * 1024);
// The cache is bounded all the same: a service's cache should be.
const MAX_ENTRIES = Number(process.env.CACHE_MAX_ENTRIES || 4096);

const caches = { responses: new Map() };
let gcRuns = 0;
let lastGc = null;

function cacheFigures() {
  const figures = {};
  for (const [name, cache] of Object.entries(caches)) {
    let bytes = 0;
    for (const buffer of cache.values()) bytes += buffer.length;
    figures[name] = { entries: cache.size, bytes };
  }
  return figures;
}

function clear(cache) {
  let bytes = 0;
  for (const buffer of cache.values()) bytes += buffer.length;
  const entries = cache.size;
  cache.clear();
  return { entries, bytes };
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function collect() {
  if (typeof global.gc !== 'function') return false;
  // Twice: the first collection finds the buffers unreachable, the second
  // frees what the first left to finalize.
  global.gc();
  global.gc();
  return true;
}

function gc(res) {
  const rssBefore = process.memoryUsage().rss;
  const cleared = { entries: 0, bytes: 0 };
  for (const cache of Object.values(caches)) {
    const one = clear(cache);
    cleared.entries += one.entries;
    cleared.bytes += one.bytes;
  }
  const collected = collect();
  // The allocator hands large blocks back at once; give it a moment for the rest.
  setTimeout(() => {
    const rssAfter = process.memoryUsage().rss;
    gcRuns += 1;
    lastGc = { at: Date.now() / 1000, freedBytes: Math.max(0, rssBefore - rssAfter), cleared };
    answer(res, 200, {
      freedBytes: lastGc.freedBytes,
      rssBefore,
      rssAfter,
      clearedEntries: cleared.entries,
      clearedBytes: cleared.bytes,
      collected,
      note: collected ? undefined : 'start node with --expose-gc to collect too',
    });
  }, 50);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const route = `${req.method} ${url.pathname}`;
  if (route === 'GET /work') {
    const key = url.searchParams.get('key') || String(Date.now());
    const cache = caches.responses;
    if (!cache.has(key) && cache.size < MAX_ENTRIES) cache.set(key, Buffer.alloc(ENTRY_BYTES, key.length % 251));
    return answer(res, 200, { key, cached: cache.size });
  }
  if (route === 'GET /health/metrics') {
    const m = process.memoryUsage();
    return answer(res, 200, {
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      caches: cacheFigures(),
      gcRuns,
      lastGc,
    });
  }
  if (route === 'POST /health/gc') return gc(res);
  const cacheRoute = url.pathname.match(/^\/health\/cache\/([^/]+)$/);
  if (cacheRoute && req.method === 'DELETE') {
    const cache = caches[decodeURIComponent(cacheRoute[1])];
    if (!cache) return answer(res, 404, { error: `no cache named ${cacheRoute[1]}`, caches: Object.keys(caches) });
    const cleared = clear(cache);
    return answer(res, 200, { name: cacheRoute[1], clearedEntries: cleared.entries, clearedBytes: cleared.bytes });
  }
  if (cacheRoute || ['/work', '/health/metrics', '/health/gc'].includes(url.pathname)) {
    return answer(res, 405, { error: `${req.method} not allowed on ${url.pathname}` });
  }
  return answer(res, 404, { error: `no route ${route}` });
});

server.listen(PORT, HOST, () => {
  console.log(`listening on http://${HOST}:${server.address().port}`);
});
