// Preloaded into eddy's process under the latency benchmark to time what can hold an alert back on
// the module's event loop (docs/performance.md, "What bounds the figures"):
//
//   E2E_RATES=5000 E2E_NODELAY_ONLY=1 E2E_EDDY_NODE_ARGS="--import ./bench/stallPreload.mjs" \
//     node --import tsx bench/endToEnd.ts --latency-only
//
// It times every garbage collection (by kind: 1 = scavenge, 4 = mark-compact), every better-sqlite3
// transaction (the outbox's), every write statement run outside one (its own commit, e.g. a single
// record's removal) and every `fs.writeSync` (the input log's), and samples the event
// loop's delay. When the benchmark stops the module (SIGTERM) it writes count, total, p50, p99, max
// and the count over 1 ms of each to `$STALL_DIR/<pid>.json` (default: the system's temp folder).
import { writeFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';

const require = createRequire(join(process.cwd(), 'package.json'));
/** @type {Record<string, number[]>} */
const times = {};
const record = (name, ms) => (times[name] ??= []).push(ms);

const fs = require('node:fs');
const writeSync = fs.writeSync;
fs.writeSync = function (...args) {
  const t = performance.now();
  try {
    return writeSync.apply(this, args);
  } finally {
    record('fs.writeSync', performance.now() - t);
  }
};
// The input log imports `writeSync` by name: ES modules see the patch only after this.
syncBuiltinESMExports();

const Database = require('better-sqlite3');
const transaction = Database.prototype.transaction;
Database.prototype.transaction = function (fn) {
  const tx = transaction.call(this, fn);
  const timed = function (...args) {
    const t = performance.now();
    try {
      return tx.apply(this, args);
    } finally {
      record('sqlite transaction', performance.now() - t);
    }
  };
  for (const mode of ['deferred', 'immediate', 'exclusive']) timed[mode] = tx[mode];
  return timed;
};
const prepare = Database.prototype.prepare;
Database.prototype.prepare = function (sql) {
  const stmt = prepare.call(this, sql);
  if (!/^\s*(INSERT|DELETE|UPDATE)/i.test(sql)) return stmt;
  const inTransaction = () => this.inTransaction;
  for (const method of ['run', 'get', 'all']) {
    const call = stmt[method];
    stmt[method] = function (...args) {
      if (inTransaction()) return call.apply(this, args);
      const t = performance.now();
      try {
        return call.apply(this, args);
      } finally {
        record('sqlite autocommit write', performance.now() - t);
      }
    };
  }
  return stmt;
};

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) record(`gc kind ${e.detail?.kind}`, e.duration);
}).observe({ entryTypes: ['gc'] });
const loop = monitorEventLoopDelay({ resolution: 1 });
loop.enable();
const started = Date.now();

process.prependListener('SIGTERM', () => {
  const out = { seconds: (Date.now() - started) / 1000, eventLoopDelayMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 } };
  for (const [name, v] of Object.entries(times)) {
    v.sort((a, b) => a - b);
    const at = (q) => +v[Math.min(v.length - 1, Math.floor(v.length * q))].toFixed(3);
    out[name] = { n: v.length, totalMs: +v.reduce((s, x) => s + x, 0).toFixed(1), p50: at(0.5), p99: at(0.99), max: at(1), over1ms: v.filter((x) => x > 1).length };
  }
  writeFileSync(join(process.env.STALL_DIR ?? tmpdir(), `stall-${process.pid}.json`), JSON.stringify(out, null, 1));
});
