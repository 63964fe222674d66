// Preloaded into a module's process to find what allocates on the per-input path (docs/performance.md,
// "Latency"): V8's sampling heap profiler, counting objects that garbage collection already freed
// too (its `includeObjectsCollectedByMinorGC/MajorGC` flags; plain `--heap-prof` keeps only the
// survivors, which misses the short-lived garbage that drives the scavenges).
//
//   E2E_RATES=5000 E2E_NODELAY_ONLY=1 E2E_EDDY_NODE_ARGS="--import ./bench/allocPreload.mjs" \
//     node --import tsx bench/endToEnd.ts --latency-only
//
// Sampling starts ALLOC_START_MS after start-up (default 8000: after the module connected and
// warmed up). When the benchmark stops the module (SIGTERM) it writes `$ALLOC_DIR/alloc-<pid>.json`
// (default: the system's temp folder), and the profile itself as `alloc-<pid>.heapprofile`: the sampled bytes, the sampling window, and the top
// allocating functions by self bytes (name, script:line, bytes) and by bytes including callees. Divide
// by the inputs the module received in the window for bytes per input.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const session = new Session();
session.connect();
const post = (method, params) =>
  new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));

/**
 * ALLOC_PROMOTED=1: leaves out what scavenges freed, so the profile holds what survived into the old
 * generation (freed by a full collection since, or not): what makes scavenges copy, and the old
 * generation grow.
 */
const promoted = process.env.ALLOC_PROMOTED === '1';
let startedAt = 0;
setTimeout(() => {
  startedAt = Date.now();
  void post('HeapProfiler.startSampling', { samplingInterval: Number(process.env.ALLOC_INTERVAL ?? 4096), includeObjectsCollectedByMinorGC: !promoted, includeObjectsCollectedByMajorGC: true });
}, Number(process.env.ALLOC_START_MS ?? 8000)).unref();

process.prependListener('SIGTERM', () => {
  if (startedAt === 0) return;
  // The inspector session answers synchronously on the main thread.
  session.post('HeapProfiler.stopSampling', (err, res) => {
    if (err) return;
    const self = new Map();
    const total = new Map();
    let bytes = 0;
    const walk = (node, stack) => {
      const f = node.callFrame;
      const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|src|dist)\//, '$1/')}:${f.lineNumber + 1}`;
      const own = node.selfSize;
      bytes += own;
      self.set(key, (self.get(key) ?? 0) + own);
      const sub = own + node.children.reduce((a, c) => a + walk(c, [...stack, key]), 0);
      if (!stack.includes(key)) total.set(key, (total.get(key) ?? 0) + sub);
      return sub;
    };
    walk(res.profile.head, []);
    const top = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, 40);
    const dir = process.env.ALLOC_DIR ?? tmpdir();
    writeFileSync(join(dir, `alloc-${process.pid}.json`), JSON.stringify({ seconds: (Date.now() - startedAt) / 1000, bytes, self: top(self), total: top(total) }, null, 1));
    // The whole profile too, for Chrome DevTools' Memory tab (or a script walking callers).
    writeFileSync(join(dir, `alloc-${process.pid}.heapprofile`), JSON.stringify(res.profile));
  });
});
