// Preloaded into a module's process to profile its CPU over one latency run only (docs/performance.md,
// "Input → alert latency"): `E2E_CPU_PROF_DIR` profiles the whole life of the process, start-up and
// idle included, which hides the per-input path of a 4-second run.
//
//   CPU_DIR=/tmp/prof E2E_RATES=5000 E2E_NODELAY_ONLY=1 \
//     E2E_EDDY_NODE_ARGS="--import ./bench/cpuProfilePreload.mjs" E2E_BARE_NODE_ARGS="--import ./bench/cpuProfilePreload.mjs" \
//     node --import tsx bench/endToEnd.ts --latency-only
//
// The profiler starts CPU_START_MS after start-up in eddy (default 8000: bench/endToEnd.ts measures the
// bare echo first, then eddy) and CPU_START_BARE_MS in the bare module (default 1000), samples every
// CPU_INTERVAL µs (default 100), and writes `$CPU_DIR/cpu-<pid>.cpuprofile` (default: the system's temp
// folder) when the benchmark stops the module (SIGTERM). Summarise with bench/cpuProfileTop.ts.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const session = new Session();
session.connect();
const bare = (process.argv[1] ?? '').includes('bareModule');
let started = false;
setTimeout(
  () => {
    session.post('Profiler.enable', () =>
      session.post('Profiler.setSamplingInterval', { interval: Number(process.env.CPU_INTERVAL ?? 100) }, () =>
        session.post('Profiler.start', () => {
          started = true;
        }),
      ),
    );
  },
  Number(bare ? (process.env.CPU_START_BARE_MS ?? 1000) : (process.env.CPU_START_MS ?? 8000)),
).unref();

process.prependListener('SIGTERM', () => {
  if (!started) return;
  // The inspector session answers synchronously on the main thread.
  session.post('Profiler.stop', (err, res) => {
    if (!err) writeFileSync(join(process.env.CPU_DIR ?? tmpdir(), `cpu-${process.pid}.cpuprofile`), JSON.stringify(res.profile));
  });
});
