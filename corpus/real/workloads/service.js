// A request loop as a Node.js service runs it, under V8's own collector:
// every --req-ms a "request" makes --garbage-kb of short-lived objects; a
// bounded cache fills towards --cache-mb with time constant --warm-min / 3
// (95% full after --warm-min); after --leak-after-min each request also keeps
// --leak-kb for good (the leak: a listener or a map entry never removed).
// Usage: node service.js --name KEY [--req-ms 100] [--garbage-kb 256]
//        [--cache-mb 0] [--warm-min 10] [--leak-kb 0] [--leak-after-min 0]
'use strict';

function options(argv) {
  const opts = { name: '', reqMs: 100, garbageKb: 256, cacheMb: 0, warmMin: 10, leakKb: 0, leakAfterMin: 0 };
  const keys = {
    '--name': 'name', '--req-ms': 'reqMs', '--garbage-kb': 'garbageKb', '--cache-mb': 'cacheMb',
    '--warm-min': 'warmMin', '--leak-kb': 'leakKb', '--leak-after-min': 'leakAfterMin',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = keys[argv[i]];
    if (!key || i + 1 >= argv.length) throw new Error(`unknown or incomplete option ${argv[i]}`);
    opts[key] = key === 'name' ? argv[i + 1] : Number(argv[i + 1]);
    if (key !== 'name' && !Number.isFinite(opts[key])) throw new Error(`${argv[i]} needs a number`);
  }
  return opts;
}

const opts = options(process.argv.slice(2));
const started = Date.now();
const cache = new Map();
const leaked = [];
let cacheBytes = 0;
let served = 0;

// An array of doubles lives on V8's heap at 8 bytes an element.
const block = (kb) => new Array(Math.max(1, Math.round((kb * 1024) / 8))).fill(Math.random());

function request() {
  served += 1;
  const minutes = (Date.now() - started) / 60000;
  let garbage = 0;
  for (let made = 0; made < opts.garbageKb; made += 16) garbage += block(16).length;
  const tau = opts.warmMin / 3;
  const cacheWanted = opts.cacheMb * 1024 * 1024 * (1 - Math.exp(-minutes / tau));
  while (opts.cacheMb > 0 && cacheBytes + 64 * 1024 <= cacheWanted) {
    cache.set(`entry-${cache.size}`, block(64));
    cacheBytes += 64 * 1024;
  }
  if (opts.leakKb > 0 && minutes >= opts.leakAfterMin) leaked.push(block(opts.leakKb));
  return garbage;
}

setInterval(request, opts.reqMs);
setInterval(() => {
  const mib = (process.memoryUsage().rss / 1048576).toFixed(1);
  console.error(`${opts.name}: ${served} requests, cache ${cache.size} entries, ${leaked.length} leaked, rss ${mib} MiB`);
}, 60000);
