/**
 * Hostile rules and bodies end to end (docs/contract.md section 3): the built module (`node dist/main.js`) against the edgeHub emulator receives a
 * desired patch of 1,000 rules, 25 of them hostile, then a stream of valid telemetry with hostile
 * bodies interleaved. The good rules keep producing exact summaries; the reported properties list
 * every rejected rule with its error and `config.status: "partial"`; `GET /metrics` counts every
 * received element and every rejection under its reason, equal to what the test sent.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/freePort.js';
import { type EdgeHubEmulator, startEdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, cleanupModules, startModule, upstreamOf, waitForUpstreamCount, waitUntil } from '../module/moduleProcess.js';
import { METRIC_NAMES } from '../../../src/metrics/metrics.js';

const M = 'eddy';
const T0 = Date.UTC(2026, 10, 26, 3, 0, 0);
const DEFAULT_IDS = ['machine1m', 'ambient1m', 'machineOverheat', 'machineTempJump', 'sensorSilent'];

/** Good rule `i`: counts and sums the events whose `k` is i mod 10, per device, per minute. */
function goodRule(i: number): Record<string, unknown> {
  return { kind: 'aggregate', groupBy: ['$deviceId'], timestamp: 't', where: `k == ${i % 10}`, window: { type: 'tumbling', size: '1m' }, select: { n: 'count()', s: 'sum(v)' } };
}

const HOSTILE: Array<[Record<string, unknown>, RegExp]> = [
  [{ kind: 'anomaly', value: 'import({polluted: 1})', detector: { type: 'threshold', above: 1 } }, /value: function "import" is not allowed/],
  [{ kind: 'anomaly', value: 'v.constructor', detector: { type: 'threshold', above: 1 } }, /value: field name "constructor" is not allowed/],
  [{ kind: 'anomaly', value: 'f(x) = f(x)', detector: { type: 'threshold', above: 1 } }, /value: function definition is not allowed/],
  [{ kind: 'aggregate', window: { type: 'tumbling', size: 0 }, select: { n: 'count()' } }, /window: window\.size must be greater than 0/],
  [{ kind: 'aggregate', window: { type: 'hopping', size: '1m', hop: '2m' }, select: { n: 'count()' } }, /window: window\.hop must not be greater than window\.size/],
  [{ kind: 'aggregate', window: { type: 'tumbling', size: '1y' }, select: { n: 'count()' } }, /window\.size: must be a duration/],
  [{ kind: 'aggregate', window: { type: 'tumbling', size: 1 }, maxLateness: '7d', select: { n: 'count()' } }, /maxLateness: a group would keep up to 604800001 windows/],
  [{ kind: 'anomaly', value: 'v', detector: { type: 'zscore', window: 1e9, threshold: 3 } }, /detector: window must be <= 1000000/],
  [{ kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'evaluate("1")' } }, /select\.n: function "evaluate" is not allowed/],
  [{ kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' }, maxGroups: 1e9 }, /maxGroups: must be <= 1000000/],
];

interface MetricSample { name: string; labels: Record<string, string>; value: number }

function parseMetrics(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

let emu: EdgeHubEmulator;
let failed = false;
beforeAll(async () => {
  emu = await startEdgeHubEmulator();
});
afterEach(async (ctx) => {
  failed = ctx.task.result?.state === 'fail';
  await cleanupModules(failed);
});
afterAll(async () => {
  await emu?.close();
});

describe('hostile twin and hostile traffic against the built module', () => {
  it('runs the good rules of a 1,000-rule patch exactly, reports the hostile ones, and counts every rejection in /metrics', async () => {
    const port = await freePort();
    await startModule(emu, M, { extra: { EDDY_METRICS_PORT: String(port), EDDY_LOG_LEVEL: 'info' } });

    const rules: Record<string, unknown> = {};
    for (const id of DEFAULT_IDS) rules[id] = null; // file rules off: only this patch's rules run
    const expectedErrors = new Map<string, RegExp>();
    const good: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const id = `r${String(i).padStart(4, '0')}`;
      if (i % 40 === 13) {
        const [doc, re] = HOSTILE[Math.floor(i / 40) % HOSTILE.length]!;
        rules[id] = doc;
        expectedErrors.set(id, re);
      } else {
        rules[id] = goodRule(i);
        good.push(i);
      }
    }
    expect(expectedErrors.size).toBe(25);
    const version = emu.pushDesired(M, { rules });
    await waitUntil(() => (emu.twin(M).reported as { config?: { desiredVersion?: number } }).config?.desiredVersion === version, 60_000, 'the 1,000-rule patch reported');
    const reported = emu.twin(M).reported as unknown as { config: { status: string; errors: unknown }; rules: Record<string, { status: string; error?: string }> };
    expect(reported.config.status).toBe('partial');
    for (const [id, re] of expectedErrors) {
      expect(reported.rules[id]?.status, id).toBe('rejected');
      expect(reported.rules[id]?.error, id).toMatch(re);
    }
    expect(Object.values(reported.rules).filter((r) => r?.status === 'active')).toHaveLength(975);

    // Traffic: per device 100 events in the first minute (k = j mod 10, v = j), hostile bodies in
    // between, then one closer per k at T0 + 2 min so every good rule's first window closes.
    const devices = ['sensor-1', 'sensor-2'];
    const sent: Array<{ deviceId: string; body: string | Buffer }> = [];
    const expectRejected: Record<string, number> = {};
    let expectReceived = 0;
    const add = (reason: string, n: number) => (expectRejected[reason] = (expectRejected[reason] ?? 0) + n);
    const rulesFor = (k: number) => good.filter((i) => i % 10 === k).length;
    for (const deviceId of devices) {
      for (let j = 0; j < 100; j++) {
        const body = { k: j % 10, v: j, t: T0 + j * 100 };
        if (j === 50) {
          // A batch: one good element and three bad ones (each counts as received).
          sent.push({ deviceId, body: JSON.stringify([body, 1, 'x', [body]]) });
          expectReceived += 4;
          add('not-object', 3);
        } else {
          sent.push({ deviceId, body: JSON.stringify(body) });
          expectReceived += 1;
        }
        if (j % 10 === 5) {
          const hostile: Array<[string | Buffer, string]> = [
            ['{"k": 1, "v": ', 'not-json'],
            [Buffer.from([0x7b, 0x22, 0x6b, 0x22, 0x3a, 0xff, 0x7d]), 'not-utf8'],
            ['"just a string"', 'not-object'],
            [`{"k":1,"pad":"${'x'.repeat(300 * 1024)}"}`, 'too-large'],
            ['{"a":'.repeat(40) + '1' + '}'.repeat(40), 'too-deep'],
          ];
          const [b, reason] = hostile[(j / 10) % hostile.length | 0]!;
          sent.push({ deviceId, body: b });
          expectReceived += 1;
          add(reason, 1);
        }
      }
      // Per-rule rejections, predicted from the rule list: the where passes for i mod 10 == k only.
      sent.push({ deviceId, body: JSON.stringify({ k: 3, v: 1, t: 'not a time' }) });
      expectReceived += 1;
      add('bad-timestamp', rulesFor(3));
      sent.push({ deviceId, body: JSON.stringify({ k: 4, v: '21.5', t: T0 + 5 }) });
      expectReceived += 1;
      add('not-a-number', rulesFor(4));
      sent.push({ deviceId, body: `{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"k":6,"t":${T0 + 6}}` });
      expectReceived += 1;
      add('missing-field', rulesFor(6)); // no v: sum(v) fails
      for (let k = 0; k < 10; k++) {
        sent.push({ deviceId, body: JSON.stringify({ k, v: 0, t: T0 + 120_000 + k }) });
        expectReceived += 1;
      }
    }
    for (const m of sent) await emu.sendInput(M, 'telemetry', m.body, { deviceId: m.deviceId });

    // 975 rules x 2 devices: one closed window each.
    const summaries = await waitForUpstreamCount(emu, M, (m) => m.output === 'summaries', 975 * 2, 120_000);
    expect(summaries).toHaveLength(975 * 2);
    for (const m of summaries) {
      const s = bodyOf<{ rule: string; group: { deviceId: string }; count: number; values: { n: number; s: number } }>(m);
      const k = Number(s.rule.slice(1)) % 10;
      // j = k, k+10, ..., k+90: ten events summing to 10k + 450 (the batch's good element included).
      expect(s.values, s.rule).toEqual({ n: 10, s: 10 * k + 450 });
      expect(s.count).toBe(10);
    }
    expect(upstreamOf(emu, M).filter((m) => m.output !== 'summaries')).toEqual([]);

    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    const samples = parseMetrics(await res.text());
    const received = samples.filter((s) => s.name === METRIC_NAMES.received);
    expect(received.map((s) => [s.labels.input, s.value])).toEqual([['telemetry', expectReceived]]);
    const rejected: Record<string, number> = {};
    for (const s of samples) if (s.name === METRIC_NAMES.rejected && s.value > 0) rejected[s.labels.reason!] = s.value;
    expect(rejected).toEqual(expectRejected);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
  }, 240_000);
});
