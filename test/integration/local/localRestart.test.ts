import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { type Line, type Local, logs, sleep, startLocal, tempDir, until } from '../../helpers/localProcess.js';
import { mulberry32 } from '../../../src/util/mulberry32.js';

/*
 * Restarts, rule changes while down and a second process, with real processes in local mode (`node dist/main.js`, the simulated
 * SimulatedTemperatureSensor: one message per device every 100 ms, 5 s apart in event time, so a
 * one-minute window holds exactly 12 readings of a device).
 */


/** EDDY_SIM_START of the crash-free comparisons: minute-aligned, so the first one-minute window is full; fifteen windows compared. */
const SIM_START = '2026-01-01T00:00:00Z';
const WINDOWS = Array.from({ length: 15 }, (_, m) => m).map((m) => new Date(Date.parse(SIM_START) + m * 60_000).toISOString());

/** Per (rule, device, window start): the body of the highest revision (count, values, window, revision). */
function finalSummaries(lines: readonly Line[]): Map<string, Line['body']> {
  const out = new Map<string, Line['body']>();
  for (const l of lines) {
    if (l.output !== 'summaries') continue;
    const k = `${l.body.rule}|${l.body.group.deviceId}|${new Date((l.body.window as { start: string }).start).toISOString()}`;
    const cur = out.get(k);
    if (!cur || (l.body.revision as number) > (cur.revision as number)) out.set(k, l.body);
  }
  return out;
}

/** One record of the input log as docs/contract.md section 8 frames it, read here without the product's reader. */
interface LogFrame {
  seq: number;
  deviceId: string;
  moduleId: string;
  body: string;
  /** Byte offset just past this frame in its segment file. */
  end: number;
}

/**
 * The frames of one input-log segment: [len u32][crc32 u32][seq f64][arrival f64]([elapsed f64])[3 or 4 × (u16 len, utf8)][body];
 * bit 30 of len flags `elapsed`, bit 31 a fourth string (the messageId) (src/store/fileInputLog.ts).
 */
function logFrames(file: string): LogFrame[] {
  const data = readFileSync(file);
  const out: LogFrame[] = [];
  let o = 0;
  while (o + 8 <= data.length) {
    const word = data.readUInt32LE(o);
    const len = word & 0x3fff_ffff;
    if (o + 8 + len > data.length) break;
    const p = data.subarray(o + 8, o + 8 + len);
    let q = (word & 0x4000_0000) !== 0 ? 24 : 16;
    const strs: string[] = [];
    for (let k = 0; k < ((word & 0x8000_0000) !== 0 ? 4 : 3); k++) {
      const sl = p.readUInt16LE(q);
      strs.push(p.toString('utf8', q + 2, q + 2 + sl));
      q += 2 + sl;
    }
    o += 8 + len;
    out.push({ seq: p.readDoubleLE(0), deviceId: strs[1]!, moduleId: strs[2]!, body: p.toString('utf8', q), end: o });
  }
  return out;
}

/**
 * Cuts the input log of a killed local-mode run after its last sim-1 record, so that it ends one
 * device into a sensor tick; false (nothing cut) when a saved state already reflects that record.
 * Checks on the way that the checkpoint's `$sensor` stands at a tick boundary and that the first
 * record replayed after it is sim-1's message at the sensor's saved event time.
 */
function cutInsideTick(dir: string): boolean {
  const db = new Database(path.join(dir, 'eddy.db'), { readonly: true });
  const cpSeq = (db.prepare("SELECT value FROM meta WHERE key = 'checkpoint_seq'").get() as { value: number }).value;
  const rows = db.prepare('SELECT rule_key, state, upto_seq FROM rule_state').all() as Array<{ rule_key: string; state: string; upto_seq: number | null }>;
  db.close();
  const savedUpTo = Math.max(cpSeq, ...rows.map((r) => r.upto_seq ?? 0));
  const segs = readdirSync(path.join(dir, 'inputs')).filter((f) => /^inputs-\d+\.log$/.test(f)).sort();
  // The last segment starts after the last committed checkpoint (it is rotated at each commit).
  const last = path.join(dir, 'inputs', segs.at(-1)!);
  const frames = logFrames(last);
  const cut = frames.findLast((f) => f.deviceId === 'sim-1');
  if (cut === undefined || cut.seq <= savedUpTo) return false;
  truncateSync(last, cut.end);
  const sensor = JSON.parse(rows.find((r) => r.rule_key === '$sensor')!.state) as { times: number[] };
  expect(new Set(sensor.times).size, 'the saved sensor at a tick boundary').toBe(1);
  const first = frames.find((f) => f.seq > cpSeq)!;
  expect(first.deviceId).toBe('sim-1');
  expect(Date.parse((JSON.parse(first.body) as { timeCreated: string }).timeCreated.slice(0, 23) + 'Z')).toBe(sensor.times[0]);
  return true;
}

describe('local mode across SIGKILL, rule changes and a second process', () => {
  it('SIGKILL and restart on the same data dir: every one-minute window holds 12 readings, no false machineTempJump', async () => {
    const dir = tempDir('eddy-local-kill-');
    // Three kills at different distances from the 5 s checkpoints, so some fall long after one.
    const killed: Local[] = [];
    for (const ms of [6_500, 8_800, 7_700]) {
      const k = startLocal(dir);
      await sleep(ms);
      k.child.kill('SIGKILL');
      await k.exit;
      killed.push(k);
    }
    const b = startLocal(dir);
    // SIGINT only once it runs: a signal during module loading ends the process before its handler exists.
    await until(() => logs(b).some((l) => l.msg.startsWith('eddy running in local mode')), 30_000, 'the restarted process running');
    const a = { lines: killed.flatMap((k) => k.lines) };
    // Until the restarted process has closed two windows of its own per device (beyond any window the
    // killed ones printed): a fixed wait closed fewer on a loaded machine.
    const starts = (ls: readonly Line[], d: string): number[] => ls.filter((l) => l.output === 'summaries' && l.body.rule === 'machine1m' && l.body.group.deviceId === d).map((l) => Date.parse((l.body.window as { start: string }).start));
    const devices = ['sim-1', 'sim-2', 'sim-3'];
    const lastKilled = new Map(devices.map((d) => [d, Math.max(0, ...starts(a.lines, d))]));
    await until(() => devices.every((d) => new Set(starts(b.lines, d).filter((t) => t > lastKilled.get(d)!)).size >= 2), 40_000, 'the restarted process closing two new windows per device');
    b.child.kill('SIGINT');
    expect((await b.exit).code, b.stderr).toBe(0);

    const byId = new Map<string, string>();
    const windows = new Map<string, { start: string; count: number; revision: number }>();
    for (const l of [...a.lines, ...b.lines]) {
      const id = l.properties.messageId!;
      const text = JSON.stringify(l.body);
      expect(byId.get(id) ?? text, `messageId ${id} carries two bodies`).toBe(text);
      byId.set(id, text);
      if (l.output !== 'summaries') continue;
      const w = l.body.window as { start: string };
      const k = `${l.body.rule}|${l.body.group.deviceId}|${w.start}`;
      const cur = windows.get(k);
      const revision = l.body.revision as number;
      if (!cur || revision > cur.revision) windows.set(k, { start: w.start, count: l.body.count as number, revision });
    }
    // Each group's first window starts where the sensor started (mid-minute): partial by design.
    const first = new Map<string, string>();
    for (const [k, w] of windows) {
      const g = k.slice(0, k.lastIndexOf('|'));
      if (!first.has(g) || w.start < first.get(g)!) first.set(g, w.start);
    }
    const counts = [...windows].filter(([k, w]) => first.get(k.slice(0, k.lastIndexOf('|'))) !== w.start).map(([k, w]) => `${k} ${w.count}`);
    expect(counts.length).toBeGreaterThan(10);
    expect(counts.filter((c) => !c.endsWith(' 12'))).toEqual([]);
    const jumps = [...a.lines, ...b.lines].filter((l) => l.output === 'alerts' && l.body.rule === 'machineTempJump');
    expect(jumps.map((l) => JSON.stringify(l.body))).toEqual([]);
  }, 90_000);

  it('SIGKILLed 3 times at seeded random moments, the summaries and alerts equal a crash-free run with the same EDDY_SIM_START', async () => {
    // The simulator starts at a fixed event time (docs/contract.md section 2), so two runs on fresh
    // data dirs generate the same readings: the crash-free run is the oracle for the killed one.
    // The default rules plus two anomaly rules that fire often on the simulator's readings, so the
    // alerts compared are many (of the default ones only machineOverheat fires, near the end):
    // ambient temperature is 21 ± 0.5 uniform, the machine's steps up to +1.25 per 5 s (0.25/s).
    const rulesDir = tempDir('eddy-local-oracle-rules-');
    const rulesFile = path.join(rulesDir, 'rules.json');
    const defaults = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../../rules/default.json'), 'utf8')) as Record<string, unknown>;
    const anomaly = { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', output: 'alerts' };
    writeFileSync(rulesFile, JSON.stringify({
      ...defaults,
      ambientHigh: { ...anomaly, value: 'ambient.temperature', detector: { type: 'threshold', above: 21.3, hysteresis: 0.2 } },
      machineRamp: { ...anomaly, value: 'machine.temperature', detector: { type: 'rateOfChange', maxPerSecond: 0.2 } },
    }));
    const simEnv = { EDDY_SIM_START: SIM_START, EDDY_RULES_FILE: rulesFile };
    const target = (lines: Line[]): boolean => {
      const w = finalSummaries(lines);
      return ['machine1m', 'ambient1m'].every((rule) => ['sim-1', 'sim-2', 'sim-3'].every((d) => WINDOWS.every((t) => w.has(`${rule}|${d}|${t}`))));
    };

    const a = startLocal(tempDir('eddy-local-oracle-'), simEnv);
    await until(() => target(a.lines), 40_000, 'the crash-free run closing fifteen windows');
    a.child.kill('SIGINT');
    expect((await a.exit).code, a.stderr).toBe(0);

    const dir = tempDir('eddy-local-kill-oracle-');
    const rnd = mulberry32(1706);
    const killedAt: number[] = [];
    const lines: Line[] = [];
    for (let k = 0; k < 3; k++) {
      // Before and after the first 5 s checkpoint (main.ts CHECKPOINT_MS): a restart then resumes
      // from a checkpoint's sensor state, or from none, and replays the logged tail.
      const ms = 2_000 + Math.floor(rnd() * 6_000);
      killedAt.push(ms);
      const c = startLocal(dir, simEnv);
      await sleep(ms);
      c.child.kill('SIGKILL');
      await c.exit;
      lines.push(...c.lines);
    }
    const b = startLocal(dir, simEnv);
    // The last run replays the killed runs' tail first, then goes on to the windows still missing.
    await until(() => logs(b).some((l) => l.msg.startsWith('eddy running in local mode')), 20_000, 'local mode running');
    await until(() => target([...lines, ...b.lines]), 40_000, `the killed run (killed after ${killedAt.join(', ')} ms) closing fifteen windows`);
    b.child.kill('SIGINT');
    expect((await b.exit).code, b.stderr).toBe(0);
    lines.push(...b.lines);
    // The kills fell while windows were open: the last run, too, closed some of the windows compared.
    expect(b.lines.some((l) => l.output === 'summaries' && WINDOWS.includes(new Date((l.body.window as { start: string }).start).toISOString()))).toBe(true);

    // Both runs stopped at some wall-clock moment after the fifteen windows closed: compare the windows
    // both runs cover, i.e. the fifteen; later ones may be missing or partial in either.
    const inWindows = (k: string): boolean => WINDOWS.some((t) => k.endsWith(`|${t}`));
    const oracle = [...finalSummaries(a.lines)].filter(([k]) => inWindows(k)).sort();
    const killed = [...finalSummaries(lines)].filter(([k]) => inWindows(k)).sort();
    expect(oracle).toHaveLength(2 * 3 * WINDOWS.length);
    for (const [, body] of oracle) expect(body.count).toBe(12);
    expect(killed, `killed after ${killedAt.join(", ")} ms`).toEqual(oracle);
    // Alerts from event time within the fifteen windows (sensorSilent runs on processing time: left out).
    const END = Date.parse(WINDOWS.at(-1)!) + 60_000;
    // One per messageId: an output printed but not yet acknowledged when killed is printed again.
    const alerts = (ls: Line[]): string[] => {
      const byId = new Map<string, string>();
      for (const l of ls) if (l.output === 'alerts' && l.body.rule !== 'sensorSilent' && Date.parse(String(l.body.time)) < END) byId.set(l.properties.messageId!, JSON.stringify(l.body));
      return [...byId.values()].sort();
    };
    const expected = alerts(a.lines);
    expect(expected.filter((b) => b.includes('"rule":"ambientHigh"')).length).toBeGreaterThan(10);
    expect(expected.filter((b) => b.includes('"rule":"machineRamp"')).length).toBeGreaterThan(3);
    expect(alerts(lines)).toEqual(expected);
  }, 120_000);

  it('the kill between two devices of one sensor tick: the restarted sensor sends the rest of the tick first and its readings equal a crash-free run', async () => {
    // The sensor sends sim-1, sim-2, sim-3 in one timer callback, each logged with its own write,
    // all drawn from one generator. A SIGKILL between two of those writes leaves a log that ends
    // inside a tick; this test makes that state deterministically by cutting the last segment after
    // its last sim-1 record (the bytes a kill right after that write leaves: the log is appended
    // with one write per record, src/store/fileInputLog.ts). A restart that began a new tick with
    // sim-1 drew sim-2's numbers for it: the same event times and counts, other readings.
    const windows = WINDOWS.slice(0, 6);
    const target = (lines: Line[]): boolean => {
      const w = finalSummaries(lines);
      return ['machine1m', 'ambient1m'].every((rule) => ['sim-1', 'sim-2', 'sim-3'].every((d) => windows.every((t) => w.has(`${rule}|${d}|${t}`))));
    };
    const simEnv = { EDDY_SIM_START: SIM_START };
    const a = startLocal(tempDir('eddy-local-tick-oracle-'), simEnv);
    await until(() => target(a.lines), 40_000, 'the crash-free run closing six windows');
    a.child.kill('SIGINT');
    expect((await a.exit).code, a.stderr).toBe(0);

    // A kill right after a stepped checkpoint saved a rule's state for the last tick leaves nothing to
    // cut (the state reflects the whole tick): then once more, on a fresh data dir.
    let dir = '';
    let c: Local | null = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      dir = tempDir('eddy-local-tick-kill-');
      c = startLocal(dir, simEnv);
      // Killed once the second minute has closed: windows are open and the first checkpoint is behind.
      await until(() => c!.lines.some((l) => l.output === 'summaries' && new Date((l.body.window as { start: string }).start).toISOString() === windows[1]), 30_000, 'the second window closing');
      c.child.kill('SIGKILL');
      await c.exit;
      if (cutInsideTick(dir)) break;
      c = null;
    }
    expect(c, 'three kills without a sim-1 record after every saved state').not.toBeNull();
    const killedLines = c!.lines;

    const b = startLocal(dir, simEnv);
    await until(() => target([...killedLines, ...b.lines]), 40_000, 'the restarted run closing six windows');
    b.child.kill('SIGINT');
    expect((await b.exit).code, b.stderr).toBe(0);
    const inWindows = (k: string): boolean => windows.some((t) => k.endsWith(`|${t}`));
    const oracle = [...finalSummaries(a.lines)].filter(([k]) => inWindows(k)).sort();
    const killed = [...finalSummaries([...killedLines, ...b.lines])].filter(([k]) => inWindows(k)).sort();
    expect(oracle).toHaveLength(2 * 3 * windows.length);
    expect(killed).toEqual(oracle);
  }, 120_000);

  it('a rule removed and a rule changed while the module was down: open windows emitted, raised alerts cleared (rule-removed) under the old definition', async () => {
    const dir = tempDir('eddy-local-rules-');
    const rulesDir = tempDir('eddy-local-rules-file-');
    const agg = {
      kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', window: { type: 'tumbling', size: '1h' },
      select: { n: 'count()', tMax: 'max(machine.temperature)' }, output: 'summaries',
    };
    const warm = { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', value: 'machine.temperature', detector: { type: 'threshold', above: 23 }, output: 'alerts' };
    const fileA = path.join(rulesDir, 'a.json');
    const fileB = path.join(rulesDir, 'b.json');
    writeFileSync(fileA, JSON.stringify({ agg, warm }));
    // `agg` changes its aggregates (its state cannot carry on); `warm` is gone.
    writeFileSync(fileB, JSON.stringify({ agg: { ...agg, select: { n: 'count()', tMin: 'min(machine.temperature)' } } }));

    // Event time from a fixed hour-aligned start: with the wall clock the 1 h window closes in this
    // run whenever the test happens to straddle a full hour.
    const a = startLocal(dir, { EDDY_RULES_FILE: fileA, EDDY_SIM_START: SIM_START });
    await until(() => new Set(a.lines.filter((l) => l.body.rule === 'warm' && l.body.state === 'raised').map((l) => l.body.group.deviceId)).size === 3, 30_000, 'three raised alerts');
    await sleep(500);
    a.child.kill('SIGINT');
    expect((await a.exit).code, a.stderr).toBe(0);
    const raised = a.lines.filter((l) => l.body.rule === 'warm');
    // Nothing of `agg` closed yet (1 h windows, ~4 minutes of event time).
    expect(a.lines.filter((l) => l.body.rule === 'agg')).toEqual([]);

    const stillRaised = new Map<string, Line>();
    for (const l of raised) {
      if (l.body.state === 'raised') stillRaised.set(l.body.group.deviceId, l);
      else stillRaised.delete(l.body.group.deviceId);
    }

    const b = startLocal(dir, { EDDY_RULES_FILE: fileB, EDDY_SIM_START: SIM_START });
    await until(() => logs(b).some((l) => l.msg.startsWith('eddy running in local mode')), 20_000, 'local mode running');
    // The start emits them (engine.setRules after the replay); the forwarder prints them a little later,
    // later still on a loaded machine: until as many clears and old-definition windows as can come.
    await until(() => b.lines.filter((l) => l.body.rule === 'warm' && l.body.state === 'cleared').length >= stillRaised.size
      && b.lines.filter((l) => l.body.rule === 'agg' && 'tMax' in (l.body.values as object)).length >= 3, 20_000, 'the clears and the old-definition windows printed');
    b.child.kill('SIGINT');
    expect((await b.exit).code, b.stderr).toBe(0);

    // `warm`: every raised alert ends with a `cleared` of kind rule-removed.
    const cleared = b.lines.filter((l) => l.body.rule === 'warm' && l.body.state === 'cleared');
    expect(cleared.map((l) => [l.body.group.deviceId, l.body.kind]).sort()).toEqual([...stillRaised.keys()].sort().map((d) => [d, 'rule-removed']));
    // `agg`: the windows open at the shutdown come out under the old definition (its select), one per device.
    const old = b.lines.filter((l) => l.body.rule === 'agg' && 'tMax' in (l.body.values as object));
    expect(old.map((l) => l.body.group.deviceId).sort()).toEqual(['sim-1', 'sim-2', 'sim-3']);
    for (const l of old) expect(l.body.count as number).toBeGreaterThan(10);
    // One log line per rule whose saved state no longer fits.
    const ended = logs(b).filter((l) => /saved state/.test(l.msg));
    expect(ended.map((l) => l.rule).sort()).toEqual(['agg', 'warm']);
  }, 90_000);

  it('a second process on the same EDDY_DATA_DIR exits at once with a clear message; a stale lock of a killed process is taken over', async () => {
    const dir = tempDir('eddy-local-lock-');
    const a = startLocal(dir);
    await until(() => a.lines.length > 0, 20_000, 'the first process printing');
    const b = startLocal(dir);
    // "At once": a bound well above a Node start on a loaded machine, far below a run's lifetime.
    const outcome = await Promise.race([b.exit, sleep(30_000).then(() => null)]);
    expect(outcome, 'the second process is still running').not.toBeNull();
    expect(outcome!.code).not.toBe(0);
    expect(b.stderr).toMatch(/EDDY_DATA_DIR .* in use by another eddy process/);
    expect(b.lines).toEqual([]);
    expect(a.exited).toBe(false);
    a.child.kill('SIGKILL');
    await a.exit;
    const c = startLocal(dir);
    await until(() => c.lines.length > 0, 20_000, 'the third process printing');
    c.child.kill('SIGINT');
    expect((await c.exit).code, c.stderr).toBe(0);
  }, 60_000);
});
