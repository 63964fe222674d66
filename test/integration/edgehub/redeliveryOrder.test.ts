import { afterEach, describe, expect, it } from 'vitest';
import { EdgeHubConnection } from '../../../src/io/edgehub/edgeHubConnection.js';
import { useModuleEnv } from '../../helpers/edgeHubEmulator.js';
import { inputTopic, publish, type ScriptedEdgeHub, startScriptedEdgeHub } from '../../helpers/scriptedEdgeHub.js';
import { recordingLogger } from './testLog.js';

/*
 * The real SDK (azure-iot-device 1.18.4 / azure-iot-device-mqtt 1.16.4 over mqtt.js 4.3.8) against a
 * scripted broker that puts a re-delivered PUBLISH (DUP = 1) in the same TCP write as the CONNACK, as
 * a broker resuming a session may (MQTT 3.1.1 section 4.4). test/integration/module/redeliveryWithConnack.test.ts
 * shows what it means for the counts of the built module.
 */

const DEVICE = 'dev1', MODULE = 'analytics';
const TOPIC = inputTopic(DEVICE, MODULE, 'telemetry', 'sensor1');

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function connectTo(hub: ScriptedEdgeHub): Promise<{ conn: EdgeHubConnection; order: string[] }> {
  cleanups.push(useModuleEnv(hub.env(DEVICE, MODULE)));
  const conn = await EdgeHubConnection.fromEnvironment({ log: recordingLogger(), backoff: { initialMs: 50, maxMs: 200 } });
  cleanups.push(async () => {
    await hub.close();
    await conn.close();
  });
  const order: string[] = [];
  conn.onReconnect(() => order.push('reconnect'));
  conn.onLink((up) => order.push(up ? 'link up' : 'link down'));
  conn.onInput((input, body) => order.push(`input ${input} ${body.toString('utf8')}`));
  return { conn, order };
}

const waitFor = async (cond: () => boolean, ms: number, what: string): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('a re-delivery in the same TCP write as the CONNACK, real SDK', () => {
  it('first connection (a restarted module, session present): the input re-delivered with the CONNACK reaches the handler, not only its PUBACK', async () => {
    // The ModuleClient drops an input nobody listens to yet, while mqtt.js acknowledges it: lost.
    const hub = await startScriptedEdgeHub();
    hub.onConnect.set(0, { sessionPresent: true, after: publish(TOPIC, '{"seq":1}', { packetId: 7, dup: true }) });
    const { conn, order } = await connectTo(hub);
    await conn.open();
    // mqtt.js sends the PUBACK after it emitted the message; the SDK hands it over one tick later,
    // long before the PUBACK can have crossed the socket.
    await waitFor(() => hub.pubacks.includes(7), 5_000, 'the PUBACK');
    expect(order).toEqual(['link up', 'input telemetry {"seq":1}']);
  });

  it('reconnect: the connection signals the reconnect (main.ts arms its redelivery filter there) before it hands over the re-delivered input', async () => {
    const hub = await startScriptedEdgeHub();
    hub.onConnect.set(1, { sessionPresent: true, after: publish(TOPIC, '{"seq":1}', { packetId: 7, dup: true }) });
    const { conn, order } = await connectTo(hub);
    await conn.open();
    hub.sockets[0]!.destroy();
    await waitFor(() => hub.pubacks.includes(7), 10_000, 'the PUBACK of the re-delivered input');
    expect(order).toEqual(['link up', 'link down', 'link up', 'reconnect', 'input telemetry {"seq":1}']);
  });
});
