import { describe, expect, it } from 'vitest';
import type { EdgeHubEmulator, UpstreamMessage } from '../../helpers/edgeHubEmulator.js';
import { closers, InputDriver, sleep, startModule, tempDir, TrafficSource, useEmulator, waitUntil, writeRules } from './durabilityHarness.js';

/*
 * Through the built module and the real SDK: edgeHub's listener goes down
 * for 10 s while devices keep sending (their inputs queue in the module's broker session).
 * - Silence only counts while inputs can arrive (docs: connected time, src/time/connectedTime.ts).
 *   A device that kept sending through the outage gets no `missing` alert; one that really stopped does.
 * - The forwarder's backoff ends with the reconnect: summaries that failed during the
 *   outage, and an alert raised after it, reach edgeHub within about a second of the reconnect.
 */

const SENDING = ['live-a', 'live-b', 'live-c'];
const rules = {
  silent: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], value: 'v', detector: { type: 'missing', timeout: '3s' }, output: 'alerts' },
  hot: { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', value: 'v', detector: { type: 'threshold', above: 1000 }, output: 'alerts' },
  sum1s: {
    kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'tumbling', size: '1s' }, maxLateness: '0s', idleTimeout: '1h',
    select: { n: 'count()', sum: 'sum(v)' }, output: 'summaries',
  },
};

interface Seen {
  at: number;
  m: UpstreamMessage;
  body: { rule: string; state?: string; kind?: string; group: { deviceId: string }; time?: string };
}

describe('an edgeHub outage while devices keep sending: silence counts only while connected, the backlog goes out at the reconnect', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('no `missing` for devices that kept sending, one for the device that stopped; the backlog and a fresh alert go out within a second of the reconnect', { timeout: 150_000 }, async () => {
    const M = 'eddy-oc';
    const seen: Seen[] = [];
    emu.on('upstream', (m: UpstreamMessage) => {
      if (m.moduleId === M) seen.push({ at: Date.now(), m, body: JSON.parse(m.body.toString('utf8')) as Seen['body'] });
    });
    const mc = await startModule(emu, M, { dataDir: tempDir(), rulesFile: writeRules(rules) });
    const traffic = new TrafficSource([...SENDING, 'stopper'], 17, { stepMs: 250 });
    const input = new InputDriver(emu, M);
    let down = false;
    let reconnected = true;
    input.gate = () => down || (reconnected && emu.isConnected(M) && input.caughtUp());
    let stop = false;
    let stopperStopped = false;
    const driver = (async () => {
      while (!stop) {
        const m = traffic.message();
        if (m.deviceId === 'stopper' && stopperStopped) continue;
        await input.send(m);
        await sleep(60);
      }
    })();
    await sleep(4_000);
    stopperStopped = true;
    await sleep(500);
    // Summaries in flight when the link drops: their PUBACKs are held, so their sends fail with the outage.
    emu.delayPubacks(60_000);
    for (const m of closers(SENDING, traffic.maxTs() + 30_000)) await input.send(m, { ordered: false });
    await sleep(300);
    const reconnectsBefore = mc.logs.filter((l) => l.msg === 'reconnected to edgeHub').length;
    down = true;
    reconnected = false;
    const outage = emu.outage(10_000);
    await sleep(100);
    emu.delayPubacks(0);
    await outage;
    down = false;
    const reconnectLine = await mc.waitForLog(
      (l) => l.msg === 'reconnected to edgeHub' && mc.logs.filter((x) => x.msg === 'reconnected to edgeHub').length > reconnectsBefore,
      60_000,
      'a reconnect after the outage',
    );
    const reconnectAt = Date.parse(String(reconnectLine.time));
    reconnected = true;
    await waitUntil(() => input.caughtUp(), 30_000, 'the backlog acknowledged');
    await sleep(2_000);
    // A fresh alert after the reconnect.
    const alertSentAt = Date.now();
    await input.send({ deviceId: 'hot-1', readings: [{ deviceId: 'hot-1', ts: traffic.maxTs(), v: 5_000 }] });
    await waitUntil(() => seen.some((s) => s.body.rule === 'hot' && s.body.state === 'raised'), 40_000, 'the fresh alert upstream');
    const alertMs = seen.find((s) => s.body.rule === 'hot' && s.body.state === 'raised')!.at - alertSentAt;
    // The stopped device really is silent: its `missing` raise comes (connected time goes on after the drain).
    await waitUntil(() => seen.some((s) => s.body.rule === 'silent' && s.body.group.deviceId === 'stopper' && s.body.state === 'raised'), 40_000, 'the stopper raised');
    stop = true;
    await driver;

    const firstSummaryAfter = seen.find((s) => s.body.rule === 'sum1s' && s.at >= reconnectAt);
    const backlogMs = firstSummaryAfter === undefined ? Infinity : firstSummaryAfter.at - reconnectAt;
    const falseMissing = seen.filter((s) => s.body.rule === 'silent' && s.body.state === 'raised' && SENDING.includes(s.body.group.deviceId));
    const retries = mc.logs.filter((l) => l.msg === 'forwarder: send failed, backing off');
    console.info(`[outage clock] first summary ${backlogMs} ms after the reconnect, fresh alert ${alertMs} ms after its input, ${falseMissing.length} false missing raises, ${retries.length} backoff lines`);
    expect(falseMissing.map((s) => `${s.body.group.deviceId} ${s.body.time}`)).toEqual([]);
    expect(backlogMs).toBeLessThan(1_500);
    expect(alertMs).toBeLessThan(1_000);
    // The stopper's raise: one, and its clear never comes (it never sends again).
    expect(seen.filter((s) => s.body.rule === 'silent' && s.body.group.deviceId === 'stopper' && s.body.state === 'raised')).toHaveLength(1);
  });
});
