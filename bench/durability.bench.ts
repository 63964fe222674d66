/**
 * What durability costs end to end (target: less than 20 % of end-to-end throughput;
 * docs/performance.md "Durability cost"). Run: `npx tsx bench/durability.bench.ts [--inputs N]` after `npm run build`;
 * writes bench/results/durability.json.
 *
 * src/main.ts has no switch that turns the durable path off (and this bench does not invent one),
 * so the share is measured, in the same run, as a ratio of two figures:
 *  1. end to end: the BUILT module (`node dist/main.js`, default rules) behind the edgeHub emulator;
 *     N SimulatedTemperatureSensor inputs published, time until the last summary is upstream and
 *     the outbox is drained (`flush`), and the module's CPU time per input from /proc/<pid>/stat;
 *     The module also reports, on /metrics, how many outbox transactions it committed in the run
 *     and how many rows they wrote (`eddy_outbox_commits_total{op}`, `eddy_outbox_rows_written_total{op}`):
 *     main.ts commits the outputs of an event-loop turn in one transaction, the forwarder the
 *     removal of the records edgeHub acked since its last pass in another.
 *  2. in this process, the durable work main.ts does per input and per output, on the same bodies:
 *     content fingerprint + redelivery ring + input-log append (`handleInput`), and the outbox
 *     commits the module made, as it made them: as many append and remove transactions per input
 *     as it counted, each writing as many rows as the module's did on average (rounded). Each commit
 *     is timed alone (process CPU time); untimed appends or removals between them keep the table at
 *     a steady size. Message ids are made as the engine makes them (UUID-shaped hashes: they land
 *     at random places of an index keyed by id).
 * share = durable CPU per input / module CPU per input. Throughput without durability would be at
 * most 1 / (1 - share) times the measured one (CPU-bound module).
 *
 * Needs a build that serves the outbox write counters (EDDY_TEST_MAIN may point to another build).
 */
import Benchmark from 'benchmark';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { freePort } from '../test/helpers/freePort.js';
import type { OutputMessage } from '../src/contracts/output.js';
import { fingerprint, RedeliveryFilter } from '../src/ingest/redeliveryFilter.js';
import { decodeMessage } from '../src/ingest/decodeMessage.js';
import { summaryMessageId } from '../src/rules/outputMessage.js';
import { FileInputLog } from '../src/store/fileInputLog.js';
import { SqliteOutbox } from '../src/store/sqliteOutbox.js';
import { openDatabase } from '../src/store/store.js';
import { startEdgeHubEmulator } from '../test/helpers/edgeHubEmulator.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = process.env.EDDY_TEST_MAIN ?? join(ROOT, 'dist/main.js');
const argv = process.argv.slice(2);
const N = argv.includes('--inputs') ? Number(argv[argv.indexOf('--inputs') + 1]) : 12_000;
const DEVICES = ['s1', 's2', 's3', 's4'];
const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const STEP = 5_000; // a reading every 5 s of event time per device: 12 per 1-minute window
const silent = { info: () => {}, warn: () => {}, error: () => {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function body(i: number, d: number): Buffer {
  const t = T0 + Math.floor(i / DEVICES.length) * STEP + d;
  return Buffer.from(JSON.stringify({
    machine: { temperature: 21 + (i % 97) / 4, pressure: 1 + (i % 13) / 64 },
    ambient: { temperature: 20 + (i % 7) / 8, humidity: 24 + (i % 3) },
    timeCreated: new Date(t).toISOString().replace('Z', '0000Z'),
  }));
}

/** utime + stime of a process in ms (Linux /proc; ticks are USER_HZ = 100 on every Linux ABI in use). */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Outbox commits by op, and rows written by op, as the module counts them. */
interface OutboxWrites {
  commits: { append: number; remove: number };
  appended: number;
  removed: number;
}

async function outboxWrites(port: number): Promise<OutboxWrites> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const value = (series: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    if (line === undefined) throw new Error(`${series} missing from /metrics: this build does not count outbox writes`);
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  };
  return {
    commits: { append: value('eddy_outbox_commits_total{op="append"}'), remove: value('eddy_outbox_commits_total{op="remove"}') },
    appended: value('eddy_outbox_rows_written_total{op="append"}'),
    removed: value('eddy_outbox_rows_written_total{op="remove"}'),
  };
}

// ---- 1. end to end ----
async function endToEnd(): Promise<{ inputsPerSecond: number; cpuUsPerInput: number; summaries: number; alerts: number; wallMs: number; writes: OutboxWrites }> {
  const emu = await startEdgeHubEmulator();
  const dataDir = mkdtempSync(join(tmpdir(), 'eddy-bench-dur-'));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, ...emu.moduleEnv('eddy'), EDDY_DATA_DIR: dataDir, EDDY_METRICS_PORT: String(port), EDDY_LOG_LEVEL: 'warn' };
  delete env.EDDY_RULES_FILE;
  const child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await emu.waitForClient('eddy', 60_000);
    while ((emu.twin('eddy').reported as { eddy?: unknown }).eddy === undefined) await sleep(50);
    const acks = () => emu.inputAcks.filter((a) => a.moduleId === 'eddy').length;
    const send = (i: number) => emu.sendInput('eddy', 'telemetry', body(i, i % DEVICES.length), { deviceId: DEVICES[i % DEVICES.length]!, moduleId: 'SimulatedTemperatureSensor' });
    // Warm-up (JIT, SQLite page cache): 10 % of the run, not measured.
    const warm = Math.floor(N / 10);
    for (let i = 0; i < warm; i++) await send(i);
    while (acks() < warm) await sleep(20);
    const upBefore = emu.upstream.length;
    // Before the CPU reading: the scrape itself is not the module's work per input.
    const writes0 = await outboxWrites(port);
    const cpu0 = cpuMs(child.pid!);
    const t0 = performance.now();
    // Publish as fast as the broker takes them; at most 2,000 unacknowledged so the run measures the
    // module, not an unbounded queue in the emulator.
    for (let i = warm; i < warm + N; i++) {
      await send(i);
      if (i - warm - acks() + warm > 2_000) while (i + 1 - acks() > 1_000) await sleep(5);
    }
    // Closers: one reading an hour ahead per device closes every window of the run.
    const end = warm + N + DEVICES.length * 720;
    for (let d = 0; d < DEVICES.length; d++) await send(end + d);
    while (acks() < warm + N + DEVICES.length) await sleep(10);
    const flushed = await emu.invokeMethod('eddy', 'flush', null, 60_000);
    if (flushed.status !== 200) throw new Error(`flush answered ${flushed.status}`);
    const wallMs = performance.now() - t0;
    const cpu = cpuMs(child.pid!) - cpu0;
    const writes1 = await outboxWrites(port);
    const out = emu.upstream.slice(upBefore);
    return {
      writes: {
        commits: { append: writes1.commits.append - writes0.commits.append, remove: writes1.commits.remove - writes0.commits.remove },
        appended: writes1.appended - writes0.appended,
        removed: writes1.removed - writes0.removed,
      },
      inputsPerSecond: (N / wallMs) * 1000,
      cpuUsPerInput: (cpu * 1000) / N,
      summaries: out.filter((m) => m.output === 'summaries').length,
      alerts: out.filter((m) => m.output === 'alerts').length,
      wallMs,
    };
  } finally {
    child.kill('SIGKILL');
    await emu.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---- 2. the durable work per input and per output, in this process ----
function perOp(name: string, fn: () => void): number {
  const b = new Benchmark(name, fn, { maxTime: 1.5, minSamples: 5 });
  b.run({ async: false });
  return 1e6 / b.hz;
}

/** CPU time of each call of `fn` (process CPU, µs), averaged: the outbox commits are timed one by one. */
function cpuPerCall(calls: number, fn: () => void, between: () => void): number {
  let us = 0;
  for (let i = 0; i < calls; i++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    us += c.user + c.system;
    between();
  }
  return us / calls;
}

/** CPU per commit of each kind the module makes, writing `a` rows to append and `r` to remove. */
interface CommitCosts {
  appendUs: number;
  removeUs: number;
}

function durableCosts(a: number, r: number): { ingestUs: number; decodeUs: number; commit: CommitCosts } {
  const root = mkdtempSync(join(tmpdir(), 'eddy-bench-dur-'));
  try {
    const bodies = Array.from({ length: 1024 }, (_, i) => body(i, i % 4));
    const log = new FileInputLog(join(root, 'inputs'), silent);
    const filter = new RedeliveryFilter({ now: () => performance.now() });
    let i = 0;
    let n = 0;
    // What handleInput in src/main.ts does for durability, and nothing else.
    const ingestUs = perOp('durable ingest', () => {
      const b = bodies[i++ & 1023]!;
      const fp = fingerprint('telemetry', 's1', 'SimulatedTemperatureSensor', b);
      filter.isRedelivery(fp);
      const elapsed = filter.record(fp);
      log.appendInput({ input: 'telemetry', deviceId: 's1', moduleId: 'SimulatedTemperatureSensor', arrival: T0 + i, elapsed, body: b });
      // A checkpoint truncates the log every 5 s; keep the file from growing without bound.
      if (++n % 50_000 === 0) log.truncateUpTo(log.lastSeq());
    });
    log.close();
    const decodeUs = perOp('decode (reference)', () => {
      decodeMessage(bodies[i++ & 1023]!, { input: 'telemetry', deviceId: 's1', moduleId: 'SimulatedTemperatureSensor', arrival: T0 });
    });
    const db = openDatabase(join(root, 'outbox.db'));
    const outbox = new SqliteOutbox(db);
    const msg = (k: number): OutputMessage => {
      const rule = k % 2 === 0 ? 'machine1m' : 'ambient1m';
      const start = T0 + (k >> 3) * 60_000;
      const window = { type: 'tumbling' as const, start: new Date(start).toISOString(), end: new Date(start + 60_000).toISOString() };
      return {
        id: summaryMessageId(rule, '0f3a9c', `s${(k >> 1) % 4}`, { type: 'tumbling', start, end: start + 60_000 }, 0), output: 'summaries', kind: 'summary', rule, groupKey: `s${(k >> 1) % 4}`, createdAt: T0 + k,
        body: { rule, group: { deviceId: `s${(k >> 1) % 4}` }, window, count: 12, values: { tempAvg: 57.125, tempMin: 50.25, tempMax: 63.75, tempStdev: 4.1, pressureAvg: 1.08, pressureMax: 1.12 }, revision: 0 },
      };
    };
    let k = 0;
    const batch = (size: number): OutputMessage[] => Array.from({ length: size }, () => msg(k++));
    // The outbox holds about as many records as the forwarder keeps in flight (64): removals take the oldest.
    const oldest = (size: number): number[] => outbox.peek(size).map((rec) => rec.seq);
    outbox.append(batch(64));
    const keepSteady = (): void => {
      const over = outbox.stats().pending - 64;
      if (over > 0) outbox.remove(oldest(over));
      else if (over < 0) outbox.append(batch(-over));
    };
    const calls = 3_000;
    const timeAll = (): CommitCosts => ({
      appendUs: cpuPerCall(calls, () => outbox.append(batch(a)), keepSteady),
      removeUs: cpuPerCall(calls, () => outbox.remove(oldest(r)), keepSteady),
    });
    timeAll(); // warm-up: JIT, page cache, a WAL of the size it keeps
    const commit = timeAll();
    db.close();
    return { ingestUs, decodeUs, commit };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * The redelivery tail a checkpoint writes (src/ingest/redeliveryFilter.ts `encodeRecent`) when it is
 * full: 65,535 inputs within 30 s, the most MQTT can have in flight. Packed doubles against the JSON
 * pairs earlier versions wrote; the time includes the JSON.stringify the checkpoint applies to it.
 */
function tailCheckpoint(): { packedUs: number; pairsUs: number; packedBytes: number; pairsBytes: number } {
  const filter = new RedeliveryFilter({ now: () => performance.now() });
  for (let i = 0; i < 65_535; i++) filter.record(fingerprint('telemetry', `s${i & 7}`, 'm', body(i, i & 3)), T0 + i / 4);
  const packed = JSON.stringify(filter.encodeRecent());
  const pairs = JSON.stringify(filter.recent());
  const packedUs = perOp('redelivery tail checkpoint, packed', () => JSON.stringify(filter.encodeRecent()));
  const pairsUs = perOp('redelivery tail checkpoint, JSON pairs', () => JSON.stringify(filter.recent()));
  return { packedUs, pairsUs, packedBytes: packed.length, pairsBytes: pairs.length };
}

const tail = tailCheckpoint();
const e2e = await endToEnd();
const w = e2e.writes;
const rowsPerAppend = w.commits.append > 0 ? w.appended / w.commits.append : 0;
const rowsPerRemove = w.commits.remove > 0 ? w.removed / w.commits.remove : 0;
const costs = durableCosts(Math.max(1, Math.round(rowsPerAppend)), Math.max(1, Math.round(rowsPerRemove)));
// Timed at the measured averages rounded to whole rows.
const c = costs.commit;
const outboxUs = (w.commits.append * c.appendUs + w.commits.remove * c.removeUs) / N;
const outputsPerInput = (e2e.summaries + e2e.alerts) / N;
const durableUsPerInput = costs.ingestUs + outboxUs;
const share = durableUsPerInput / e2e.cpuUsPerInput;
const commitsPerInput = (w.commits.append + w.commits.remove) / N;
const rows: Array<[string, string]> = [
  ['end to end: inputs/s (published -> last summary upstream, drained)', e2e.inputsPerSecond.toFixed(0)],
  ['end to end: module CPU per input (µs)', e2e.cpuUsPerInput.toFixed(1)],
  ['end to end: outputs per input', outputsPerInput.toFixed(4)],
  ['module outbox commits: append / remove', `${w.commits.append} / ${w.commits.remove}`],
  ['module outbox rows per commit: appended / removed', `${rowsPerAppend.toFixed(1)} / ${rowsPerRemove.toFixed(1)}`],
  ['module outbox commits per input', commitsPerInput.toFixed(4)],
  ['durable ingest per input: fingerprint + redelivery ring + input-log append (µs)', costs.ingestUs.toFixed(2)],
  ['decode per input, for reference (µs)', costs.decodeUs.toFixed(2)],
  [`outbox commit CPU: append ${Math.max(1, Math.round(rowsPerAppend))} rows / remove ${Math.max(1, Math.round(rowsPerRemove))} rows (µs)`, `${c.appendUs.toFixed(0)} / ${c.removeUs.toFixed(0)}`],
  ['outbox per input, as the module commits (µs)', outboxUs.toFixed(2)],
  ['outbox per output, as the module commits (µs)', (outboxUs / outputsPerInput).toFixed(2)],
  ['durable CPU per input, total (µs)', durableUsPerInput.toFixed(2)],
  ['durable share of module CPU per input (target < 20 %)', `${(share * 100).toFixed(1)} %`],
  ['durable ingest / decode (ratio, same run)', `x${(costs.ingestUs / costs.decodeUs).toFixed(2)}`],
  ['throughput without durability, upper bound (ratio)', `x${(1 / (1 - share)).toFixed(3)}`],
  ['redelivery tail checkpoint, full (65,535 inputs): packed / JSON pairs (µs per checkpoint)', `${tail.packedUs.toFixed(0)} / ${tail.pairsUs.toFixed(0)}`],
  ['redelivery tail checkpoint, full: packed / JSON pairs (kB per checkpoint)', `${(tail.packedBytes / 1000).toFixed(0)} / ${(tail.pairsBytes / 1000).toFixed(0)}`],
];
console.log(`\n## durability cost, ${N} inputs, ${e2e.summaries} summaries, ${e2e.alerts} alerts, ${(e2e.wallMs / 1000).toFixed(1)} s`);
for (const [k, v] of rows) console.log(`${k.padEnd(84)} ${v.padStart(10)}`);
const file = join(ROOT, 'bench/results/durability.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify({ node: process.version, date: new Date().toISOString(), inputs: N, endToEnd: e2e, perInput: costs, rowsPerAppend, rowsPerRemove, commitsPerInput, outboxUs, outputsPerInput, durableUsPerInput, share, tail }, null, 2)}\n`);
console.log(`\nwrote ${file}`);
