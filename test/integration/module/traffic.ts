/**
 * SimulatedTemperatureSensor-shaped traffic (docs/contract.md section 3) and the naive computation of the
 * summaries rules/default.json must produce from it (machine1m, ambient1m: 1-minute tumbling windows
 * per `$deviceId` on `timeCreated`).
 *
 * Exactness: the module aggregates with a compensated sum and Welford's variance; the test with a
 * plain sum and the two-pass formula. Both give the same bits when every intermediate is exact, so
 * the values are dyadic (multiples of 1/4 .. 1/64) and, per device and window, the machine
 * temperatures are built so that EVERY running mean is a multiple of 1/4 (x_k = k*m_k - (k-1)*m_(k-1)).
 * Then Welford's steps are exact, sum/n is exact, and only the final division by n-1 and the sqrt
 * round, identically on both sides. Any other deviation (a lost event, a double count) shows.
 */
import { mulberry32 } from '../../../src/util/mulberry32.js';

/** One input message: who sends it (`$.cdid`), its event time, and the body. */
export interface Reading {
  readonly deviceId: string;
  readonly t: number;
  readonly body: Record<string, unknown>;
}

export const MINUTE = 60_000;

/** 2026-11-26T03:00:00Z, the contract's example hour. */
export const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);

/** SimulatedTemperatureSensor writes .NET's `DateTime.UtcNow` with 7 fractional digits. */
export function dotnetTime(t: number): string {
  return new Date(t).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

/** prng: mulberry32 (src/util/mulberry32.ts), seeded so every run sees the same data. */
const prng = mulberry32;

/** A SimulatedTemperatureSensor body. */
export function sensorBody(t: number, machineTemp: number, pressure: number, ambientTemp: number, humidity: number): Record<string, unknown> {
  return { machine: { temperature: machineTemp, pressure }, ambient: { temperature: ambientTemp, humidity }, timeCreated: dotnetTime(t) };
}

/**
 * `perWindow` readings per device in each of `minutes` one-minute windows from `start`, every
 * 60/perWindow s (plus a per-device offset of a few ms), sorted by event time then device.
 */
export function simulatedTraffic(opts: { devices: string[]; start: number; minutes: number; perWindow: number; seed: number }): Reading[] {
  const rnd = prng(opts.seed);
  const step = MINUTE / opts.perWindow;
  const out: Reading[] = [];
  opts.devices.forEach((deviceId, d) => {
    let base = 21 + 4 * d; // each device ramps from its own level
    for (let w = 0; w < opts.minutes; w++) {
      let prevMean = 0;
      for (let k = 1; k <= opts.perWindow; k++) {
        // Running mean m_k: a multiple of 1/4 that drifts upward like the sensor's ramp.
        const mean = k === 1 ? base : prevMean + (rnd() < 0.5 ? 0 : 0.25);
        const temp = k * mean - (k - 1) * prevMean;
        prevMean = mean;
        const t = opts.start + w * MINUTE + (k - 1) * step + 7 * d + 123;
        const pressure = 1 + Math.round(rnd() * 8) / 64;
        const ambient = 20 + Math.round(rnd() * 16) / 8;
        const humidity = 24 + Math.floor(rnd() * 3);
        out.push({ deviceId, t, body: sensorBody(t, temp, pressure, ambient, humidity) });
      }
      base = prevMean + 0.5;
    }
  });
  return out.sort((a, b) => a.t - b.t || a.deviceId.localeCompare(b.deviceId));
}

/** One expected `summaries` body (docs/contract.md section 4). */
export interface SummaryBody {
  rule: string;
  group: { deviceId: string };
  window: { type: 'tumbling'; start: string; end: string };
  count: number;
  values: Record<string, number>;
  revision: number;
}

const avg = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
const stdev = (xs: number[]): number => {
  const m = avg(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
};
const num = (o: unknown, k: string): number | undefined => {
  if (o === null || typeof o !== 'object' || !Object.prototype.hasOwnProperty.call(o, k)) return undefined;
  const v = (o as Record<string, unknown>)[k];
  return typeof v === 'number' ? v : undefined;
};

/**
 * The naive summaries of rules/default.json's machine1m and ambient1m for the windows that end
 * before `closedBefore` (the windows the traffic closes). A reading counts for a rule only when
 * every field the rule reads is an own number (JSON types are strict; `__proto__` is just a key).
 */
export function expectedDefaultSummaries(readings: readonly Reading[], closedBefore: number): SummaryBody[] {
  const cells = new Map<string, { deviceId: string; start: number; m: Array<[number, number]>; a: Array<[number, number]> }>();
  for (const r of readings) {
    const start = Math.floor(r.t / MINUTE) * MINUTE;
    if (start + MINUTE > closedBefore) continue;
    const key = `${r.deviceId}|${start}`;
    const c = cells.get(key) ?? { deviceId: r.deviceId, start, m: [], a: [] };
    cells.set(key, c);
    const own = (k: string): unknown => (Object.prototype.hasOwnProperty.call(r.body, k) ? r.body[k] : undefined);
    const mt = num(own('machine'), 'temperature');
    const mp = num(own('machine'), 'pressure');
    if (mt !== undefined && mp !== undefined && mt > -273.15) c.m.push([mt, mp]);
    const at = num(own('ambient'), 'temperature');
    const ah = num(own('ambient'), 'humidity');
    if (at !== undefined && ah !== undefined) c.a.push([at, ah]);
  }
  const out: SummaryBody[] = [];
  for (const c of cells.values()) {
    const window = { type: 'tumbling' as const, start: new Date(c.start).toISOString(), end: new Date(c.start + MINUTE).toISOString() };
    if (c.m.length > 0) {
      const t = c.m.map((x) => x[0]);
      const p = c.m.map((x) => x[1]);
      out.push({
        rule: 'machine1m', group: { deviceId: c.deviceId }, window, count: c.m.length, revision: 0,
        values: { tempAvg: avg(t), tempMin: Math.min(...t), tempMax: Math.max(...t), tempStdev: stdev(t), pressureAvg: avg(p), pressureMax: Math.max(...p) },
      });
    }
    if (c.a.length > 0) {
      const t = c.a.map((x) => x[0]);
      const h = c.a.map((x) => x[1]);
      out.push({
        rule: 'ambient1m', group: { deviceId: c.deviceId }, window, count: c.a.length, revision: 0,
        values: { tempAvg: avg(t), tempMin: Math.min(...t), tempMax: Math.max(...t), humidityAvg: avg(h) },
      });
    }
  }
  return sortSummaries(out);
}

/** Stable order for comparing sets of summaries: rule, device, window start. */
export function sortSummaries<T extends { rule: string; group: { deviceId?: string }; window: { start: string } }>(xs: T[]): T[] {
  return [...xs].sort((a, b) => a.rule.localeCompare(b.rule) || String(a.group.deviceId).localeCompare(String(b.group.deviceId)) || a.window.start.localeCompare(b.window.start));
}

/** One message per device far enough ahead in event time to close every window before `t` (watermark = max time - 5 s). */
export function closers(devices: readonly string[], t: number): Reading[] {
  return devices.map((deviceId, d) => ({ deviceId, t: t + d, body: sensorBody(t + d, 30, 1, 20, 25) }));
}
