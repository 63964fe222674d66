/**
 * Soak test (docs/performance.md "Results"; not part of `npm test`): the BUILT module (`node dist/main.js`) against the
 * edgeHub emulator, fed SimulatedTemperatureSensor-like traffic at a steady rate (default 1,000
 * events/s from 100 devices, 1 % hostile bodies), with a desired-properties patch every minute that
 * adds, changes or removes a twin rule (hot reload). Every minute it prints the module's RSS and V8
 * heap (from its own `GET /metrics`: prom-client's process metrics), outbox, received and emitted
 * counts, and the driver's RSS. At the end, the RSS trend: a least-squares slope over the second half.
 *
 *   npm run build && npx tsx bench/soak.ts --minutes 5 [--rate 1000] [--devices 100]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { freePort } from '../test/helpers/freePort.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEdgeHubEmulator } from '../test/helpers/edgeHubEmulator.js';

/** EDDY_BENCH_MAIN: another build (a copy of dist/ beside a rules/ folder), so dist/ can be rebuilt while a long soak runs. */
const DIST_MAIN = process.env.EDDY_BENCH_MAIN ?? fileURLToPath(new URL('../dist/main.js', import.meta.url));
const MODULE = 'eddy';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

const MINUTES = arg('minutes', 60);
const RATE = arg('rate', 1000);
const DEVICES = arg('devices', 100);
const TICK_MS = 100;

/** .NET's `DateTime.UtcNow` text, as SimulatedTemperatureSensor writes it. */
function dotnetTime(t: number): string {
  return new Date(t).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

/** A few hostile bodies, cycled: each is rejected under a fixed reason. */
const HOSTILE: Array<string | Buffer> = [
  '{"machine":{"temperature":',
  Buffer.from([0x7b, 0xff, 0x7d]),
  '[1,"x",null]',
  '{"a":'.repeat(40) + '1' + '}'.repeat(40),
  '{"__proto__":{"polluted":1},"machine":{"temperature":"hot"},"timeCreated":"yesterday"}',
];

function sampleMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const sp = line.lastIndexOf(' ');
    const key = line.slice(0, sp);
    const name = key.replace(/\{.*$/, '');
    m.set(key, Number(line.slice(sp + 1)));
    // Totals per metric name across label sets.
    if (key !== name) m.set(`${name}#sum`, (m.get(`${name}#sum`) ?? 0) + Number(line.slice(sp + 1)));
  }
  return m;
}

async function main(): Promise<void> {
  const emu = await startEdgeHubEmulator();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'eddy-soak-'));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('EDDY_') || k.startsWith('IOTEDGE_')) delete env[k];
  Object.assign(env, emu.moduleEnv(MODULE), { EDDY_DATA_DIR: dataDir, EDDY_METRICS_PORT: String(port), EDDY_LOG_LEVEL: 'warn' });
  const child = spawn(process.execPath, [DIST_MAIN], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let childLog = '';
  child.stderr.on('data', (d: Buffer) => {
    childLog = (childLog + d.toString()).slice(-4000);
  });
  let exited = false;
  child.on('exit', (code, signal) => {
    exited = true;
    if (!stopping) console.error(`module exited early: code ${code} signal ${signal}\n${childLog}`);
  });
  let stopping = false;

  const metrics = async (): Promise<Map<string, number>> => sampleMetrics(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  // Wait for the module's metrics endpoint and its connection.
  for (let i = 0; ; i++) {
    try {
      await metrics();
      if (emu.isConnected(MODULE)) break;
    } catch {
      /* not up yet */
    }
    if (i > 300 || exited) throw new Error(`module did not start\n${childLog}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 1000)); // twin read and first report

  console.log(`soak: built module vs edgeHub emulator, ${RATE} events/s from ${DEVICES} devices for ${MINUTES} min, a twin patch every minute`);
  console.log('min  sent      received  rejected  emitted  outbox  module RSS MB  heap MB  driver RSS MB');
  const temps = Array.from({ length: DEVICES }, (_, d) => 21 + (d % 10));
  let sent = 0;
  let inFlight = 0;
  const start = Date.now();
  const rows: Array<{ min: number; rss: number; heap: number }> = [];

  const tick = setInterval(() => {
    const due = Math.floor(((Date.now() - start) / 1000) * RATE) - sent;
    // Back-pressure: the driver never queues more than a second of traffic at the broker.
    const n = Math.min(due, RATE - inFlight);
    for (let i = 0; i < n; i++) {
      const seq = sent++;
      const d = seq % DEVICES;
      let body: string | Buffer;
      if (seq % 100 === 99) body = HOSTILE[(seq / 100) % HOSTILE.length | 0]!;
      else {
        const t = temps[d]! + (Math.random() - 0.3) * 0.5;
        temps[d] = t > 100 ? 99 : t;
        body = JSON.stringify({ machine: { temperature: temps[d], pressure: 1 + (temps[d]! - 21) / 9 }, ambient: { temperature: 21 + Math.random() - 0.5, humidity: 24 + Math.floor(Math.random() * 3) }, timeCreated: dotnetTime(Date.now()) });
      }
      inFlight++;
      void emu.sendInput(MODULE, 'telemetry', body, { deviceId: `sensor-${d}` }).finally(() => inFlight--);
    }
  }, TICK_MS);

  let patch = 0;
  const patcher = setInterval(() => {
    patch++;
    // Cycle: add a rule, change it, add a second one, remove both.
    const step = patch % 4;
    const rules: Record<string, unknown> =
      step === 1 ? { soakA: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'hopping', size: '2m', hop: '30s' }, select: { p95: 'percentile(machine.temperature, 95)', n: 'count()' } } }
      : step === 2 ? { soakA: { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'hopping', size: '2m', hop: '20s' }, select: { med: 'median(machine.temperature)', n: 'count()' } } }
      : step === 3 ? { soakB: { kind: 'anomaly', groupBy: ['$deviceId'], timestamp: 'timeCreated', value: 'machine.temperature', detector: { type: 'zscore', window: 300, threshold: 4 } } }
      : { soakA: null, soakB: null };
    emu.pushDesired(MODULE, { rules });
  }, 60_000);

  for (let min = 1; min <= MINUTES && !exited; min++) {
    await new Promise((r) => setTimeout(r, start + min * 60_000 - Date.now()));
    const m = await metrics();
    const rss = (m.get('process_resident_memory_bytes') ?? NaN) / 1e6;
    const heap = (m.get('nodejs_heap_size_used_bytes') ?? NaN) / 1e6;
    rows.push({ min, rss, heap });
    const cols = [
      String(min).padEnd(4), String(sent).padEnd(9), String(m.get('eddy_messages_received_total#sum') ?? 0).padEnd(9),
      String(m.get('eddy_messages_rejected_total#sum') ?? 0).padEnd(9), String(m.get('eddy_window_results_total#sum') ?? 0).padEnd(8),
      String(m.get('eddy_outbox_pending') ?? 0).padEnd(7), rss.toFixed(1).padEnd(14), heap.toFixed(1).padEnd(8), (process.memoryUsage().rss / 1e6).toFixed(1),
    ];
    console.log(cols.join(' '));
  }

  clearInterval(tick);
  clearInterval(patcher);
  stopping = true;
  const half = rows.slice(Math.floor(rows.length / 2));
  if (half.length >= 2) {
    const mx = half.reduce((a, r) => a + r.min, 0) / half.length;
    const my = half.reduce((a, r) => a + r.rss, 0) / half.length;
    const slope = half.reduce((a, r) => a + (r.min - mx) * (r.rss - my), 0) / half.reduce((a, r) => a + (r.min - mx) ** 2, 0);
    console.log(`RSS trend over the second half: ${slope >= 0 ? '+' : ''}${slope.toFixed(2)} MB/min; RSS min ${Math.min(...rows.map((r) => r.rss)).toFixed(1)} max ${Math.max(...rows.map((r) => r.rss)).toFixed(1)} MB`);
  }
  child.kill('SIGTERM');
  await new Promise((r) => (exited ? r(null) : child.once('exit', r)));
  await emu.close();
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
