/**
 * Compares what the engine emitted over a run with the oracle's answer (test/oracle/oracle.ts) and
 * lists every difference in words. The checks:
 *  - no messageId with two different bodies (docs/contract.md section 4: "One (rule, group, window,
 *    revision) never has two different bodies");
 *  - per window, revisions 0, 1, 2, ... without gaps; a return to revision 0 starts a new definition of
 *    the rule (a rule change starts it afresh), so the emissions of one window split into one run per
 *    rule epoch;
 *  - the last body of each run equals the oracle's final content for that epoch;
 *  - rejections per rule and reason equal the oracle's;
 *  - every event a rule considered is in exactly one final window (tumbling) or counted under a reason.
 */
import type { AlertBody, OutputMessage, SummaryBody } from '../../src/contracts/output.js';
import type { OracleResult, OracleWindow } from './oracle.js';
import type { EngineRunResult } from './engineDriver.js';

/** Relative tolerance for averages (sums of integers are exact; a mean may differ in the last bits). */
const REL_TOL = 1e-9;

/** Whether the engine's value `a` is the oracle's `b`; null (an aggregate over no value) only equals null. */
function close(a: number | null | undefined, b: number | null): boolean {
  if (b === null) return a === null;
  if (typeof a !== 'number') return false;
  return a === b || Math.abs(a - b) <= REL_TOL * Math.max(1, Math.abs(a), Math.abs(b));
}

// A session's end grows after a provisional emission while its start stays (src/windows/sessionWindow.ts),
// so a session is one window by its start; its final end is compared with the content.
const windowKey = (rule: string, deviceId: string, type: string, start: number, end: number): string =>
  type === 'session' ? `${rule} ${deviceId} session [${new Date(start).toISOString()}, ...)` : `${rule} ${deviceId} ${type} [${new Date(start).toISOString()}, ${new Date(end).toISOString()})`;

function describeBody(b: SummaryBody): string {
  return `end ${b.window.end} count ${b.count} values ${JSON.stringify(b.values)} rev ${b.revision}`;
}

function describeOracle(w: OracleWindow): string {
  return `end ${new Date(w.end).toISOString()} count ${w.count} values ${JSON.stringify(w.values)}`;
}

export interface CompareOptions {
  /** Compare rejections per rule and reason, and the accounting (off for a module whose counters restart with it). */
  readonly rejections?: boolean;
}

export function compareWithOracle(engine: Pick<EngineRunResult, 'outputs' | 'rejected'>, oracle: OracleResult, opts: CompareOptions = {}): string[] {
  const diffs: string[] = [];
  const bodies = new Map<string, string>();
  const runs = new Map<string, SummaryBody[][]>();
  for (const m of engine.outputs as OutputMessage[]) {
    const text = JSON.stringify(m.body);
    const prev = bodies.get(m.id);
    if (prev !== undefined && prev !== text) diffs.push(`messageId ${m.id} has two bodies: ${prev} and ${text}`);
    // The same message sent again (a retry, a re-send after a restart) is harmless: the cloud drops it by id.
    if (prev !== undefined) continue;
    bodies.set(m.id, text);
    if (m.kind !== 'summary') continue;
    const b = m.body as SummaryBody;
    const key = windowKey(b.rule, String(b.group.deviceId), b.window.type, Date.parse(b.window.start), Date.parse(b.window.end));
    const list = runs.get(key) ?? [];
    runs.set(key, list);
    const cur = list[list.length - 1];
    if (b.revision === 0 || cur === undefined) {
      if (b.revision !== 0) diffs.push(`${key}: first emission has revision ${b.revision}`);
      list.push([b]);
    } else {
      const want = cur[cur.length - 1]!.revision + 1;
      if (b.revision !== want) diffs.push(`${key}: revision ${b.revision} follows ${want - 1}`);
      cur.push(b);
    }
  }

  const expected = new Map<string, OracleWindow[]>();
  for (const w of oracle.windows) {
    const key = windowKey(w.rule, w.deviceId, w.type, w.start, w.end);
    const list = expected.get(key) ?? [];
    list.push(w);
    expected.set(key, list);
  }
  for (const list of expected.values()) list.sort((a, b) => a.epoch - b.epoch);

  const finalCount: Record<string, number> = {};
  for (const key of new Set([...runs.keys(), ...expected.keys()])) {
    const got = (runs.get(key) ?? []).map((r) => r[r.length - 1]!);
    const want = expected.get(key) ?? [];
    for (const g of got) if (g.window.type === 'tumbling') finalCount[g.rule] = (finalCount[g.rule] ?? 0) + g.count;
    if (got.length !== want.length) {
      diffs.push(`${key}: expected ${want.length} final version(s) [${want.map(describeOracle).join('; ')}], got ${got.length} [${got.map(describeBody).join('; ')}]`);
      continue;
    }
    want.forEach((w, i) => {
      const g = got[i]!;
      const same = (w.type !== 'session' || Date.parse(g.window.end) === w.end) && g.count === w.count && Object.keys(w.values).length === Object.keys(g.values).length && Object.entries(w.values).every(([k, v]) => close(g.values[k], v));
      if (!same) diffs.push(`${key} (rule epoch ${w.epoch}): expected ${describeOracle(w)}, got ${describeBody(g)}`);
    });
  }

  // Alerts per rule and group, in order: state, and the time and value of the event behind it
  // (a `missing` raise has no event: the documents fix only that it is raised, so only its state counts).
  const gotAlerts = new Map<string, AlertBody[]>();
  for (const m of engine.outputs) {
    if (m.kind !== 'alert') continue;
    const a = m.body as AlertBody;
    const key = `${a.rule} ${String(a.group.deviceId)}`;
    gotAlerts.set(key, [...(gotAlerts.get(key) ?? []), a]);
  }
  const wantAlerts = new Map<string, typeof oracle.alerts>();
  for (const a of oracle.alerts) {
    const key = `${a.rule} ${a.deviceId}`;
    wantAlerts.set(key, [...(wantAlerts.get(key) ?? []), a]);
  }
  // A time of null: an alert not caused by an event (a `missing` raise, a clear at a rule change): its
  // state and value are compared, not its time.
  const showWant = (a: (typeof oracle.alerts)[number]): string => (a.time === null ? `${a.state} ${a.value}` : `${a.state} ${new Date(a.time).toISOString()} ${a.value}`);
  const showGot = (a: AlertBody, full: boolean): string => (full ? `${a.state} ${a.time} ${a.value}` : `${a.state} ${a.value}`);
  for (const key of new Set([...gotAlerts.keys(), ...wantAlerts.keys()])) {
    const want = wantAlerts.get(key) ?? [];
    const got = gotAlerts.get(key) ?? [];
    const same = want.length === got.length && want.every((w, i) => showWant(w) === showGot(got[i]!, w.time !== null));
    if (!same) diffs.push(`alerts of ${key}: expected [${want.map(showWant).join(', ')}], got [${got.map((g, i) => showGot(g, want[i]?.time !== null)).join(', ')}]`);
  }

  if (opts.rejections === false) return diffs;
  const rules = new Set([...Object.keys(engine.rejected), ...Object.keys(oracle.rejected)]);
  for (const rule of rules) {
    const g = engine.rejected[rule] ?? {};
    const w = oracle.rejected[rule] ?? {};
    for (const reason of new Set([...Object.keys(g), ...Object.keys(w)])) {
      if ((g[reason] ?? 0) !== (w[reason] ?? 0)) diffs.push(`rule ${rule}: expected ${w[reason] ?? 0} rejected as ${reason}, got ${g[reason] ?? 0}`);
    }
  }

  // Accounting on the engine's own output: considered = in a final tumbling window + rejected.
  for (const [rule, n] of Object.entries(oracle.considered)) {
    const tumbling = oracle.windows.some((w) => w.rule === rule && w.type === 'tumbling') || finalCount[rule] !== undefined;
    if (!tumbling) continue;
    const rej = Object.values(engine.rejected[rule] ?? {}).reduce((a, b) => a + b, 0);
    const placed = finalCount[rule] ?? 0;
    if (placed + rej !== n) diffs.push(`rule ${rule}: ${n} events considered, ${placed} in final windows + ${rej} rejected = ${placed + rej}`);
  }
  return diffs;
}
