import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { MqttConnection } from '../../../src/io/mqtt/mqttConnection.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { packet } from '../../helpers/mqttPackets.js';

/** CONNACK, success, Session Present = 1, no properties (MQTT 5.0 section 3.2). */
const CONNACK_SESSION_PRESENT = packet(0x20, Buffer.from([0x01, 0x00, 0x00]));

/** A QoS 1 PUBLISH with DUP = 1: a re-delivery (MQTT 5.0 sections 3.3.1.1 and 4.4). */
function redelivery(topic: string, packetId: number, payload: string): Buffer {
  const t = Buffer.from(topic);
  const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, Buffer.from([packetId >> 8, packetId & 0xff, 0x00]), Buffer.from(payload)]);
  return packet(0x30 | 0x08 | 0x02, body);
}

const servers: Server[] = [];
const sockets: Socket[] = [];
const opened: MqttConnection[] = [];
afterEach(async () => {
  // The broker drops the link first: a graceful close would wait for the PUBACK it never sends.
  for (const s of servers.splice(0)) s.close();
  for (const s of sockets.splice(0)) s.destroy();
  // mqtt.js ends at once (no reconnect) but keeps the unacknowledged publish pending: not awaited.
  for (const c of opened.splice(0)) void c.close().catch(() => undefined);
});

const message: OutputMessage = {
  id: 'm-1', output: 'summaries', kind: 'summary', rule: 'r', groupKey: 'g', createdAt: 0,
  body: { rule: 'r', group: {}, window: { start: '1970-01-01T00:00:00.000Z', end: '1970-01-01T00:01:00.000Z' }, count: 1, values: {}, revision: 0 } as unknown as OutputMessage['body'],
};

describe('MqttConnection against a scripted MQTT 5 broker', () => {
  it('signals the new session before it hands over the first PUBLISH the broker re-delivers, even while an own publish awaits its PUBACK', async () => {
    // MQTT 5.0 section 4.4: on a resumed session the broker re-sends the unacknowledged PUBLISHes
    // first, right after the CONNACK, and the client re-sends its own. mqtt.js emits 'connect' only
    // once every publish it queued offline is acknowledged (lib/client.ts, _onConnect, outStore
    // 'end'): eddy's outbox backlog after a restart. The broker below never acknowledges the client's
    // publish, so an arm() tied to 'connect' comes after the re-delivery, which was then counted
    // twice (test/integration/mqtt/mqttMode.test.ts "SIGKILL mid-run", under CPU load).
    const server = createServer((sock: Socket) => {
      sockets.push(sock);
      let greeted = false;
      sock.on('data', (d: Buffer) => {
        if (!greeted && d[0] === 0x10) {
          greeted = true;
          sock.write(Buffer.concat([CONNACK_SESSION_PRESENT, redelivery('plant/p1/telemetry', 7, '{"seq":12}')]));
        }
      });
      sock.on('error', () => undefined);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;

    const conn = new MqttConnection(
      { url: `mqtt://127.0.0.1:${port}`, topic: 'plant/+/telemetry', deviceFrom: { kind: 'topic', level: 1 }, outputTopic: 'eddy/{output}/{rule}', clientId: 'c1', username: undefined, password: undefined, ca: undefined },
      pino({ level: 'silent' }),
    );
    opened.push(conn);
    const order: string[] = [];
    conn.onSession(() => order.push('session'));
    conn.onInput((topic, body) => {
      order.push(`input ${topic} ${body.toString('utf8')}`);
      return true;
    });
    conn.open();
    // Queued while offline, re-sent on connect, never acknowledged by the broker above.
    void conn.send(message).catch(() => undefined);
    const end = Date.now() + 5_000;
    while (!order.some((o) => o.startsWith('input')) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(['session', 'input plant/p1/telemetry {"seq":12}']);
  });

  it.each([
    [false, 1],
    [true, 0],
  ])('warns when the broker comes back without eddy\'s session (Session Present %s on the reconnect: %i warnings)', async (kept, warnings) => {
    // A broker restarted without persistence answers the reconnect with Session Present = 0 (MQTT 5.0
    // section 3.2.2.1.1): eddy's subscription and the messages queued for it are gone, and what was
    // published before eddy subscribed again is lost (docs/contract.md section 2, MQTT mode;
    // test/integration/mqtt/mqttKillsBrokerRestart.test.ts fails with `persistence false`). The first
    // connection is a new session either way; the broker drops the link after its CONNACK once.
    let connections = 0;
    const server = createServer((sock: Socket) => {
      sockets.push(sock);
      const n = ++connections;
      let greeted = false;
      sock.on('data', (d: Buffer) => {
        if (greeted || d[0] !== 0x10) return;
        greeted = true;
        sock.write(packet(0x20, Buffer.from([n > 1 && kept ? 0x01 : 0x00, 0x00, 0x00])));
        if (n === 1) setTimeout(() => sock.destroy(), 50);
      });
      sock.on('error', () => undefined);
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const lines: Array<{ level: string; msg: string }> = [];
    const rec = (level: string) => (o: unknown, msg?: string): void => void lines.push({ level, msg: typeof o === 'string' ? o : msg ?? '' });
    const log = { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error'), fatal: rec('fatal'), isLevelEnabled: () => true };
    const conn = new MqttConnection(
      { url: `mqtt://127.0.0.1:${port}`, topic: 'plant/+/telemetry', deviceFrom: { kind: 'topic', level: 1 }, outputTopic: 'eddy/{output}/{rule}', clientId: 'c2', username: undefined, password: undefined, ca: undefined },
      log,
    );
    opened.push(conn);
    conn.open();
    const connects = (): number => lines.filter((l) => l.msg === 'mqtt: connected').length;
    const end = Date.now() + 5_000;
    while (connects() < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(connects()).toBe(2);
    expect(lines.filter((l) => l.level === 'warn' && /did not keep eddy's session/.test(l.msg))).toHaveLength(warnings);
  });
});
