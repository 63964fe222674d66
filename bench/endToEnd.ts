/**
 * Sections 3 and 4 of `npm run bench`: the built module (`node dist/main.js`, IoT Edge mode) against
 * the edgeHub emulator over MQTT/TLS, the emulator in this process and the module in its own.
 *
 * - Throughput: inputs published as fast as the module acknowledges them (at most 1,000 un-PUBACKed),
 *   timed from the first publish to the last summary received upstream; baseline: bench/bareModule.ts,
 *   the same SDK receiving and counting only, in the same run.
 * - Latency: inputs offered at 1k, 5k and 10k/s; every 20th input crosses a threshold rule's bound and
 *   the 10th after it (same device; E2E_CLEAR_AFTER) clears it. Not the very next one: eddy keeps one
 *   message per rule and group in flight (docs/contract.md section 8 ordering), so a clear published 0.1 ms
 *   after its raise measured the raise's PUBACK round trip too, a pairing no hysteresis produces; marked
 *   devices get no other input in between. Latency is publish → alert received upstream, both stamped
 *   in this process (hdr-histogram-js). Baseline: the bare module echoing the same marked inputs back
 *   through `sendOutputEvent` (the SDK's own round trip). eddy sets TCP_NODELAY on its own socket
 *   (src/io/edgehub); the bare module gets it from bench/noDelayPreload.mjs. Two emulator set-ups:
 *   default sockets, and TCP_NODELAY on the emulator's sockets too.
 *
 *   The throughput section also runs the bare module sending one summary-shaped output through
 *   `sendOutputEvent` for as many of its inputs as eddy sends summaries (BARE_SEND in
 *   bench/bareModule.ts): the SDK's own floor for this workload, against the same receive-only
 *   baseline. It leaves the target row's baseline alone.
 *
 *   node --import tsx bench/endToEnd.ts [--quick] [--latency-only | --throughput-only] [--rules=100 | --rules=mix100]   (needs `npm run build`)
 *
 * `--rules=<n>` (throughput only): eddy runs the n generated rules of the engine bench
 * (`generatedRules` in bench/workload.ts) instead of the default rules; `--rules=mix<n>`: the rule mix
 * of the issue-19 targets in docs/performance.md (`mixRules` in bench/workload.ts: for mix100, 38
 * tumbling rules of 10 s, 30 s, 1 min and 5 min, 38 hopping of 1 min every 30 s or 20 s, 10 threshold,
 * 10 zscore, 2 sliding, 2 session). Both against the receive-only bare module in the same run; the
 * sending floor sends as many outputs as the tumbling and hopping rules' closed windows (the row's
 * note gives them per input: each device's event time moves 5 s per input, so a 10-second window
 * closes every 2 inputs of a device; the session rules' few summaries are not in it). No alert fires
 * and the sliding rules' `having` never holds on these inputs. Correctness check of every pass, from the window semantics in
 * docs/contract.md section 5 (epoch-aligned bounds, per-group watermark = latest event time −
 * maxLateness, a window is emitted once the watermark reaches its end), not from the engine: for every
 * tumbling and hopping rule, the number of windows received and the sum of their `count` fields must
 * equal what the inputs this bench published put in the closed windows (their where/having hold on
 * every input of this workload). Windows still open at the pass's end that arrive anyway (the idle
 * flush's provisional emissions, docs/rules.md `idleTimeout`) are counted apart. A mismatch is
 * printed, marks the row failed and exits with code 1.
 *
 * Tools for profiling the module under this load (not part of `npm run bench`):
 *   --profile <dir>|none|perf [--bare [--send]]   four throughput passes only (E2E_PROFILE_PASSES), printing the module's CPU per input
 *                                        (--bare --send: the bare module sending as many outputs as eddy;
 *                                        BARE_QUIET=1: the bare module with eddy's quiet SDK loggers)
 *                                        (from /proc); <dir>: `--cpu-prof` into dir (bench/cpuProfileTop.ts);
 *                                        perf: `--perf-basic-prof`, for `perf record -p <pid>`
 *   EDDY_BENCH_MAIN=<old>/dist/main.js   run another build (before/after figures)
 *   E2E_RATES=5000,10000  E2E_DEBUG=1    latency rates; per-run counts on stderr
 *   E2E_CPU_PROF_DIR=<dir>               `--cpu-prof` for the eddy modules of any run
 *   E2E_EDDY_NODE_ARGS="<flags>"         extra node flags for the eddy modules only (V8 heap sizes: GC experiments)
 *   E2E_BARE_NODE_ARGS="<flags>"         the same for the bare modules (e.g. --import ./bench/allocPreload.mjs on both)
 *   E2E_NODELAY_ONLY=1                   latency with TCP_NODELAY on the emulator only (the target's set-up)
 *   E2E_CLEAR_AFTER=1..19                inputs between a raise and its clear (default 10; 1 = a clear right after its raise)
 *   E2E_LAT_WARM_MS=3000                 latency: load before the measured 3 s, both modules (default 1000)
 *   E2E_MODULE_STDOUT=1                  the modules' stdout to this process's (e.g. with E2E_EDDY_NODE_ARGS=--trace-gc-nvp)
 *   E2E_TRACE=1                          latency: eddy runs with EDDY_LATENCY_TRACE (src/metrics/latencyTrace.ts); after each run,
 *                                        where the time of all alerts and of the slowest 2 % went, stage by stage, and the
 *                                        garbage collections inside them
 *
 *   --ab <other>/dist/main.js            this build and another alternated in the same run (same `--rules`): E2E_THROUGHPUT_REPS
 *                                        passes each after one warm-up; per-pass throughput and module CPU per input ratios
 *   --sdk-patch quietDebug|guard|noDelay   one patch of SDK internals (docs/sdk-patches.md) measured in the
 *                                        same run: two eddy modules, one with the patch switched off by
 *                                        bench/sdkPatchesOffPreload.mjs; E2E_THROUGHPUT_REPS passes each after one
 *                                        warm-up, alternating which goes first; throughput and module CPU per input
 *                                        (noDelay: input → alert p99 at 5k/s, TCP_NODELAY on the emulator;
 *                                        E2E_PATCH_EMU_DEFAULT=1: the emulator's default sockets)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { startEdgeHubEmulator, type InputAck, type UpstreamMessage } from '../test/helpers/edgeHubEmulator.js';
import { parseDuration } from '../src/contracts/duration.js';
import type { RuleSet } from '../src/contracts/rule.js';
import { BENCH_DIR, ROOT_DIR, median, report, row, sleep, type Row } from './harness.js';
import { defaultRules, generatedRules, makeInputs, mixRules, T0 } from './workload.js';

const quick = process.argv.includes('--quick');
/**
 * `--rules=<n>`: the throughput section runs eddy with the engine bench's n generated rules;
 * `--rules=mix<n>` (e.g. mix100): with the issue's rule mix of the engine benches (`mixRules` in
 * bench/workload.ts). Neither: the default rules.
 */
const rulesArg = process.argv.find((a) => a.startsWith('--rules='))?.slice('--rules='.length);
const MIX = rulesArg?.startsWith('mix') === true;
const RULE_COUNT = rulesArg === undefined ? 0 : Number(MIX ? rulesArg.slice('mix'.length) : rulesArg);
if (rulesArg !== undefined && (!Number.isInteger(RULE_COUNT) || RULE_COUNT < 1)) throw new Error(`--rules=${rulesArg}: expected a positive whole number of generated rules, or mix<n>`);
const THROUGHPUT_RULES: RuleSet = RULE_COUNT === 0 ? defaultRules() : MIX ? mixRules(RULE_COUNT) : generatedRules(RULE_COUNT);
// `--profile <dir>`: only the eddy throughput pass, the module under `node --cpu-prof` (summarise with bench/cpuProfileTop.ts).
const profileArg = process.argv.indexOf('--profile');
const profileDir = profileArg >= 0 ? process.argv[profileArg + 1] : undefined;
const N = quick ? 5_000 : 30_000;
const DEVICES = 100;
const STEP_MS = 5_000;
const WINDOW = 1_000;
/**
 * Seconds of load before a latency run is measured (E2E_LAT_WARM_MS, default 1,000 ms), the same for
 * both modules. The bare echo is measured first, within seconds of its start; eddy idles meanwhile, and
 * V8's memory reducer shrinks its young generation before its run, which then scavenges more often
 * until it grows back (docs/performance.md, "Input → alert latency"). A longer warm-up measures both
 * after that transient.
 */
const LAT_WARM_MS = Math.max(0, Number(process.env.E2E_LAT_WARM_MS ?? 1_000) || 0);
const LAT_MS = quick ? 1_500 : 3_000;
const MARK_EVERY = 20;
/** Throughput passes of `--profile` (E2E_PROFILE_PASSES, default 4): the first warms the module up; more passes, steadier medians on a noisy machine. */
/** Counted throughput passes per module in the full run (E2E_THROUGHPUT_REPS, default 4), after one warm-up pass each. */
const THROUGHPUT_REPS = Math.max(1, Number(process.env.E2E_THROUGHPUT_REPS ?? 4) || 4);
const PROFILE_PASSES = Math.max(1, Number(process.env.E2E_PROFILE_PASSES ?? 4) || 4);
/** Inputs between a raise and its clear (same device); 1 = the next input, as before. */
const CLEAR_AFTER = Number(process.env.E2E_CLEAR_AFTER ?? 10);

if (!existsSync(join(ROOT_DIR, 'dist', 'main.js'))) throw new Error('dist/main.js missing: run `npm run build` first');
const emu = await startEdgeHubEmulator();
let serverNoDelay = false;
// The emulator's TLS server hands aedes its sockets; TCP_NODELAY must be set on the raw TCP socket as it is accepted.
(emu as unknown as { tls: Server }).tls.on('connection', (s: Socket) => {
  if (serverNoDelay) s.setNoDelay(true);
});
const scratch = mkdtempSync(join(tmpdir(), 'eddy-bench-e2e-'));
const rows: Row[] = [];

interface Started {
  child: ChildProcess;
  moduleId: string;
}

let moduleSeq = 0;
async function startModule(kind: 'eddy' | 'bare', opts: { rulesFile?: string; noDelay?: boolean; echo?: boolean; send?: boolean; sdkOff?: string; main?: string } = {}): Promise<Started> {
  const moduleId = `${kind}${++moduleSeq}`;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('IOTEDGE_') && k !== 'EdgeHubConnectionString') env[k] = v;
  Object.assign(env, emu.moduleEnv(moduleId), { EDDY_DATA_DIR: mkdtempSync(join(scratch, `${moduleId}-`)), EDDY_METRICS_PORT: '0', EDDY_LOG_LEVEL: 'warn' });
  if (opts.rulesFile) env.EDDY_RULES_FILE = opts.rulesFile;
  if (process.env.E2E_TRACE && kind === 'eddy') env.EDDY_LATENCY_TRACE = join(scratch, `${moduleId}-trace.json`);
  if (opts.echo) env.BARE_ECHO = '1';
  // As many outputs per pass as eddy's summaries for the same inputs (bench/bareModule.ts).
  if (opts.send) env.BARE_SEND = `${expectedSummaries()}/${N}`;
  const pre = opts.noDelay ? ['--import', join(BENCH_DIR, 'noDelayPreload.mjs')] : [];
  // `--sdk-patch`: both eddy modules load bench/sdkPatchesOffPreload.mjs; one of them with the patch off.
  if (opts.sdkOff !== undefined) {
    env.SDK_PATCHES_OFF = opts.sdkOff;
    pre.push('--import', join(BENCH_DIR, 'sdkPatchesOffPreload.mjs'));
  }
  if (process.env.E2E_CPU_PROF_DIR && kind === 'eddy') pre.push('--cpu-prof', '--cpu-prof-dir', process.env.E2E_CPU_PROF_DIR);
  if (process.env.E2E_EDDY_NODE_ARGS && kind === 'eddy') pre.push(...process.env.E2E_EDDY_NODE_ARGS.split(' ').filter(Boolean));
  if (process.env.E2E_BARE_NODE_ARGS && kind === 'bare') pre.push(...process.env.E2E_BARE_NODE_ARGS.split(' ').filter(Boolean));
  if (profileDir === 'perf') pre.push('--perf-basic-prof');
  else if (profileDir && profileDir !== 'none') pre.push('--cpu-prof', '--cpu-prof-dir', profileDir);
  // EDDY_BENCH_MAIN: another build of eddy (e.g. an older commit's dist/main.js) for before/after figures.
  const args = kind === 'eddy' ? [...pre, opts.main ?? process.env.EDDY_BENCH_MAIN ?? join(ROOT_DIR, 'dist', 'main.js')] : [...pre, '--import', 'tsx', join(BENCH_DIR, 'bareModule.ts')];
  const child = spawn(process.execPath, args, { cwd: ROOT_DIR, env, stdio: ['ignore', process.env.E2E_MODULE_STDOUT ? 'inherit' : 'ignore', 'inherit'] });
  // Ready once its input subscription is in the broker's session, plus time for the twin read and rules.
  const subs = (emu as unknown as { subscriptions: Map<string, Set<string>> }).subscriptions;
  const deadline = Date.now() + 30_000;
  while (![...(subs.get(`${emu.deviceId}/${moduleId}`) ?? [])].some((t) => t.includes('/inputs/'))) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${moduleId} did not subscribe to its inputs`);
    await sleep(50);
  }
  await sleep(1_500);
  return { child, moduleId };
}

/** user + system CPU of a child process in ms, from /proc (Linux only; NaN elsewhere). */
function childCpuMs(child: ChildProcess): number {
  try {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    if (process.env.E2E_CPU_SPLIT) process.stderr.write(`utime ${f[11]} stime ${f[12]}\n`);
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** Peak and current resident set size of a child process, from /proc (Linux only). */
function childMemory(child: ChildProcess): string {
  try {
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return `RSS peak ${(kb('VmHWM') / 1024).toFixed(1)} MB, now ${(kb('VmRSS') / 1024).toFixed(1)} MB`;
  } catch {
    return 'unknown';
  }
}

async function stopModule(m: Started): Promise<void> {
  if (m.child.exitCode !== null) return;
  const exited = new Promise((r) => m.child.once('exit', r));
  m.child.kill('SIGTERM');
  await Promise.race([exited, sleep(10_000)]);
  if (m.child.exitCode === null) m.child.kill('SIGKILL');
}

/** Closed windows and the inputs they hold, per rule, for one pass's inputs. */
interface WindowTally {
  windows: number;
  count: number;
}

/** A rule's expected closed windows, and each device's watermark at the end of a pass (relative to the pass's hour). */
interface ExpectedRule extends WindowTally {
  readonly wm: readonly number[];
}

/**
 * What every tumbling and hopping rule of `rules` emits for one throughput pass, from the window
 * semantics of docs/contract.md section 5 (not from the engine): the input of round r of a device
 * is stamped T0 + r × STEP_MS (plus the pass's hour, which moves whole windows); windows are
 * `[k × hop, k × hop + size)` (tumbling: hop = size); a device's watermark is its last event time
 * minus the rule's maxLateness (default 5 s), and a window is emitted once the watermark reaches its
 * end. Assumes every input passes the rule's where and having, true of this workload and of these
 * rule sets (bench/workload.ts: every where and having holds over the ranges `sensorBody` draws from).
 * Other rules (session, anomaly) are not in the map.
 */
function expectedWindows(rules: RuleSet): Map<string, ExpectedRule> {
  const rounds = Math.ceil(N / DEVICES);
  const out = new Map<string, ExpectedRule>();
  for (const [id, r] of Object.entries(rules)) {
    if (r.kind !== 'aggregate' || (r.window.type !== 'tumbling' && r.window.type !== 'hopping') || r.output !== 'summaries') continue;
    if (r.window.bounds !== undefined || r.window.offset !== undefined) throw new Error(`${id}: expectedWindows does not model bounds or offset`);
    const size = parseDuration(r.window.size)!;
    const hop = r.window.type === 'hopping' ? parseDuration(r.window.hop)! : size;
    const lateness = r.maxLateness === undefined ? 5_000 : parseDuration(r.maxLateness)!;
    const t = { windows: 0, count: 0, wm: [] as number[] };
    for (let d = 0; d < DEVICES; d++) {
      const last = d < N - (rounds - 1) * DEVICES ? rounds - 1 : rounds - 2;
      const wm = T0 + last * STEP_MS - lateness;
      t.wm.push(wm);
      const held = new Map<number, number>();
      for (let k = 0; k <= last; k++) {
        const ts = T0 + k * STEP_MS;
        for (let s = ts - (ts % hop); s > ts - size; s -= hop) held.set(s, (held.get(s) ?? 0) + 1);
      }
      for (const [s, n] of held) {
        if (s + size > wm) continue;
        t.windows++;
        t.count += n;
      }
    }
    out.set(id, t);
  }
  return out;
}

const EXPECTED = expectedWindows(THROUGHPUT_RULES);

/** Summaries eddy emits per pass for the rules in {@link EXPECTED} (tumbling and hopping). */
function expectedSummaries(): number {
  let n = 0;
  for (const t of EXPECTED.values()) n += t.windows;
  return n;
}

/**
 * What a throughput pass waits for besides the PUBACKs of its inputs: nothing (the receive-only bare
 * module), eddy's summaries of this pass, or the bare sending module's summary-shaped outputs.
 */
type Outputs = 'none' | 'eddy' | 'bare';

/** Publishes N inputs with at most WINDOW un-acknowledged; resolves with inputs/s up to the last ack, or the last output when it waits for outputs. */
async function throughput(m: Started, outputs: Outputs, rep: number): Promise<{ rate: number; got: number; expected: number; earlier: number; dups: number; other: number; provisional: number; mismatches: string[] }> {
  const summaries = outputs !== 'none';
  // A slow sine: no default anomaly rule fires, so the outputs are the summaries only.
  // Each repetition starts an hour later in event time (whole windows), so it is never too late for the module's open windows.
  const inputs = makeInputs(N, DEVICES, STEP_MS, 11, (round, dev) => 50 + 20 * Math.sin(round / 50 + dev), T0 + rep * 3_600_000);
  const expected = summaries ? expectedSummaries() : 0;
  let sent = 0;
  let acked = 0;
  let got = 0;
  let earlier = 0;
  let dups = 0;
  /** eddy's summaries of rules not in EXPECTED (session rules): received, not waited for. */
  let other = 0;
  const tally = new Map<string, WindowTally>([...EXPECTED.keys()].map((k) => [k, { windows: 0, count: 0 }]));
  /**
   * Windows the watermark has not closed by the pass's end, emitted anyway: a group quiet for the
   * rule's idleTimeout (default: the window size, docs/rules.md) has its open windows emitted
   * provisionally. A pass whose outbox drains for longer than that sees its last windows this way.
   */
  let provisional = 0;
  const ids = new Set<string>();
  let lastAck = 0;
  let lastSummary = 0;
  let lastActivity = performance.now();
  const pump = (): void => {
    while (sent < N && sent - acked < WINDOW) {
      const inp = inputs[sent++]!;
      void emu.sendInput(m.moduleId, 'telemetry', inp.body, { deviceId: inp.deviceId, moduleId: 'SimulatedTemperatureSensor' });
    }
  };
  // Refill from a fresh macrotask: publishing inside aedes' ack callback recurses through mqemitter
  // until the stack overflows (seen at 60k inputs).
  let refill = false;
  const onAck = (a: InputAck): void => {
    if (a.moduleId !== m.moduleId) return;
    acked++;
    lastAck = lastActivity = performance.now();
    if (refill) return;
    refill = true;
    setImmediate(() => {
      refill = false;
      pump();
    });
  };
  // Only this pass's windows count: the previous pass's last open windows close when this pass's
  // first inputs (an hour later in event time) move the watermark, and arrive during this pass.
  const passStart = T0 + rep * 3_600_000;
  const onUp = (u: UpstreamMessage): void => {
    if (u.moduleId !== m.moduleId || u.output !== 'summaries') return;
    // The bare module's outputs all belong to the pass that sent them (it sends as it receives).
    // A window ending by this pass's start holds none of its inputs (hopping windows starting before it may).
    const b = outputs === 'bare' ? undefined : (JSON.parse(u.body.toString('utf8')) as { rule: string; count: number; group: Record<string, string>; window: { end: string } });
    if (b !== undefined && Date.parse(b.window.end) <= passStart) {
      earlier++;
      return;
    }
    // A message id seen twice is an at-least-once resend (same window, same id), not a new summary.
    if (u.messageId !== undefined && ids.has(u.messageId)) {
      dups++;
      return;
    }
    if (u.messageId !== undefined) ids.add(u.messageId);
    lastSummary = lastActivity = performance.now();
    const t = b === undefined ? undefined : tally.get(b.rule);
    if (b !== undefined && t === undefined) {
      other++;
      return;
    }
    if (b !== undefined) {
      // makeInputs names device d `sensor-<d>`.
      const d = Number(/^sensor-(\d+)$/.exec(Object.values(b.group)[0] ?? '')?.[1] ?? NaN);
      const wm = EXPECTED.get(b.rule)!.wm[d];
      if (wm === undefined) throw new Error(`summary of an unknown group: ${JSON.stringify(b.group)}`);
      if (Date.parse(b.window.end) - (passStart - T0) > wm) {
        provisional++;
        return;
      }
    }
    got++;
    if (t !== undefined) {
      t.windows++;
      t.count += b!.count;
    }
  };
  emu.on('inputAck', onAck);
  emu.on('upstream', onUp);
  const t0 = performance.now();
  pump();
  while (!(acked >= N && got >= expected) && performance.now() - lastActivity < 5_000) await sleep(20);
  emu.off('inputAck', onAck);
  emu.off('upstream', onUp);
  emu.inputAcks.length = 0;
  emu.upstream.length = 0;
  const end = summaries ? Math.max(lastAck, lastSummary) : lastAck;
  // Every tumbling and hopping rule saw every input this pass published, each in the right windows, once.
  const mismatches: string[] = [];
  if (outputs === 'eddy') {
    if (acked !== N) mismatches.push(`${acked}/${N} inputs acknowledged`);
    for (const [id, want] of EXPECTED) {
      const have = tally.get(id)!;
      if (have.windows !== want.windows || have.count !== want.count) mismatches.push(`${id}: ${have.windows}/${want.windows} windows, count sum ${have.count}/${want.count}`);
    }
  }
  if (profileDir) process.stderr.write(`last ack at ${Math.round(lastAck - t0)} ms, last summary at ${Math.round(lastSummary - t0)} ms\n`);
  return { rate: (acked / (end - t0)) * 1000, got, expected, earlier, dups, other, provisional, mismatches };
}

interface Percentiles {
  p50: number;
  p99: number;
  p999: number;
  n: number;
  /** Marked inputs whose alert (or echo) had not come back 15 s after the last publish, of `marked`. */
  missing: number;
  marked: number;
  /** Inputs published per second over the run (the generator's own pace: below the rate asked, the machine could not keep up). */
  offered: number;
  /** Every measured alert: the value naming its input, published and received at (monotonic µs, for E2E_TRACE). */
  samples: Array<{ value: number; pub: number; recv: number }>;
}

/** performance.now() moved onto process.hrtime's clock (CLOCK_MONOTONIC, the same in every process): the clock of src/metrics/latencyTrace.ts. */
const HR_OFFSET_MS = Number(process.hrtime.bigint()) / 1e6 - performance.now();

/** The stages of src/metrics/latencyTrace.ts, in order, each named by the step that ends it. */
const TRACE_STAGES = ['→ module socket', '→ SDK handler', 'input journal', 'decode', 'rules', 'outbox commit', '→ forwarder send', 'SDK encode', 'socket write'] as const;

/**
 * E2E_TRACE: joins the module's per-stage stamps (EDDY_LATENCY_TRACE) with this process's publish
 * and receive times, and prints where the time went: median per stage over all measured alerts, and
 * the mean per stage over the slowest 2 % (with the garbage collections that overlapped them).
 */
function traceBreakdown(file: string, samples: Percentiles['samples']): void {
  if (!existsSync(file)) {
    process.stdout.write(`trace: ${file} not written\n`);
    return;
  }
  // E2E_TRACE=<dir> (not 1): the module's trace and this process's stamps are kept there, to join with a `--cpu-prof` of the module.
  if (process.env.E2E_TRACE !== '1') writeFileSync(join(process.env.E2E_TRACE!, `${Date.now()}-trace.json`), JSON.stringify({ module: JSON.parse(readFileSync(file, 'utf8')), samples }));
  const tr = JSON.parse(readFileSync(file, 'utf8')) as { inputs: number; gc: Array<[number, number, number]>; alerts: Array<{ id: string; value: number; t: number[] }> };
  const byValue = new Map(tr.alerts.map((a) => [a.value, a.t]));
  const rows: Array<{ total: number; parts: number[]; gc: number }> = [];
  for (const s of samples) {
    const t = byValue.get(s.value);
    if (t === undefined || t.some((x) => x === 0)) continue;
    const points = [s.pub, ...t, s.recv];
    const parts = points.slice(1).map((x, i) => x - points[i]!);
    let gc = 0;
    for (const [at, dur] of tr.gc) gc += Math.max(0, Math.min(s.recv, at + dur) - Math.max(s.pub, at));
    rows.push({ total: s.recv - s.pub, parts, gc });
  }
  if (rows.length === 0) {
    process.stdout.write('trace: no alert joined\n');
    return;
  }
  rows.sort((a, b) => a.total - b.total);
  const names = [...TRACE_STAGES, '→ bench (emulator)'];
  const ms = (x: number): string => (x / 1000).toFixed(3);
  const tail = rows.slice(Math.floor(rows.length * 0.98));
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const tailTotal = mean(tail.map((r) => r.total));
  let out = `trace: ${rows.length} alerts joined of ${samples.length}; module inputs ${tr.inputs}, garbage collections ${tr.gc.length} (${ms(tr.gc.reduce((a, g) => a + g[1], 0))} ms)\n`;
  out += `trace: stage, median of all (ms), mean of the slowest ${tail.length} (ms), share of their total\n`;
  names.forEach((n, i) => {
    const tm = mean(tail.map((r) => r.parts[i]!));
    out += `trace:   ${n.padEnd(20)} ${ms(median(rows.map((r) => r.parts[i]!))).padStart(8)} ${ms(tm).padStart(8)} ${((100 * tm) / tailTotal).toFixed(0).padStart(4)} %\n`;
  });
  out += `trace:   ${'total'.padEnd(20)} ${ms(median(rows.map((r) => r.total))).padStart(8)} ${ms(tailTotal).padStart(8)}; garbage collection inside them: mean ${ms(mean(tail.map((r) => r.gc)))} ms, in ${tail.filter((r) => r.gc > 0).length} of ${tail.length}\n`;
  for (const r of tail) out += `trace:   slow ${ms(r.total)} ms: ${r.parts.map(ms).join(' ')} gc ${ms(r.gc)}\n`;
  process.stdout.write(out);
}

/** Offers `rate` inputs/s for LAT_WARM_MS + LAT_MS; every MARK_EVERY-th input is marked, the next clears it. */
async function latency(m: Started, rate: number, echo: boolean): Promise<Percentiles> {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const sentAt = new Map<number, number>();
  let measureFrom = Infinity;
  let upstream = 0;
  let alerts = 0;
  let firstAlertAt = 0;
  let lastAlertAt = 0;
  const samples: Percentiles['samples'] = [];
  const onUp = (u: UpstreamMessage): void => {
    if (u.moduleId !== m.moduleId) return;
    upstream++;
    if (u.output !== 'alerts') return;
    const now = performance.now();
    alerts++;
    firstAlertAt ||= now;
    lastAlertAt = now;
    let v: number;
    try {
      const b = JSON.parse(u.body.toString('utf8')) as { value?: number; machine?: { temperature: number } };
      v = echo ? b.machine!.temperature : b.value!;
    } catch {
      return;
    }
    const seq = v >= 1000 ? v - 1000 : -v;
    const at = sentAt.get(seq);
    if (at === undefined) return;
    sentAt.delete(seq);
    if (at < measureFrom) return;
    h.recordValue(Math.max(1, Math.round((now - at) * 1000)));
    samples.push({ value: v, pub: (at + HR_OFFSET_MS) * 1000, recv: (now + HR_OFFSET_MS) * 1000 });
  };
  emu.on('upstream', onUp);
  let sent = 0;
  const cpu0 = childCpuMs(m.child);
  const start = performance.now();
  measureFrom = start + LAT_WARM_MS;
  const stopAt = measureFrom + LAT_MS;
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const now = performance.now();
      if (now >= stopAt) {
        clearInterval(tick);
        resolve();
        return;
      }
      const due = Math.floor(((now - start) * rate) / 1000);
      while (sent < due) {
        const seq = sent++;
        const phase = seq % MARK_EVERY;
        const marked = phase === 0 || phase === CLEAR_AFTER;
        // Marked devices are not the unmarked ones: an ordinary reading in between would clear the alert.
        const device = marked ? `marked-${Math.floor(seq / MARK_EVERY) % DEVICES}` : `sensor-${seq % DEVICES}`;
        const temp = phase === 0 ? 1000 + seq : marked ? -seq : 20 + (seq % 50);
        const body = `{"machine":{"temperature":${temp},"pressure":1.5},"ambient":{"temperature":21,"humidity":25},"timeCreated":"${new Date().toISOString()}"}`;
        const props: Record<string, string> = {};
        if (marked) {
          // The alert's value names its input: 1000 + seq raised it, -seq cleared it.
          sentAt.set(seq, performance.now());
          if (echo) props.echo = '1';
        }
        void emu.sendInput(m.moduleId, 'telemetry', body, { deviceId: device, moduleId: 'SimulatedTemperatureSensor', props });
      }
    }, 1);
  });
  // Alerts still queued in the module arrive late, not never: wait until every marked input has
  // answered, at most 15 s. Stopping at the first quiet second instead would record no alert at all
  // for a module more than ~2 s behind at 10k/s.
  const marked = sentAt.size;
  for (let waited = 0; waited < 15_000 && sentAt.size > 0; waited += 50) await sleep(50);
  const missing = sentAt.size;
  emu.off('upstream', onUp);
  if (process.env.E2E_DEBUG) {
    process.stderr.write(`${m.moduleId} @ ${rate}/s: module CPU ${Math.round(childCpuMs(m.child) - cpu0)} ms in ${Math.round(performance.now() - start)} ms; sent ${sent}, upstream ${upstream}, alerts ${alerts} (first ${Math.round(firstAlertAt - start)} ms, last ${Math.round(lastAlertAt - start)} ms after start), measured ${h.totalCount}\n`);
  }
  emu.inputAcks.length = 0;
  emu.upstream.length = 0;
  const us = (p: number): number => (h.totalCount === 0 ? NaN : h.getValueAtPercentile(p) / 1000);
  const res = { p50: us(50), p99: us(99), p999: us(99.9), n: h.totalCount, missing, marked, offered: (sent / (stopAt - start)) * 1000, samples };
  h.destroy();
  return res;
}

if (profileDir) {
  const kind = process.argv.includes('--bare') ? 'bare' : 'eddy';
  const send = kind === 'bare' && process.argv.includes('--send');
  const rulesFile = kind === 'eddy' ? throughputRulesFile() : undefined;
  const eddy = await startModule(kind, rulesFile === undefined ? { send } : { send, rulesFile });
  process.stderr.write(`module pid ${eddy.child.pid}\n`);
  if (profileDir === 'perf') await sleep(3_000);
  for (let r = 0; r < PROFILE_PASSES; r++) {
    const c0 = childCpuMs(eddy.child);
    const e = await throughput(eddy, kind === 'eddy' ? 'eddy' : send ? 'bare' : 'none', r);
    const cpu = childCpuMs(eddy.child) - c0;
    process.stderr.write(`profiled ${kind}${send ? ' (sending)' : ''}: ${Math.round(e.rate)} inputs/s, ${e.got}/${e.expected} summaries, module CPU ${((cpu * 1000) / N).toFixed(1)} µs/input\n`);
  }
  process.stderr.write(`module memory: ${childMemory(eddy.child)}\n`);
  await stopModule(eddy);
  await emu.close();
  rmSync(scratch, { recursive: true, force: true });
  process.exit(0);
}

const abArg = process.argv.indexOf('--ab');
if (abArg >= 0) {
  await abSection(process.argv[abArg + 1] ?? '');
  await emu.close();
  rmSync(scratch, { recursive: true, force: true });
  process.exit();
}

/**
 * `--ab <other>/dist/main.js`: this tree's build (or EDDY_BENCH_MAIN) and another, same run, same
 * rules (`--rules`), E2E_THROUGHPUT_REPS passes each after one warm-up, alternating which goes
 * first; throughput and module CPU per input, per-pass ratios (this ÷ other). Every pass of both is
 * checked as in the throughput section.
 */
async function abSection(other: string): Promise<void> {
  if (!existsSync(other)) throw new Error(`--ab ${other}: no such build`);
  const reps = quick ? 1 : THROUGHPUT_REPS;
  const f = (x: number, d = 1): string => x.toFixed(d);
  const rulesFile = throughputRulesFile();
  const a = await startModule('eddy', rulesFile === undefined ? {} : { rulesFile });
  const b = await startModule('eddy', rulesFile === undefined ? { main: other } : { rulesFile, main: other });
  const res = new Map<Started, { rate: number[]; cpu: number[] }>([
    [a, { rate: [], cpu: [] }],
    [b, { rate: [], cpu: [] }],
  ]);
  const mismatches: string[] = [];
  for (let r = 0; r < 1 + reps; r++) {
    for (const m of r % 2 === 0 ? [a, b] : [b, a]) {
      const c0 = childCpuMs(m.child);
      const e = await throughput(m, 'eddy', r);
      const cpu = ((childCpuMs(m.child) - c0) * 1000) / N;
      for (const x of e.mismatches) mismatches.push(`${m === a ? 'this' : 'other'} pass ${r}: ${x}`);
      process.stdout.write(`pass ${r}${r === 0 ? ' (warm-up)' : ''} ${m === a ? 'this ' : 'other'}: ${Math.round(e.rate)} inputs/s, ${f(cpu)} µs CPU/input, ${e.got}/${e.expected} summaries (${uptimeLoad()})\n`);
      if (r > 0) {
        res.get(m)!.rate.push(e.rate);
        res.get(m)!.cpu.push(cpu);
      }
    }
  }
  await stopModule(a);
  await stopModule(b);
  const x = res.get(a)!;
  const y = res.get(b)!;
  const rate = x.rate.map((v, i) => v / y.rate[i]!);
  const cpu = x.cpu.map((v, i) => v / y.cpu[i]!);
  process.stdout.write(
    `this ÷ other, throughput per pass ${rate.map((v) => f(v, 3)).join(', ')}, median ${f(median(rate), 3)}; module CPU per input per pass ${cpu.map((v) => f(v, 3)).join(', ')}, median ${f(median(cpu), 3)}\n` +
      (mismatches.length === 0 ? `every pass's tumbling and hopping windows and count sums as expected (${EXPECTED.size} rules)\n` : `COUNT MISMATCH: ${mismatches.join('; ')}\n`),
  );
  if (mismatches.length > 0) process.exitCode = 1;
}

/** The load averages (Linux /proc/loadavg), for the figures printed next to them. */
function uptimeLoad(): string {
  try {
    return `load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`;
  } catch {
    return 'load unknown';
  }
}

const patchArg = process.argv.indexOf('--sdk-patch');
if (patchArg >= 0) {
  await sdkPatchSection(process.argv[patchArg + 1] ?? '');
  await emu.close();
  rmSync(scratch, { recursive: true, force: true });
  process.exit(0);
}

/** `--sdk-patch <name>`: the module with and without one SDK patch, same run, per-pass ratios (off ÷ on). */
async function sdkPatchSection(name: string): Promise<void> {
  const reps = quick ? 1 : THROUGHPUT_REPS;
  const f = (x: number, d = 1): string => x.toFixed(d);
  if (name === 'noDelay') {
    serverNoDelay = !process.env.E2E_PATCH_EMU_DEFAULT;
    const rules = defaultRules();
    const rulesFile = join(scratch, 'latency-rules.json');
    writeFileSync(rulesFile, JSON.stringify({ machine1m: rules.machine1m, ambient1m: rules.ambient1m, inputToAlert: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], value: 'machine.temperature', detector: { type: 'threshold', above: 100, hysteresis: 2 }, cooldown: '0s', output: 'alerts' } }));
    const on = await startModule('eddy', { rulesFile, sdkOff: '' });
    const off = await startModule('eddy', { rulesFile, sdkOff: name });
    const p99On: number[] = [];
    const p99Off: number[] = [];
    for (let r = 0; r < 1 + reps; r++) {
      const pair = r % 2 === 0 ? [on, off] : [off, on];
      for (const m of pair) {
        const l = await latency(m, 5_000, false);
        if (r > 0) (m === on ? p99On : p99Off).push(l.p99);
        process.stdout.write(`pass ${r}${r === 0 ? ' (warm-up)' : ''} ${m === on ? 'patch on ' : 'patch off'}: p99 ${f(l.p99, 2)} ms, p50 ${f(l.p50, 2)} ms (${l.n} alerts, ${l.missing} missing)\n`);
      }
    }
    await stopModule(on);
    await stopModule(off);
    const ratios = p99Off.map((x, i) => x / p99On[i]!);
    process.stdout.write(`${name}: input → alert p99 at 5k/s, patch on ${p99On.map((x) => f(x, 2)).join(', ')} ms; off ${p99Off.map((x) => f(x, 2)).join(', ')} ms; off ÷ on per pass ${ratios.map((x) => f(x, 2)).join(', ')}, median ${f(median(ratios), 2)}\n`);
    return;
  }
  const on = await startModule('eddy', { sdkOff: '' });
  const off = await startModule('eddy', { sdkOff: name });
  const res = new Map<Started, { rate: number[]; cpu: number[] }>([
    [on, { rate: [], cpu: [] }],
    [off, { rate: [], cpu: [] }],
  ]);
  for (let r = 0; r < 1 + reps; r++) {
    const pair = r % 2 === 0 ? [on, off] : [off, on];
    for (const m of pair) {
      const c0 = childCpuMs(m.child);
      const e = await throughput(m, 'eddy', r);
      const cpu = ((childCpuMs(m.child) - c0) * 1000) / N;
      process.stdout.write(`pass ${r}${r === 0 ? ' (warm-up)' : ''} ${m === on ? 'patch on ' : 'patch off'}: ${Math.round(e.rate)} inputs/s, ${f(cpu)} µs CPU/input, ${e.got}/${e.expected} summaries\n`);
      if (r > 0) {
        res.get(m)!.rate.push(e.rate);
        res.get(m)!.cpu.push(cpu);
      }
    }
  }
  await stopModule(on);
  await stopModule(off);
  const a = res.get(on)!;
  const b = res.get(off)!;
  const cpuRatio = b.cpu.map((x, i) => x / a.cpu[i]!);
  const rateRatio = a.rate.map((x, i) => x / b.rate[i]!);
  process.stdout.write(
    `${name}: module CPU per input on ${a.cpu.map((x) => f(x)).join(', ')} µs, off ${b.cpu.map((x) => f(x)).join(', ')} µs; off ÷ on per pass ${cpuRatio.map((x) => f(x, 3)).join(', ')}, median ${f(median(cpuRatio), 3)}\n` +
      `${name}: throughput on ÷ off per pass ${rateRatio.map((x) => f(x, 3)).join(', ')}, median ${f(median(rateRatio), 3)}\n`,
  );
}

const latencyOnly = process.argv.includes('--latency-only');
try {
  if (!latencyOnly) await throughputSection();
  if (!process.argv.includes('--throughput-only')) await latencySection();
} finally {
  await emu.close();
  rmSync(scratch, { recursive: true, force: true });
}
report(rows);

/** `--rules`: the throughput rule set written where eddy reads it (EDDY_RULES_FILE); undefined for the default rules. */
function throughputRulesFile(): string | undefined {
  if (RULE_COUNT === 0) return undefined;
  const file = join(scratch, 'throughput-rules.json');
  writeFileSync(file, JSON.stringify(THROUGHPUT_RULES));
  return file;
}

function debugPass(module: string, rep: number, rate: number): void {
  if (process.env.E2E_DEBUG) process.stderr.write(`throughput pass ${rep}, ${module}: ${Math.round(rate)} inputs/s\n`);
}

async function throughputSection(): Promise<void> {
  const rulesFile = throughputRulesFile();
  const rulesName = RULE_COUNT === 0 ? 'default rules' : MIX ? `the ${RULE_COUNT}-rule mix (mixRules, bench/workload.ts)` : `${RULE_COUNT} generated rules (bench/workload.ts)`;
  const eddy = await startModule('eddy', rulesFile === undefined ? {} : { rulesFile });
  const bare = await startModule('bare');
  const bareSend = await startModule('bare', { send: true });
  const te: number[] = [];
  const tb: number[] = [];
  const ts: number[] = [];
  let summaryCheck = '';
  let sendCheck = '';
  const mismatches: string[] = [];
  // A first pass per module warms its JIT and is not counted: with two counted passes the cold
  // first one was eddy's slowest by far, so eddy had one warm sample against the bare module's two.
  // Then THROUGHPUT_REPS passes each, the modules in a rotating order so that none is always
  // the one running right after another's pass; each figure is the best of its passes (the run
  // least disturbed by the rest of this shared machine), and the note gives the median of the
  // per-pass ratios as well.
  const reps = quick ? 1 : THROUGHPUT_REPS;
  const warm = quick ? 0 : 1;
  for (let r = 0; r < warm + reps; r++) {
    const counted = r >= warm;
    const order: Array<() => Promise<void>> = [
      async () => {
        const b = await throughput(bare, 'none', r);
        debugPass('bare', r, b.rate);
        if (counted) tb.push(b.rate);
      },
      async () => {
        const e = await throughput(eddy, 'eddy', r);
        debugPass('eddy', r, e.rate);
        // The warm-up pass is checked too: a wrong count is wrong whether or not its rate is kept.
        for (const m of e.mismatches) mismatches.push(`pass ${r}: ${m}`);
        if (!counted) return;
        te.push(e.rate);
        summaryCheck += `${summaryCheck ? ', ' : ''}${e.got}/${e.expected}${e.other ? ` (+${e.other} of other rules)` : ''}${e.provisional ? ` (+${e.provisional} still-open windows emitted provisionally)` : ''}${e.earlier ? ` (+${e.earlier} closing the previous pass's windows)` : ''}${e.dups ? ` (${e.dups} resent with the same id)` : ''}`;
      },
      async () => {
        const s = await throughput(bareSend, 'bare', r);
        debugPass('bare sending', r, s.rate);
        if (!counted) return;
        ts.push(s.rate);
        sendCheck += `${sendCheck ? ', ' : ''}${s.got}/${s.expected}`;
      },
    ];
    for (let k = 0; k < order.length; k++) await order[(k + r) % order.length]!();
  }
  await stopModule(eddy);
  await stopModule(bare);
  await stopModule(bareSend);
  const bestE = Math.max(...te);
  const bestB = Math.max(...tb);
  const passes = (rates: number[]): string => rates.map((x) => Math.round(x).toLocaleString('en-US')).join(', ');
  const perPass = (num: number[]): string => `median of the ${num.length} per-pass ratios ${median(num.map((x, i) => x / tb[i]!)).toFixed(2)}`;
  const check = mismatches.length === 0 ? `every tumbling and hopping rule's windows and count sums as expected (${EXPECTED.size} rules)` : `COUNT MISMATCH: ${mismatches.join('; ')}`;
  if (mismatches.length > 0) {
    process.stderr.write(`endToEnd: ${check}\n`);
    process.exitCode = 1;
  }
  rows.push(row('end to end (TLS, QoS 1)', 'bare SDK module, receive + count', bestB, 'inputs/s', 'bare SDK module', bestB, { note: `best of ${tb.length} passes: ${passes(tb)} inputs/s` }));
  const bestS = Math.max(...ts);
  // The SDK's floor: what any module using it reaches when it sends as many outputs as eddy (not the target's baseline).
  rows.push(row('end to end (TLS, QoS 1)', 'bare SDK module receiving and sending as many outputs as eddy, publish → last output', bestS, 'inputs/s', 'bare SDK module', bestB, { note: `best of ${ts.length} passes: ${passes(ts)} inputs/s; ${perPass(ts)}; outputs received ${sendCheck}` }));
  rows.push(
    row('end to end (TLS, QoS 1)', `eddy, ${rulesName}, publish → last summary`, bestE, 'inputs/s', 'bare SDK module', bestB, {
      target: '≥ 0.8 × bare',
      pass: bestE / bestB >= 0.8 && mismatches.length === 0,
      note: `best of ${te.length} passes: ${passes(te)} inputs/s; ${perPass(te)}; ${(expectedSummaries() / N).toFixed(2)} closed tumbling and hopping windows per input; summaries received ${summaryCheck}; ${check}`,
    }),
  );
  // The same eddy figure against the sending floor: what is eddy's own beyond the SDK's cost of sending as much (no target).
  rows.push(row('end to end (TLS, QoS 1)', `eddy, ${rulesName}, against the SDK sending floor`, bestE, 'inputs/s', 'bare SDK module sending as many outputs', bestS));
}

async function latencySection(): Promise<void> {
  const f = (x: number, d = 1): string => x.toFixed(d);
  const rules = defaultRules();
  const latencyRules = {
    machine1m: rules.machine1m,
    ambient1m: rules.ambient1m,
    inputToAlert: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], value: 'machine.temperature', detector: { type: 'threshold', above: 100, hysteresis: 2 }, cooldown: '0s', output: 'alerts' },
  };
  const rulesFile = join(scratch, 'latency-rules.json');
  writeFileSync(rulesFile, JSON.stringify(latencyRules));
  // eddy sets TCP_NODELAY on its own socket (src/io/edgehub; docs/sdk-patches.md, row `noDelay`); the bare SDK module cannot,
  // so it gets bench/noDelayPreload.mjs to make the baseline the SDK's round trip without Nagle.
  // The emulator side varies: edgeHub's own socket options are not eddy's to choose.
  const variants: Array<[string, boolean]> = [
    ['emulator default sockets', false],
    ['TCP_NODELAY on the emulator too', true],
  ];
  for (const [label, server] of variants) {
    if (process.env.E2E_NODELAY_ONLY && !server) continue;
    serverNoDelay = server;
    const e = await startModule('eddy', { rulesFile });
    const b = await startModule('bare', { noDelay: true, echo: true });
    const eddySamples: Array<Percentiles['samples']> = [];
    for (const rate of process.env.E2E_RATES ? process.env.E2E_RATES.split(',').map(Number) : [1_000, 5_000, 10_000]) {
      const base = await latency(b, rate, true);
      const lat = await latency(e, rate, false);
      eddySamples.push(lat.samples);
      const sec = `latency, ${label}`;
      const r = `${rate / 1000}k/s`;
      // The target (docs/performance.md): eddy's p99 at most the same run's bare echo p99 + 1 ms. Offered is what the
      // generator managed to publish per second: below `rate`, the machine could not hold the load.
      process.stdout.write(
        `latency ${r}, ${label}: eddy p50 ${f(lat.p50, 2)} ms p99 ${f(lat.p99, 2)} ms (offered ${f(lat.offered, 0)}/s, ${lat.n} alerts, ${lat.missing}/${lat.marked} not back); ` +
          `bare echo p50 ${f(base.p50, 2)} ms p99 ${f(base.p99, 2)} ms (offered ${f(base.offered, 0)}/s, ${base.n} echoes, ${base.missing}/${base.marked} not back); ` +
          `eddy p99 − echo p99 = ${f(lat.p99 - base.p99, 2)} ms\n`,
      );
      // An echo p50 above 100 ms means the bare SDK module itself is queueing: the machine did not hold
      // the rate, and comparing two queues' tails says nothing about eddy (no pass either way).
      const held = base.p50 < 100 && lat.offered >= rate * 0.95 && base.offered >= rate * 0.95;
      if (!held) process.stdout.write(`latency ${r}: the machine did not hold ${r} (echo p50 ${f(base.p50, 1)} ms, offered ${f(lat.offered, 0)}/s and ${f(base.offered, 0)}/s): no verdict\n`);
      const t = rate === 5_000 && held ? { target: 'p99 ≤ bare echo p99 + 1 ms at 5k/s', pass: lat.p99 <= base.p99 + 1 } : {};
      rows.push(row(sec, `input → alert p50 @ ${r}`, lat.p50, 'ms', 'bare SDK echo p50', base.p50, { note: `${lat.n} alerts, ${base.n} echoes${lat.missing + base.missing > 0 ? `; not back within 15 s: ${lat.missing}/${lat.marked} alerts, ${base.missing}/${base.marked} echoes` : ''}` }));
      rows.push(row(sec, `input → alert p99 @ ${r}`, lat.p99, 'ms', 'bare SDK echo p99', base.p99, t));
      rows.push(row(sec, `input → alert p99.9 @ ${r}`, lat.p999, 'ms', 'bare SDK echo p99.9', base.p999));
    }
    await stopModule(e);
    await stopModule(b);
    if (process.env.E2E_TRACE) for (const s of eddySamples) traceBreakdown(join(scratch, `${e.moduleId}-trace.json`), s);
  }
}
