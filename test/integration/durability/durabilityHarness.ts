/**
 * Shared parts of the durability tests (docs/contract.md section 8): the BUILT module as a
 * child process (`node dist/main.js`, as edgeAgent runs it), a rules file whose summaries the test
 * can compute exactly, seeded traffic, and the checks on what reached `$upstream`.
 *
 * Exactness: every `v` is a small integer, so count/sum/min/max are exact on both sides; a lost
 * input or one counted twice changes `n` and `sum` of its window and shows.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EdgeHubEmulator, UpstreamMessage } from '../../helpers/edgeHubEmulator.js';
import {
  cleanupModules, type LogLine, type ModuleProcess, spawnModule as spawnChild, stopModule as stopProcess, tempDataDir,
  useEmulator as useModuleEmulator, waitUntil,
} from '../module/moduleProcess.js';
import { mulberry32 } from '../../../src/util/mulberry32.js';

/** 2026-11-26T03:00:00Z. */
export const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

/** Window sizes of the two aggregate rules of `exactRules`. */
export const RULE_SIZES: Readonly<Record<string, number>> = { sum10s: 10_000, sum30s: 30_000 };

/**
 * Two tumbling rules per `$deviceId` on the body's `ts` (epoch ms). `idleTimeout` 1 h: windows close
 * only by event time, never by the processing-time idle flush, so what closes does not depend on
 * how long an outage or a restart took.
 */
export function exactRules(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const rule = (size: string): Record<string, unknown> => ({
    kind: 'aggregate',
    input: 'telemetry',
    groupBy: ['$deviceId'],
    timestamp: 'ts',
    window: { type: 'tumbling', size },
    maxLateness: '1s',
    idleTimeout: '1h',
    select: { n: 'count()', sum: 'sum(v)', min: 'min(v)', max: 'max(v)' },
    output: 'summaries',
    ...overrides,
  });
  return { sum10s: rule('10s'), sum30s: rule('30s') };
}

/** One reading: the device that sends it (`$.cdid`), its event time and value. */
export interface Reading {
  readonly deviceId: string;
  readonly ts: number;
  readonly v: number;
}

/** One input message: a device's single reading (an object body) or a batch (an array body). */
export interface InputMessage {
  readonly deviceId: string;
  readonly readings: readonly Reading[];
}

/** prng: mulberry32 (src/util/mulberry32.ts), seeded so every run sees the same data. */
export const prng = mulberry32;

/**
 * An endless source of messages: round robin over `devices`, each device's event time advancing by
 * `stepMs` per reading from T0 (plus a per-device offset), `v` a seeded integer in [-50, 50].
 * `maxBatch` > 1 makes some messages JSON arrays of up to that many consecutive readings.
 */
export class TrafficSource {
  private readonly rnd: () => number;
  private readonly next: number[];
  private turn = 0;
  /** Every message handed out, in order. */
  readonly sent: InputMessage[] = [];

  constructor(
    private readonly devices: readonly string[],
    seed: number,
    private readonly opts: { stepMs?: number; maxBatch?: number } = {},
  ) {
    this.rnd = prng(seed);
    this.next = devices.map((_, d) => T0 + 7 * d);
  }

  message(): InputMessage {
    const d = this.turn++ % this.devices.length;
    const size = 1 + Math.floor(this.rnd() * (this.opts.maxBatch ?? 1));
    const readings: Reading[] = [];
    for (let k = 0; k < size; k++) {
      readings.push({ deviceId: this.devices[d]!, ts: this.next[d]!, v: Math.floor(this.rnd() * 101) - 50 });
      this.next[d]! += this.opts.stepMs ?? 1_000;
    }
    const m = { deviceId: this.devices[d]!, readings };
    this.sent.push(m);
    return m;
  }

  /** Every reading sent so far. */
  readings(): Reading[] {
    return this.sent.flatMap((m) => m.readings);
  }

  /** The largest event time handed out. */
  maxTs(): number {
    return Math.max(...this.next);
  }
}

/**
 * Publishes input messages into a module's broker session, each with messageId `in-<n>`, and tracks
 * which of them the module acknowledged (PUBACK), re-deliveries included.
 *
 * Ordering: edgeHub delivers a module's input from ONE ordered store-and-forward queue per endpoint,
 * so messages published while the module drains a backlog come after it. The emulator's aedes does
 * not: after a reconnect it interleaves live publishes with the offline queue it is draining
 * (measured: 28 inversions in 1,006 messages with 500 queued), and one live message ahead of the
 * backlog makes the queued ones look late (`too-late` rejects) for a reason real edgeHub never
 * produces. So `send` publishes only when `gate()` says so: the test opens it while the module
 * cannot receive (process dead, listener down: the message is queued, in order) and while the
 * module is connected and has acknowledged everything before; it holds while the module
 * (re)connects, since aedes's connect-and-drain window cannot be observed from outside.
 */
export class InputDriver {
  published = 0;
  private readonly acked = new Set<number>();
  /** Message numbers in PUBACK order: the order the module handled them in (its handler is synchronous). */
  readonly ackOrder: number[] = [];

  constructor(
    private readonly emu: EdgeHubEmulator,
    private readonly moduleId: string,
  ) {
    emu.on('inputAck', (a: { moduleId: string; topic: string }) => {
      if (a.moduleId !== moduleId) return;
      const m = /%24\.mid=in-(\d+)/.exec(a.topic);
      if (m) {
        this.acked.add(Number(m[1]));
        this.ackOrder.push(Number(m[1]));
      }
    });
  }

  /** When a message may be published; by default while the module is connected and caught up. */
  gate: () => boolean = () => this.emu.isConnected(this.moduleId) && this.caughtUp();

  /** Every message published so far has been acknowledged at least once. */
  caughtUp(): boolean {
    return this.acked.size >= this.published;
  }

  /** How many distinct messages were acknowledged. */
  ackedCount(): number {
    return this.acked.size;
  }

  async send(m: InputMessage, opts: { ordered?: boolean } = {}): Promise<void> {
    if (opts.ordered !== false) await waitUntil(() => this.gate(), 240_000, 'the gate (module offline, or connected and caught up)');
    const body = m.readings.length === 1 ? { ts: m.readings[0]!.ts, v: m.readings[0]!.v } : m.readings.map((r) => ({ ts: r.ts, v: r.v }));
    const n = this.published;
    this.published++;
    await this.emu.sendInput(this.moduleId, 'telemetry', body, { deviceId: m.deviceId, moduleId: 'driver', messageId: `in-${n}` });
  }
}

/** One closer per device far ahead in event time: every window of the traffic closes (its own stays open). */
export function closers(devices: readonly string[], ts: number): InputMessage[] {
  return devices.map((deviceId) => ({ deviceId, readings: [{ deviceId, ts, v: 0 }] }));
}

/** The part of a `summaries` body the tests compare. */
export interface Summary {
  rule: string;
  group: { deviceId: string };
  window: { type: string; start: string; end: string };
  count: number;
  values: { n: number; sum: number; min: number; max: number };
  revision: number;
}

/** Key of one window of one rule and group. */
export const windowKey = (s: Summary): string => `${s.rule}|${s.group.deviceId}|${s.window.start}`;

/** The summaries a crash-free run gives over `readings` for the windows of `rules` that end at or before `closedBy`. */
export function expectedSummaries(readings: readonly Reading[], closedBy: number, rules: Readonly<Record<string, number>> = RULE_SIZES): Summary[] {
  const cells = new Map<string, Summary>();
  for (const [rule, size] of Object.entries(rules)) {
    for (const r of readings) {
      const start = Math.floor(r.ts / size) * size;
      if (start + size > closedBy) continue;
      const key = `${rule}|${r.deviceId}|${start}`;
      let c = cells.get(key);
      if (!c) {
        c = {
          rule, group: { deviceId: r.deviceId }, revision: 0, count: 0,
          window: { type: 'tumbling', start: new Date(start).toISOString(), end: new Date(start + size).toISOString() },
          values: { n: 0, sum: 0, min: Infinity, max: -Infinity },
        };
        cells.set(key, c);
      }
      c.count++;
      c.values.n++;
      c.values.sum += r.v;
      c.values.min = Math.min(c.values.min, r.v);
      c.values.max = Math.max(c.values.max, r.v);
    }
  }
  return sortByWindow([...cells.values()]);
}

export function sortByWindow<T extends Summary>(xs: T[]): T[] {
  return [...xs].sort((a, b) => windowKey(a).localeCompare(windowKey(b)));
}

/** What reached `$upstream` from one module, analysed. */
export interface UpstreamReport {
  /** Summary messages in arrival order. */
  messages: Array<{ id: string; body: Summary }>;
  /** Per window the body of the highest revision seen. */
  latest: Summary[];
  /** Messages whose messageId had been seen before. */
  duplicates: number;
  /** Duplicates with the same id but a different body (must be 0). */
  conflicting: string[];
  /** Rule-and-group sequences where a NEW window arrived after a later one (must be empty). */
  orderViolations: string[];
  /** Re-sent windows that arrived after a later window of their group (allowed: same id; counted). */
  staleResends: number;
}

/** Parses and checks the summaries `moduleId` sent upstream. */
export function analyseUpstream(emu: EdgeHubEmulator, moduleId: string): UpstreamReport {
  const messages = emu.upstream
    .filter((m: UpstreamMessage) => m.moduleId === moduleId && m.output === 'summaries')
    .map((m) => ({ id: m.messageId ?? m.systemProperties['$.mid'] ?? '', body: JSON.parse(m.body.toString('utf8')) as Summary }));
  const byId = new Map<string, string>();
  const conflicting: string[] = [];
  let duplicates = 0;
  const latest = new Map<string, Summary>();
  const lastStart = new Map<string, string>();
  const orderViolations: string[] = [];
  let staleResends = 0;
  for (const { id, body } of messages) {
    const text = JSON.stringify(body);
    const seen = byId.get(id);
    const g = `${body.rule}|${body.group.deviceId}`;
    const prev = lastStart.get(g);
    if (seen !== undefined) {
      duplicates++;
      if (seen !== text) conflicting.push(id);
      if (prev !== undefined && body.window.start < prev) staleResends++;
      continue;
    }
    byId.set(id, text);
    // docs/contract.md section 8: a rule's windows for one group go out in creation order, i.e. by start.
    if (prev !== undefined && body.window.start <= prev && !(body.window.start === prev && body.revision > 0)) {
      orderViolations.push(`${g}: ${body.window.start} after ${prev}`);
    }
    if (prev === undefined || body.window.start > prev) lastStart.set(g, body.window.start);
    const k = windowKey(body);
    const cur = latest.get(k);
    if (!cur || body.revision > cur.revision) latest.set(k, body);
  }
  return { messages, latest: sortByWindow([...latest.values()]), duplicates, conflicting, orderViolations, staleResends };
}

// ---- the module as a child process (test/integration/module/moduleProcess.ts) ----

/** A running (or exited) `node dist/main.js`. */
export type ModuleChild = ModuleProcess;
export type { LogLine };

/** A temp dir (data dir or rules), removed by `cleanup`. */
export const tempDir = (prefix = 'eddy-durability-'): string => tempDataDir(prefix);

/** Writes a rules file into a temp dir and returns its path. */
export function writeRules(rules: Record<string, unknown>): string {
  const file = join(tempDir('eddy-rules-'), 'rules.json');
  writeFileSync(file, JSON.stringify(rules, null, 2));
  return file;
}

/** Spawns the built module on `emu` with its own data dir and rules file, metrics off, debug logs. */
export function spawnModule(emu: EdgeHubEmulator, moduleId: string, opts: { dataDir: string; rulesFile: string; extra?: Record<string, string> }): ModuleChild {
  return spawnChild(emu.moduleEnv(moduleId), { dataDir: opts.dataDir, extra: { EDDY_RULES_FILE: opts.rulesFile, ...opts.extra } });
}

/** True for main.ts's "connected" line: inputs, methods and twin work from then on. */
export const isConnectedLine = (l: LogLine): boolean => l.msg === 'eddy connected to edgeHub';

/** Spawns and waits for the connected line and the first reported patch of this process. */
export async function startModule(emu: EdgeHubEmulator, moduleId: string, opts: { dataDir: string; rulesFile: string; extra?: Record<string, string> }, timeoutMs = 30_000): Promise<ModuleChild> {
  const before = emu.twin(moduleId).reported.$version;
  const mc = spawnModule(emu, moduleId, opts);
  await mc.waitForLog(isConnectedLine, timeoutMs, '"eddy connected to edgeHub"');
  await waitUntil(() => emu.twin(moduleId).reported.$version > before, timeoutMs, 'the first reported patch');
  return mc;
}

/** SIGTERM, then SIGKILL after `graceMs` (the module tests' helper, with the longer grace these tests need). */
export const stopModule = (mc: ModuleChild, graceMs = 12_000): ReturnType<typeof stopProcess> => stopProcess(mc, graceMs);

/** For afterEach: prints the tail of each child's log when the test failed, kills what runs, removes temp dirs. */
export const cleanup = (failed: boolean): Promise<void> => cleanupModules(failed, { tailLines: 60 });

/** `useEmulator` of test/integration/module/moduleProcess.ts with `cleanup`'s log tails. */
export const useEmulator = (set: (emu: EdgeHubEmulator) => void, opts: { afterEach?: (emu: EdgeHubEmulator) => void } = {}): void => useModuleEmulator(set, { ...opts, tailLines: 60 });

export { waitUntil };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Pushes a desired patch and waits until the module reports that version applied (reported `config.desiredVersion`, docs/contract.md section 6). */
export async function applyDesired(emu: EdgeHubEmulator, moduleId: string, patch: Record<string, unknown>, timeoutMs = 30_000): Promise<void> {
  const v = emu.pushDesired(moduleId, patch);
  await waitUntil(() => (emu.twin(moduleId).reported as { config?: { desiredVersion?: number } }).config?.desiredVersion === v, timeoutMs, `desired version ${v} applied`);
}

/** Sends one reading per message through `input`, listed in `readings` unless `counted` is false (a reading that only closes windows). */
export const readingSender = (input: InputDriver, readings: Reading[]) =>
  async (deviceId: string, ts: number, v: number, counted = true): Promise<void> => {
    if (counted) readings.push({ deviceId, ts, v });
    await input.send({ deviceId, readings: [{ deviceId, ts, v }] });
  };

/**
 * One data dir, one rules file, a module started, SIGKILLed and restarted while `sequence` flows through
 * `input` (test/integration/durability/sigkill.test.ts and the black-box SIGKILL tests). `input.gate`
 * queues inputs in the broker session while no process runs, holds them while one (re)connects, and
 * sends live once it is connected and caught up (see InputDriver).
 */
export class KilledModule {
  phase: 'dead' | 'starting' | 'running' = 'dead';
  current: ModuleChild | null = null;
  /** Every process started, in order. */
  readonly all: ModuleChild[] = [];
  /** Settles when the whole sequence is published. */
  driver: Promise<void> = Promise.resolve();
  private fast = false;

  constructor(
    private readonly emu: EdgeHubEmulator,
    private readonly moduleId: string,
    private readonly opts: { dataDir: string; rulesFile: string },
    private readonly input: InputDriver,
  ) {
    input.gate = () => this.phase === 'dead' || (this.phase === 'running' && this.current !== null && this.current.logs.some(isConnectedLine) && emu.isConnected(moduleId) && input.caughtUp());
  }

  /** One clean start, killed (the broker session and its subscription must exist before inputs queue in it); then `sequence` goes out, `paceMs` apart until `startLast`. */
  async startDriving(sequence: readonly InputMessage[], paceMs: number): Promise<ModuleChild> {
    const first = await startModule(this.emu, this.moduleId, this.opts, 60_000);
    first.child.kill('SIGKILL');
    await first.exit;
    this.all.push(first);
    this.driver = (async () => {
      for (const m of sequence) {
        await this.input.send(m);
        if (!this.fast) await sleep(paceMs);
      }
    })();
    return first;
  }

  /** Spawns the next process; inputs go to it live once it logged its connected line. */
  spawn(): ModuleChild {
    this.phase = 'starting';
    const mc = spawnModule(this.emu, this.moduleId, this.opts);
    this.current = mc;
    this.all.push(mc);
    void mc.waitForLog(isConnectedLine, 120_000, 'connected').then(() => mc === this.current && !mc.exited && (this.phase = 'running'), () => undefined);
    return mc;
  }

  async kill(mc: ModuleChild): Promise<void> {
    mc.child.kill('SIGKILL');
    await mc.exit;
    this.phase = 'dead';
  }

  /** The last process, not killed: the rest of the sequence goes out at full speed (await `driver`). */
  async startLast(): Promise<ModuleChild> {
    this.phase = 'starting';
    const final = await startModule(this.emu, this.moduleId, this.opts, 60_000);
    this.current = final;
    this.all.push(final);
    this.phase = 'running';
    this.fast = true;
    return final;
  }
}

/** One summary message upstream, as the black-box tests read it (times in ms; `text` the body as sent). */
export interface SummaryOut {
  id: string;
  rule: string;
  dev: string;
  start: number;
  end: number;
  n: number;
  sum: number;
  revision: number;
  text: string;
}

/** Every message `moduleId` sent on its `summaries` output, in arrival order, repeats included; the rules select `n: count()` and `sum: sum(v)`. */
export function summariesOf(emu: EdgeHubEmulator, moduleId: string): SummaryOut[] {
  return emu.upstream.filter((m) => m.moduleId === moduleId && m.output === 'summaries').map((m) => {
    const text = m.body.toString('utf8');
    const b = JSON.parse(text) as { rule: string; group: { deviceId: string }; window: { start: string; end: string }; values: { n: number; sum: number }; revision: number };
    return { id: m.messageId ?? '', rule: b.rule, dev: b.group.deviceId, start: Date.parse(b.window.start), end: Date.parse(b.window.end), n: b.values.n, sum: b.values.sum, revision: b.revision, text };
  });
}

/** The messages whose id came earlier with another body (docs/contract.md section 5: one (rule, group, window, revision) never has two bodies). */
export function conflictingOf<T extends { id: string; text: string }>(outs: readonly T[]): T[] {
  const bodies = new Map<string, string>();
  return outs.filter((o) => (bodies.has(o.id) && bodies.get(o.id) !== o.text) || (bodies.set(o.id, o.text), false));
}
