import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { inputTopic, publish, type ScriptedEdgeHub, startScriptedEdgeHub } from '../../helpers/scriptedEdgeHub.js';
import { cleanupModules, spawnModule, tempDataDir, waitUntil } from './moduleProcess.js';

/*
 * The built module (`node dist/main.js`, real SDK) against an edgeHub that re-delivers in the same
 * TCP write as the CONNACK (test/helpers/scriptedEdgeHub.ts; MQTT 3.1.1 section 4.4): once after a
 * SIGKILL (the input was logged, its PUBACK counted as lost) together with an input stored while the
 * module was down, once after a dropped link. Every reading must count once in its window: the
 * re-delivery is dropped as `redelivered` (docs/contract.md section 8), the new input is not lost.
 */

const DEVICE = 'dev1', M = 'eddy-redeliver';
const TOPIC = inputTopic(DEVICE, M, 'telemetry', 'dev-a');
/** With the sender's messageId (`$.mid`): a re-delivery carries it again, and the input log must keep it across the SIGKILL. */
const topicWithId = (id: string): string => `${TOPIC}&%24.mid=${id}`;
const T = Date.UTC(2026, 10, 26, 3, 0, 0);
const MINUTE = 60_000;
const reading = (ts: number, v: number): string => JSON.stringify({ ts, v });

let hub: ScriptedEdgeHub | undefined;
afterEach(async (ctx) => {
  await cleanupModules(ctx.task.result?.state === 'fail');
  await hub?.close();
  hub = undefined;
});

/** The last summary upstream of the window starting at `start`: its count and sum. */
function windowAt(h: ScriptedEdgeHub, start: number): { count: number; sum: number } | undefined {
  const bodies = h.outputs.map((o) => JSON.parse(o.body) as { window?: { start: string }; count: number; revision: number; values: { sum: number } });
  const mine = bodies.filter((b) => b.window !== undefined && Date.parse(b.window.start) === start).sort((a, b) => a.revision - b.revision);
  const last = mine.at(-1);
  return last === undefined ? undefined : { count: last.count, sum: last.values.sum };
}

describe('re-delivery in the same TCP write as the CONNACK, built module', () => {
  it.each([
    ['without a messageId', (): string => TOPIC],
    ['with the sender\'s messageIds', (n: number): string => topicWithId(`reading-${n}`)],
  ])('after a SIGKILL and after a dropped link, %s: each reading counts once, the input stored meanwhile is not lost', { timeout: 90_000 }, async (_name, topic) => {
    hub = await startScriptedEdgeHub();
    const rulesDir = tempDataDir('eddy-redeliver-rules-');
    const rulesFile = path.join(rulesDir, 'rules.json');
    writeFileSync(rulesFile, JSON.stringify({
      m1: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'tumbling', size: '1m' }, maxLateness: '1s', select: { sum: 'sum(v)' }, output: 'summaries' },
    }));
    const dataDir = tempDataDir();
    const extra = { EDDY_RULES_FILE: rulesFile };
    const h = hub;

    const first = spawnModule(h.env(DEVICE, M), { dataDir, extra });
    await first.waitForLog((l) => l.msg === 'eddy connected to edgeHub', 30_000, 'the first connection');
    h.write(publish(topic(1), reading(T + 1_000, 1), { packetId: 1 }));
    await waitUntil(() => h.pubacks.includes(1), 10_000, 'the PUBACK of the first reading');
    first.child.kill('SIGKILL');
    await first.exit;

    // The restart's session: the first reading again (its PUBACK taken as lost), then one sent while the module was down.
    h.onConnect.set(1, { sessionPresent: true, after: Buffer.concat([publish(topic(1), reading(T + 1_000, 1), { packetId: 1, dup: true }), publish(topic(2), reading(T + 2_000, 10), { packetId: 2 })]) });
    const second = spawnModule(h.env(DEVICE, M), { dataDir, extra });
    await second.waitForLog((l) => l.msg === 'eddy connected to edgeHub', 30_000, 'the restart connected');
    await waitUntil(() => h.pubacks.includes(2), 10_000, 'the PUBACK of the reading stored meanwhile');
    h.write(publish(topic(3), reading(T + 2 * MINUTE, 0), { packetId: 3 }));
    await waitUntil(() => windowAt(h, T) !== undefined, 20_000, 'the first window upstream');
    expect(windowAt(h, T)).toEqual({ count: 2, sum: 11 });

    // A dropped link: the reconnect's session re-delivers a reading with the CONNACK, then a new one.
    const W = T + 3 * MINUTE;
    h.write(publish(topic(4), reading(W + 1_000, 100), { packetId: 4 }));
    await waitUntil(() => h.pubacks.includes(4), 10_000, 'the PUBACK of the reading before the drop');
    h.onConnect.set(h.sockets.length, { sessionPresent: true, after: Buffer.concat([publish(topic(4), reading(W + 1_000, 100), { packetId: 4, dup: true }), publish(topic(5), reading(W + 2_000, 1_000), { packetId: 5 })]) });
    h.sockets.at(-1)!.destroy();
    await second.waitForLog((l) => l.msg === 'reconnected to edgeHub', 30_000, 'the reconnect');
    await waitUntil(() => h.pubacks.includes(5), 10_000, 'the PUBACK of the reading after the reconnect');
    h.write(publish(topic(6), reading(W + 2 * MINUTE, 0), { packetId: 6 }));
    await waitUntil(() => windowAt(h, W) !== undefined, 20_000, 'the second window upstream');
    expect(windowAt(h, W)).toEqual({ count: 2, sum: 1_100 });
    // Both re-deliveries dropped as such, once each.
    expect(second.logs.filter((l) => l.reason === 'redelivered').length).toBe(2);
  });
});
