/**
 * An independent oracle for eddy's windowed aggregates and alerts: a plain, slow, obviously correct reading of the
 * documented semantics (docs/contract.md sections 3 to 5, docs/rules.md "Windows" and "Changing a
 * rule through the twin"). It shares no code with src/ on purpose: the differential test
 * (test/oracle/differential.test.ts) is only worth something if the two cannot share a mistake.
 *
 * Scope: aggregate rules with `tumbling` or `hopping` windows (sessions: `oracleSessions` at the end), `groupBy: ["$deviceId"]`, a `timestamp`
 * path, `where` of the form `<path> <op> <number|true|false>`, and `select` entries `count()`,
 * `sum(p)`, `min(p)`, `max(p)`, `avg(p)`; anomaly rules with the `threshold` and `missing` detectors
 * (see AnomalyDef). Anything else throws: the oracle never guesses.
 *
 * The semantics it implements, quoted from the documents:
 *  - "Event time: the rule's `timestamp` path (ISO 8601 or epoch ms)" (section 3). "A rule with a
 *    `timestamp` path rejects, for that rule alone, an event whose timestamp is missing or unparsable
 *    (reason `bad-timestamp`)" (section 5).
 *  - "An event stamped more than `maxClockSkew` (per rule, default "5m") ahead of its arrival is
 *    rejected for that rule as `future-timestamp`" (section 5). Arrival is the wall clock.
 *  - "JSON types are strict: "21.5" is a string, not a number" (section 3); "a path missing or not a
 *    number where a number is needed" is rejected: `missing-field` / `not-a-number` (docs/rules.md "Nulls": a
 *    string or boolean is not a number either; `x == true` on a boolean still works).
 *  - "Time windows are aligned to the Unix epoch (hopping windows start at multiples of `hop`) and hold
 *    `start <= t < end`" (section 5); with `window.bounds: "(]"` they hold `start < t <= end`, and
 *    `window.offset` moves every start by that many milliseconds (docs/rules.md "Windows").
 *  - "Watermark: per rule and group, the largest event time seen minus `maxLateness` (default "5s"). [...]
 *    [A window] is final once the watermark passes `end + maxLateness`" (section 5). The watermark moves
 *    with accepted events only (a rejected event, e.g. a future timestamp, must not move it, or one
 *    device's bad clock would make its group's later events too late). An event whose every window is final is `too-late` (docs/contract.md section 3); a hopping
 *    event that still has an open window goes into its open windows only.
 *  - Emissions before a window is final are provisional and are corrected by later events (section 5),
 *    so a window's last emission holds every accepted event of the window: its final content is a pure
 *    function of the group's events in arrival order. Idle flushes, evictions and shutdowns change
 *    when a window is emitted, never what its last revision holds; that is why the aggregate part of
 *    this oracle has no processing-time clock at all (only `missing` reads the connected clock).
 *  - A rule change keeps the rule's state when only `description`, `having` or `output` changed; any
 *    other change emits the open windows under the old definition and starts the rule afresh (docs/rules.md
 *    "Changing a rule through the twin": the same across a restart). Each such definition is an *epoch* here.
 *
 * Order of the per-rule checks (not fixed by the documents; the order in which an event's fields are
 * naturally needed): `where`, timestamp (`bad-timestamp`), clock skew (`future-timestamp`), the
 * aggregate arguments (`missing-field`, `not-a-number`), then lateness (`too-late`).
 */
import type { Run, RunEvent, RunRules } from './oracleRun.js';

/** Default `maxLateness` (docs/contract.md section 5). */
export const ORACLE_DEFAULT_LATENESS_MS = 5_000;
/** Default `maxClockSkew` (docs/contract.md section 5). */
export const ORACLE_DEFAULT_SKEW_MS = 5 * 60_000;

/** The content a window holds once final (what its last revision must carry). */
export interface OracleWindow {
  readonly rule: string;
  /** 0 for the rule's first definition; +1 at each change that starts the rule afresh. */
  readonly epoch: number;
  readonly deviceId: string;
  readonly type: 'tumbling' | 'hopping' | 'session';
  readonly start: number;
  readonly end: number;
  readonly count: number;
  /** null: the aggregate had no value to work on (every argument null under `nulls: "skip"`). */
  readonly values: Readonly<Record<string, number | null>>;
}

export interface OracleResult {
  /** Every window that received at least one accepted event, per rule epoch, in no particular order. */
  readonly windows: OracleWindow[];
  /** Rejections per rule and reason. */
  readonly rejected: Record<string, Record<string, number>>;
  /** Events that passed each rule's `where` (each is then accepted or counted under one reason). */
  readonly considered: Record<string, number>;
  /** Events accepted by each rule (placed in at least one window). */
  readonly accepted: Record<string, number>;
  /** Alerts of anomaly rules, in the order they happen (per group). */
  readonly alerts: OracleAlert[];
}

/** A raised or cleared alert. `time`/`value` are those of the event that raised or cleared it; null for a `missing` raise (no event). */
export interface OracleAlert {
  readonly rule: string;
  readonly deviceId: string;
  readonly state: 'raised' | 'cleared';
  readonly time: number | null;
  readonly value: number | null;
}

/** Parses a documented duration: `"250ms" "30s" "5m" "1h" "1d"` or a number of milliseconds (section 5). */
export function oracleDuration(d: unknown): number {
  if (typeof d === 'number') return d;
  if (typeof d !== 'string') throw new Error(`oracle: not a duration: ${JSON.stringify(d)}`);
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`oracle: not a duration: ${d}`);
  const unit: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  return Number(m[1]) * unit[m[2]!]!;
}

/** Reads a dotted path of own properties (section 3: "Fields are addressed by dotted paths"). */
function readPath(body: Record<string, unknown>, path: string): { found: boolean; value: unknown } {
  let cur: unknown = body;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.prototype.hasOwnProperty.call(cur, part)) return { found: false, value: undefined };
    cur = (cur as Record<string, unknown>)[part];
  }
  return { found: true, value: cur };
}

/** Event time from a timestamp value: epoch ms (a number) or an ISO 8601 string; null when unparsable. */
export function oracleEventTime(raw: unknown): number | null {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : null;
  if (typeof raw !== 'string') return null;
  // The full ISO 8601 date-time form with a zone (what the generator and SimulatedTemperatureSensor write).
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(raw)) return null;
  const t = Date.parse(raw);
  return Number.isFinite(t) ? t : null;
}

interface Where {
  readonly path: string;
  readonly op: string;
  readonly rhs: number | boolean;
}

function parseWhere(src: unknown): Where | null {
  if (src === undefined) return null;
  const m = /^\s*([A-Za-z_][\w.]*)\s*(==|!=|>=|<=|>|<)\s*(-?\d+(?:\.\d+)?|true|false)\s*$/.exec(String(src));
  if (!m) throw new Error(`oracle: unsupported where: ${String(src)}`);
  const rhs = m[3] === 'true' ? true : m[3] === 'false' ? false : Number(m[3]);
  return { path: m[1]!, op: m[2]!, rhs };
}

/** `where` as the documents describe it: a predicate over the event's fields. A missing field or a type mismatch makes it false (the event is not for the rule). */
function whereHolds(w: Where | null, body: Record<string, unknown>): boolean {
  if (w === null) return true;
  const { found, value } = readPath(body, w.path);
  if (!found) return false;
  if (typeof w.rhs === 'boolean') {
    if (typeof value !== 'boolean') return w.op === '!=';
    return w.op === '==' ? value === w.rhs : w.op === '!=' ? value !== w.rhs : false;
  }
  if (typeof value !== 'number') return false;
  switch (w.op) {
    case '==':
      return value === w.rhs;
    case '!=':
      return value !== w.rhs;
    case '>=':
      return value >= w.rhs;
    case '<=':
      return value <= w.rhs;
    case '>':
      return value > w.rhs;
    default:
      return value < w.rhs;
  }
}

type AggFn = 'count' | 'sum' | 'min' | 'max' | 'avg';

interface SelectItem {
  readonly name: string;
  readonly fn: AggFn;
  readonly path: string | null;
}

function parseSelect(select: unknown): SelectItem[] {
  if (select === null || typeof select !== 'object') throw new Error('oracle: select must be an object');
  return Object.entries(select as Record<string, unknown>).map(([name, src]) => {
    const m = /^\s*(count|sum|min|max|avg)\(\s*([A-Za-z_][\w.]*)?\s*\)\s*$/.exec(String(src));
    if (!m) throw new Error(`oracle: unsupported select ${name}: ${String(src)}`);
    const fn = m[1] as AggFn;
    const path = m[2] ?? null;
    // count() counts events, count(p) the events whose p has a value (docs/rules.md "Nulls").
    if (fn !== 'count' && path === null) throw new Error(`oracle: unsupported select ${name}: ${String(src)}`);
    return { name, fn, path };
  });
}

interface RuleDef {
  readonly id: string;
  readonly type: 'tumbling' | 'hopping';
  readonly size: number;
  readonly hop: number;
  /** `bounds: "(]"`: a window holds start < t <= end (docs/rules.md "Windows"). */
  readonly endInclusive: boolean;
  /** `offset`: window starts are at multiples of the hop plus this. */
  readonly offset: number;
  readonly lateness: number;
  readonly skew: number;
  readonly timestamp: string;
  readonly where: Where | null;
  readonly select: SelectItem[];
  /**
   * `nulls: "skip"` (docs/rules.md "Nulls", after Azure Stream Analytics): an argument that is missing or
   * JSON null is left out of its aggregates and the event still counts in `count()`; by default
   * ("reject") such an event is rejected for the rule.
   */
  readonly skipNulls: boolean;
  /** The definition without the fields a rule's state does not depend on (description, having, output). */
  readonly stateKey: string;
}

/**
 * Anomaly rules (docs/contract.md section 5), for the detectors whose decisions are fully documented:
 *  - `threshold {above, hysteresis?}`: "raised when `value > above` [...]; cleared when it is back by
 *    at least `hysteresis`, default 0, i.e. `value <= above - hysteresis`";
 *  - `missing {timeout}`: "raised when a group sends nothing for `timeout`", where silence counts only
 *    time during which inputs could arrive (connected time, section 5); the next
 *    arrival clears it.
 * `cooldown` 0 (the default), no `timestamp` path (event time is the arrival), `groupBy ["$deviceId"]`.
 */
interface AnomalyDef {
  readonly id: string;
  readonly kind: 'anomaly';
  readonly valuePath: string;
  readonly where: Where | null;
  readonly detector: { readonly type: 'threshold'; readonly above: number; readonly hysteresis: number } | { readonly type: 'missing'; readonly timeout: number };
  readonly stateKey: string;
}

function parseAnomaly(id: string, doc: Record<string, unknown>): AnomalyDef {
  const gb = doc.groupBy;
  if (!(Array.isArray(gb) && gb.length === 1 && gb[0] === '$deviceId')) throw new Error(`oracle: ${id}: only groupBy ["$deviceId"]`);
  if (doc.timestamp !== undefined || (doc.cooldown !== undefined && oracleDuration(doc.cooldown) !== 0)) throw new Error(`oracle: ${id}: anomaly rules without timestamp or cooldown only`);
  if (typeof doc.value !== 'string' || !/^[A-Za-z_][\w.]*$/.test(doc.value)) throw new Error(`oracle: ${id}: value must be a path`);
  const d = doc.detector as Record<string, unknown>;
  let detector: AnomalyDef['detector'];
  if (d.type === 'threshold' && typeof d.above === 'number' && d.below === undefined) detector = { type: 'threshold', above: d.above, hysteresis: typeof d.hysteresis === 'number' ? d.hysteresis : 0 };
  else if (d.type === 'missing') detector = { type: 'missing', timeout: oracleDuration(d.timeout) };
  else throw new Error(`oracle: ${id}: detector ${JSON.stringify(d)} not supported`);
  // docs/rules.md "Changing a rule through the twin": description, output, cooldown, alertThreshold and the detector's decision
  // parameters (threshold: above, below, hysteresis; missing: timeout) are not part of the state.
  const { description: _d, output: _o, cooldown: _c, alertThreshold: _a, detector: det, ...rest } = doc;
  const { above: _ab, below: _be, hysteresis: _hy, timeout: _to, ...detState } = det as Record<string, unknown>;
  return { id, kind: 'anomaly', valuePath: doc.value, where: parseWhere(doc.where), detector, stateKey: stableJson({ ...rest, detector: detState }) };
}

/** Stable JSON (keys sorted) so that two documents with the same content compare equal. */
function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

function parseRule(id: string, doc: Record<string, unknown>): RuleDef {
  if (doc.kind !== 'aggregate') throw new Error(`oracle: ${id}: only aggregate rules`);
  const gb = doc.groupBy;
  if (!(Array.isArray(gb) && gb.length === 1 && gb[0] === '$deviceId')) throw new Error(`oracle: ${id}: only groupBy ["$deviceId"]`);
  if (typeof doc.timestamp !== 'string') throw new Error(`oracle: ${id}: a timestamp path is required`);
  const w = doc.window as Record<string, unknown>;
  let type: 'tumbling' | 'hopping';
  let size: number;
  let hop: number;
  if (w.type === 'tumbling') {
    type = 'tumbling';
    size = oracleDuration(w.size);
    hop = size;
  } else if (w.type === 'hopping') {
    type = 'hopping';
    size = oracleDuration(w.size);
    hop = oracleDuration(w.hop);
  } else throw new Error(`oracle: ${id}: window ${String(w.type)} not supported`);
  if (w.bounds !== undefined && w.bounds !== '[)' && w.bounds !== '(]') throw new Error(`oracle: ${id}: window.bounds ${String(w.bounds)}`);
  if (w.offset !== undefined && typeof w.offset !== 'number') throw new Error(`oracle: ${id}: window.offset ${String(w.offset)}`);
  if (doc.nulls !== undefined && doc.nulls !== 'skip' && doc.nulls !== 'reject') throw new Error(`oracle: ${id}: nulls ${String(doc.nulls)}`);
  const { description: _d, having: _h, output: _o, ...stateful } = doc;
  return {
    id,
    type,
    size,
    hop,
    endInclusive: w.bounds === '(]',
    offset: w.offset ?? 0,
    lateness: doc.maxLateness === undefined ? ORACLE_DEFAULT_LATENESS_MS : oracleDuration(doc.maxLateness),
    skew: doc.maxClockSkew === undefined ? ORACLE_DEFAULT_SKEW_MS : oracleDuration(doc.maxClockSkew),
    timestamp: doc.timestamp,
    where: parseWhere(doc.where),
    select: parseSelect(doc.select),
    skipNulls: doc.nulls === 'skip',
    stateKey: stableJson(stateful),
  };
}

/**
 * Start times of the windows that hold `t`: `start <= t < start + size`, or with `endInclusive`
 * `start < t <= start + size` (docs/rules.md "Windows"); starts are at multiples of the hop plus `offset`.
 */
export function windowStartsFor(t: number, size: number, hop: number, endInclusive = false, offset = 0): number[] {
  const starts: number[] = [];
  if (endInclusive) {
    // The last window start strictly before t, then back by hops while the window still reaches t.
    for (let s = offset + (Math.ceil((t - offset) / hop) - 1) * hop; s + size >= t; s -= hop) starts.push(s);
  } else {
    // The last window start at or before t, then back by hops while the window still reaches past t.
    for (let s = offset + Math.floor((t - offset) / hop) * hop; s > t - size; s -= hop) starts.push(s);
  }
  return starts.reverse();
}

interface WindowAcc {
  readonly start: number;
  count: number;
  /** Per select item: the numbers added, nulls left out (aggregates are computed from them at the end, the slow way). */
  readonly items: number[][];
}

interface AnomalyGroup {
  /** threshold: above the limit (until back by the hysteresis); missing: raised for the current silence. */
  raised: boolean;
  /** Connected time of the group's last arrival (`missing`). */
  lastConnected: number;
}

interface AnomalyEpoch {
  readonly def: AnomalyDef;
  readonly groups: Map<string, AnomalyGroup>;
}

interface GroupState {
  /** Largest accepted event time; -Infinity before the first. */
  maxTime: number;
  readonly windows: Map<number, WindowAcc>;
}

interface Epoch {
  readonly def: RuleDef;
  readonly index: number;
  readonly groups: Map<string, GroupState>;
}

/** One aggregate over the values `xs` of its argument (`count()`: `path` null, the window's event count). */
function aggregate(fn: AggFn, path: string | null, xs: number[], count: number): number | null {
  if (fn === 'count') return path === null ? count : xs.length;
  // An aggregate over no value is null (summaries are JSON: no NaN, no Infinity).
  if (xs.length === 0) return null;
  switch (fn) {
    case 'sum':
      return xs.reduce((a, b) => a + b, 0);
    case 'min':
      return Math.min(...xs);
    case 'max':
      return Math.max(...xs);
    default:
      return xs.reduce((a, b) => a + b, 0) / xs.length;
  }
}

/** Runs the oracle over a whole run. */
export function runOracle(run: Run): OracleResult {
  const epochs = new Map<string, Epoch>();
  const finished: Epoch[] = [];
  const rejected: Record<string, Record<string, number>> = {};
  const considered: Record<string, number> = {};
  const accepted: Record<string, number> = {};
  const count = (rec: Record<string, number>, k: string): void => {
    rec[k] = (rec[k] ?? 0) + 1;
  };
  const reject = (rule: string, reason: string): void => count((rejected[rule] ??= {}), reason);

  /** The epoch a removed rule's id starts at when it is added back. */
  const removedAt = new Map<string, number>();
  const anomalies = new Map<string, AnomalyEpoch>();
  const alerts: OracleAlert[] = [];
  const applyRules = (rules: RunRules): void => {
    for (const [id, doc] of Object.entries(rules)) {
      if (doc.kind !== 'anomaly') continue;
      const def = parseAnomaly(id, doc);
      const cur = anomalies.get(id);
      if (cur !== undefined && cur.def.stateKey === def.stateKey) {
        // The detector state carries on; decisions use the new parameters from the next event on.
        anomalies.set(id, { def, groups: cur.groups });
        continue;
      }
      // A change the state depends on: every raised alert ends with a `cleared` (kind `rule-changed`,
      // value null, time of the change: docs/rules.md "Changing a rule through the twin"), and the rule starts afresh.
      if (cur !== undefined) for (const [deviceId, g] of cur.groups) if (g.raised) alerts.push({ rule: id, deviceId, state: 'cleared', time: null, value: null });
      anomalies.set(id, { def, groups: new Map() });
    }
    for (const id of anomalies.keys()) if (rules[id] === undefined) throw new Error(`oracle: ${id}: removing an anomaly rule is not modelled`);
    for (const [id, ep] of epochs) {
      const doc = rules[id];
      if (doc === undefined) {
        finished.push(ep);
        epochs.delete(id);
        // "how many times its id started afresh is kept [...] also for a removed rule" (docs/rules.md
        // "Changing a rule through the twin"): a rule added back is a new epoch after the removed one.
        removedAt.set(id, ep.index + 1);
      }
    }
    for (const [id, doc] of Object.entries(rules)) {
      if (doc.kind === 'anomaly') continue;
      const def = parseRule(id, doc);
      const cur = epochs.get(id);
      if (cur !== undefined && cur.def.stateKey === def.stateKey) {
        // Same state: the open windows and the watermark carry on under the new definition.
        epochs.set(id, { def, index: cur.index, groups: cur.groups });
        continue;
      }
      if (cur !== undefined) finished.push(cur);
      epochs.set(id, { def, index: cur === undefined ? (removedAt.get(id) ?? 0) : cur.index + 1, groups: new Map() });
    }
  };

  const offer = (ep: Epoch, ev: RunEvent, arrival: number): void => {
    const def = ep.def;
    if (!whereHolds(def.where, ev.body)) return;
    count(considered, def.id);
    const ts = readPath(ev.body, def.timestamp);
    const t = ts.found ? oracleEventTime(ts.value) : null;
    if (t === null) return reject(def.id, 'bad-timestamp');
    if (t - arrival > def.skew) return reject(def.id, 'future-timestamp');
    const item: (number | null)[] = [];
    for (const s of def.select) {
      if (s.path === null) continue;
      const v = readPath(ev.body, s.path);
      if (def.skipNulls && (!v.found || v.value === null)) continue;
      if (!v.found) return reject(def.id, 'missing-field');
      if (typeof v.value !== 'number' || !Number.isFinite(v.value)) return reject(def.id, 'not-a-number');
    }
    for (const s of def.select) {
      const v = s.path === null ? null : readPath(ev.body, s.path);
      item.push(v !== null && v.found && typeof v.value === 'number' ? v.value : null);
    }
    let g = ep.groups.get(ev.deviceId);
    if (g === undefined) {
      g = { maxTime: Number.NEGATIVE_INFINITY, windows: new Map() };
      ep.groups.set(ev.deviceId, g);
    }
    const watermark = g.maxTime - def.lateness;
    const open = windowStartsFor(t, def.size, def.hop, def.endInclusive, def.offset).filter((start) => !(watermark > start + def.size + def.lateness));
    if (open.length === 0) return reject(def.id, 'too-late');
    for (const start of open) {
      let w = g.windows.get(start);
      if (w === undefined) {
        w = { start, count: 0, items: def.select.map(() => []) };
        g.windows.set(start, w);
      }
      w.count++;
      def.select.forEach((_s, i) => {
        const x = item[i]!;
        if (x !== null) w.items[i]!.push(x);
      });
    }
    g.maxTime = Math.max(g.maxTime, t);
    count(accepted, def.id);
  };

  const offerAnomaly = (ep: AnomalyEpoch, ev: RunEvent, arrival: number, connected: number): void => {
    const def = ep.def;
    if (!whereHolds(def.where, ev.body)) return;
    count(considered, def.id);
    const v = readPath(ev.body, def.valuePath);
    if (!v.found) return reject(def.id, 'missing-field');
    if (typeof v.value !== 'number' || !Number.isFinite(v.value)) return reject(def.id, 'not-a-number');
    const value = v.value;
    count(accepted, def.id);
    let g = ep.groups.get(ev.deviceId);
    if (g === undefined) {
      g = { raised: false, lastConnected: connected };
      ep.groups.set(ev.deviceId, g);
    }
    const det = def.detector;
    if (det.type === 'missing') {
      g.lastConnected = connected;
      if (g.raised) {
        g.raised = false;
        alerts.push({ rule: def.id, deviceId: ev.deviceId, state: 'cleared', time: arrival, value });
      }
      return;
    }
    if (!g.raised && value > det.above) {
      g.raised = true;
      alerts.push({ rule: def.id, deviceId: ev.deviceId, state: 'raised', time: arrival, value });
    } else if (g.raised && value <= det.above - det.hysteresis) {
      g.raised = false;
      alerts.push({ rule: def.id, deviceId: ev.deviceId, state: 'cleared', time: arrival, value });
    }
  };

  /** Connected time reached `now`: a group silent for more than `timeout` raises (once per silence). */
  const silence = (now: number): void => {
    for (const ep of anomalies.values()) {
      const det = ep.def.detector;
      if (det.type !== 'missing') continue;
      for (const [deviceId, g] of ep.groups) {
        if (g.raised || now - g.lastConnected <= det.timeout) continue;
        g.raised = true;
        alerts.push({ rule: ep.def.id, deviceId, state: 'raised', time: null, value: null });
      }
    }
  };

  applyRules(run.rules);
  for (const step of run.steps) {
    if (step.kind === 'deliver') {
      for (const ev of step.events) {
        for (const ep of epochs.values()) offer(ep, ev, step.wall);
        for (const ep of anomalies.values()) offerAnomaly(ep, ev, step.wall, step.connected);
      }
    } else if (step.kind === 'advance' || step.kind === 'outage') {
      silence(step.connected);
    } else {
      applyRules(step.rules);
    }
  }

  const windows: OracleWindow[] = [];
  for (const ep of [...finished, ...epochs.values()]) {
    for (const [deviceId, g] of ep.groups) {
      for (const w of g.windows.values()) {
        const values: Record<string, number | null> = {};
        ep.def.select.forEach((s, i) => {
          values[s.name] = aggregate(s.fn, s.path, w.items[i]!, w.count);
        });
        windows.push({ rule: ep.def.id, epoch: ep.index, deviceId, type: ep.def.type, start: w.start, end: w.start + ep.def.size, count: w.count, values });
      }
    }
  }
  return { windows, rejected, considered, accepted, alerts };
}

/** One event of a group for {@link oracleSessions}: its time and its `v`. */
export interface OracleTimedValue {
  readonly t: number;
  readonly v: number;
}

/**
 * Session windows of one group whose events arrive in time order (sessionDifferential.test.ts), read from
 * the documents and nothing else:
 *  - docs/rules.md "Windows": a session runs "from its first event until `gap` without events or `maxSize`
 *    long: `[start, min(last+gap, start+maxSize))`" (an event at exactly the end opens the next session);
 *  - with `maxSizeAt: "aligned"` (docs/rules.md, after Azure Stream Analytics,
 *    https://learn.microsoft.com/stream-analytics-query/session-window-azure-stream-analytics): the length
 *    is checked "at t = 0, 10, 20, 30, etc." for a maximum of 10 (multiples of `maxSize` since the epoch),
 *    so a session is cut at the first check at which it is `maxSize` long or longer, and if the events
 *    go on within `gap` "a new window is opened at the same point".
 * Returns each session's bounds, count and the `n`/`sum` a `select: {n: count(), sum: sum(v)}` gives.
 */
export function oracleSessions(events: readonly OracleTimedValue[], gap: number, maxSize: number, aligned: boolean): Array<{ start: number; end: number; count: number; sum: number }> {
  const out: Array<{ start: number; end: number; count: number; sum: number }> = [];
  /** Where a session that started at `start` is cut for its length. */
  const cut = (start: number): number => {
    if (!aligned) return start + maxSize;
    // The checks are the multiples of maxSize; walk them from the one at or before the start.
    let check = Math.floor(start / maxSize) * maxSize;
    while (check - start < maxSize) check += maxSize;
    return check;
  };
  let cur: { start: number; last: number; count: number; sum: number } | null = null;
  for (const e of events) {
    if (cur !== null && e.t >= Math.min(cur.last + gap, cut(cur.start))) {
      const timeout: number = cur.last + gap;
      const c: number = cut(cur.start);
      out.push({ start: cur.start, end: Math.min(timeout, c), count: cur.count, sum: cur.sum });
      // Closed at a check while the events still came within gap: the next session opens at the check.
      cur = aligned && c < timeout && e.t < timeout ? { start: c, last: e.t, count: 1, sum: e.v } : null;
      if (cur !== null) continue;
    }
    if (cur === null) cur = { start: e.t, last: e.t, count: 1, sum: e.v };
    else {
      cur.last = e.t;
      cur.count++;
      cur.sum += e.v;
    }
  }
  if (cur !== null) out.push({ start: cur.start, end: Math.min(cur.last + gap, cut(cur.start)), count: cur.count, sum: cur.sum });
  return out;
}
