import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, startModule, upstreamOf, useEmulator, waitForUpstreamCount } from './moduleProcess.js';
import { closers, dotnetTime, expectedDefaultSummaries, MINUTE, type Reading, sensorBody, simulatedTraffic, sortSummaries, type SummaryBody, T0 } from './traffic.js';

/*
 * docs/contract.md section 3 with the built module and the default rules: hostile bodies
 * interleaved with SimulatedTemperatureSensor traffic. Bad data is data: every rejection is counted
 * under its reason (getStats), valid summaries stay exact, the module stays up.
 *
 * Per-rule rejections follow from rules/default.json: machine1m (where + timestamp + numbers),
 * ambient1m (timestamp + numbers), machineOverheat and machineTempJump (timestamp + value),
 * sensorSilent (value only, no timestamp).
 */

const DEVICES = ['sensor-1', 'sensor-2'];
const MINUTES = 2;

/** What one message is expected to add to getStats: `received` elements and rejections by reason. */
interface Sent {
  text: string | Buffer;
  deviceId: string;
  received: number;
  rejected: Record<string, number>;
  /** Readings that must count in windows (decoded from `text` the way JSON.parse does: `__proto__` is an own key). */
  counts: Reading[];
}

const valid = (r: Reading): Sent => ({ text: JSON.stringify(r.body), deviceId: r.deviceId, received: 1, rejected: {}, counts: [r] });

/** JSON text whose FIRST key is `__proto__` (an object literal would set the prototype instead). */
const withProtoKey = (protoJson: string, body: Record<string, unknown>): string => `{"__proto__":${protoJson},${JSON.stringify(body).slice(1)}`;

function nested(depth: number): string {
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** Builds the interleaved message list: each hostile kind once, at a fixed place in the valid stream. */
function hostileStream(readings: Reading[]): Sent[] {
  const out: Sent[] = [];
  const byDevice = (d: string): Reading[] => readings.filter((r) => r.deviceId === d);
  const batchPair = byDevice('sensor-2').slice(2, 4); // sent as one batch with bad elements instead of alone
  const protoExtra = new Set([byDevice('sensor-1')[1], byDevice('sensor-2')[7]]);
  const hostileAt = new Map<number, (r: Reading) => Sent[]>([
    [3, (r) => [{ text: '{"machine": {"temperature": 21.5', deviceId: r.deviceId, received: 1, rejected: { 'not-json': 1 }, counts: [] }]],
    [5, (r) => [{ text: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), deviceId: r.deviceId, received: 1, rejected: { 'not-utf8': 1 }, counts: [] }]],
    [7, (r) => ['42', '"hello"', 'null'].map((text) => ({ text, deviceId: r.deviceId, received: 1, rejected: { 'not-object': 1 }, counts: [] }))],
    [8, (r) => [{ text: '[]', deviceId: r.deviceId, received: 0, rejected: {}, counts: [] }]],
    [9, (r) => {
      const big = { ...sensorBody(r.t + 1, 25, 1, 20, 25), pad: 'x'.repeat(300 * 1024) };
      return [{ text: JSON.stringify(big), deviceId: r.deviceId, received: 1, rejected: { 'too-large': 1 }, counts: [] }];
    }],
    [11, (r) => {
      // Valid fields, but nested 100 deep: the whole message is rejected, nothing of it counts.
      const text = `{"machine":{"temperature":25,"pressure":1},"ambient":{"temperature":20,"humidity":25},"timeCreated":"${dotnetTime(r.t + 1)}","deep":${nested(100)}}`;
      return [{ text, deviceId: r.deviceId, received: 1, rejected: { 'too-deep': 1 }, counts: [] }];
    }],
    [13, (r) => {
      // JSON types are strict: strings are not numbers, for every rule that reads them.
      const text = JSON.stringify({ machine: { temperature: '21.5', pressure: '1.0' }, ambient: { temperature: '20', humidity: '25' }, timeCreated: dotnetTime(r.t + 1) });
      return [{ text, deviceId: r.deviceId, received: 1, rejected: { 'not-a-number': 5 }, counts: [] }];
    }],
    [15, (r) => {
      // An unparsable timestamp: rejected by the four rules that read timeCreated; sensorSilent has none.
      const text = JSON.stringify({ ...sensorBody(r.t + 1, 25, 1, 20, 25), timeCreated: 'yesterday' });
      return [{ text, deviceId: r.deviceId, received: 1, rejected: { 'bad-timestamp': 4 }, counts: [] }];
    }],
    [17, (r) => {
      // `machine` only behind `__proto__`: never read through a prototype, so it is missing for the four
      // rules that need it, while ambient1m counts the message.
      const body = { ambient: { temperature: 21.25, humidity: 26 }, timeCreated: dotnetTime(r.t + 1) };
      const text = withProtoKey('{"machine":{"temperature":99,"pressure":1}}', body);
      return [{ text, deviceId: r.deviceId, received: 1, rejected: { 'missing-field': 4 }, counts: [{ deviceId: r.deviceId, t: r.t + 1, body: JSON.parse(text) as Record<string, unknown> }] }];
    }],
    [19, (r) => [{
      // No machine and no timeCreated: machine1m's `where` and sensorSilent's value miss a field; the other three the timestamp.
      text: '{"constructor":{"prototype":{"polluted":1}},"__proto__":{"polluted":1}}',
      deviceId: r.deviceId, received: 1, rejected: { 'missing-field': 2, 'bad-timestamp': 3 }, counts: [],
    }]],
  ]);
  readings.forEach((r, i) => {
    if (r === batchPair[0]) {
      // sent later, inside the batch
    } else if (r === batchPair[1]) {
      // A batch: each element stands alone.
      const elements = [JSON.stringify(batchPair[0]!.body), '5', '"x"', 'null', '[1,2]', JSON.stringify(batchPair[1]!.body)];
      out.push({ text: `[${elements.join(',')}]`, deviceId: r.deviceId, received: 6, rejected: { 'not-object': 4 }, counts: [...batchPair] });
    } else if (protoExtra.has(r)) {
      const text = withProtoKey('{"machine":{"temperature":1000}}', r.body);
      out.push({ text, deviceId: r.deviceId, received: 1, rejected: {}, counts: [{ ...r, body: JSON.parse(text) as Record<string, unknown> }] });
    } else out.push(valid(r));
    out.push(...(hostileAt.get(i)?.(r) ?? []));
  });
  return out;
}

describe('built module: hostile bodies among valid traffic', () => {
  let emu: EdgeHubEmulator;

  useEmulator((e) => (emu = e));

  it('valid summaries stay exact, getStats counts every rejection by reason, the module stays up', { timeout: 60_000 }, async () => {
    const M = 'eddy-hostile';
    const readings = simulatedTraffic({ devices: DEVICES, start: T0, minutes: MINUTES, perWindow: 6, seed: 11 });
    const stream = [...hostileStream(readings), ...closers(DEVICES, T0 + MINUTES * MINUTE + 10_000).map(valid)];
    const counted = stream.flatMap((s) => s.counts);
    const expected = expectedDefaultSummaries(counted, T0 + MINUTES * MINUTE);
    expect(expected).toHaveLength(2 * DEVICES.length * MINUTES);

    const mp = await startModule(emu, M);
    for (const s of stream) await emu.sendInput(M, 'telemetry', s.text, { deviceId: s.deviceId });
    await waitForUpstreamCount(emu, M, (m) => m.output === 'summaries', expected.length, 20_000);
    expect((await emu.invokeMethod(M, 'flush', null)).status).toBe(200);

    const got = upstreamOf(emu, M, 'summaries').map((m) => bodyOf<SummaryBody>(m));
    expect(sortSummaries(got)).toEqual(expected);
    // The `__proto__`-only message counted for ambient1m and not for machine1m.
    const at = readings[17]!;
    const start = new Date(Math.floor(at.t / MINUTE) * MINUTE).toISOString();
    const a = got.find((b) => b.rule === 'ambient1m' && b.group.deviceId === at.deviceId && b.window.start === start);
    const m = got.find((b) => b.rule === 'machine1m' && b.group.deviceId === at.deviceId && b.window.start === start);
    expect(a!.count).toBe(m!.count + 1);

    const rejected: Record<string, number> = {};
    for (const s of stream) for (const [k, n] of Object.entries(s.rejected)) if (n > 0) rejected[k] = (rejected[k] ?? 0) + n;
    const stats = await emu.invokeMethod(M, 'getStats', null);
    expect(stats.status).toBe(200);
    const payload = stats.payload as { received: number; rejected: Record<string, number>; outbox: { pending: number } };
    expect(payload.received).toBe(stream.reduce((n, s) => n + s.received, 0));
    expect(payload.rejected).toEqual(rejected); // exactly: no reason more, none less
    expect(payload.outbox.pending).toBe(0);
    expect(mp.exited).toBe(false);
    expect(mp.logs.some((l) => l.level === 'fatal')).toBe(false);
  });
});
