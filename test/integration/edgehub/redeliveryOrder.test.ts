import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { EdgeHubConnection } from '../../../src/io/edgehub/edgeHubConnection.js';
import { TEST_CERTS_DIR, useModuleEnv } from '../../helpers/edgeHubEmulator.js';
import { recordingLogger } from './testLog.js';

/*
 * The real SDK (azure-iot-device 1.18.4 / azure-iot-device-mqtt 1.16.4 over mqtt.js 4.3.8) against a
 * scripted MQTT 3.1.1 broker on TLS, for the one thing the aedes emulator cannot be made to do: put
 * a re-delivered PUBLISH (DUP = 1) in the same TCP write as the CONNACK, as a broker resuming a
 * session may (MQTT 3.1.1 section 4.4: it re-sends unacknowledged PUBLISHes first after the CONNACK).
 */

function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}
const packet = (first: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([first, ...varint(body.length)]), body]);
/** CONNACK, accepted, Session Present as given (MQTT 3.1.1 section 3.2). */
const connack = (sessionPresent: boolean): Buffer => packet(0x20, Buffer.from([sessionPresent ? 1 : 0, 0]));
/** A QoS 1 PUBLISH (section 3.3), DUP = 1 for a re-delivery. */
function publish(topic: string, packetId: number, payload: string, dup: boolean): Buffer {
  const t = Buffer.from(topic);
  return packet(0x30 | (dup ? 0x08 : 0) | 0x02, Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, Buffer.from([packetId >> 8, packetId & 0xff]), Buffer.from(payload)]));
}

/** The packets a client sent: type (high nibble of the first byte) and body. */
function* packets(buf: { data: Buffer }): Generator<{ type: number; body: Buffer }> {
  for (;;) {
    const d = buf.data;
    if (d.length < 2) return;
    let len = 0, mult = 1, i = 1;
    for (;;) {
      if (i >= d.length) return;
      const b = d[i++]!;
      len += (b & 0x7f) * mult;
      mult *= 128;
      if ((b & 0x80) === 0) break;
    }
    if (d.length < i + len) return;
    buf.data = d.subarray(i + len);
    yield { type: d[0]! >> 4, body: d.subarray(i, i + len) };
  }
}

const DEVICE = 'dev1', MODULE = 'analytics';
const INPUT_TOPIC = `devices/${DEVICE}/modules/${MODULE}/inputs/telemetry/%24.cdid=sensor1`;

interface Broker {
  server: Server;
  port: number;
  sockets: TLSSocket[];
  /** Per connection (0 = first): what to write right after the CONNACK, in the same write. */
  afterConnack: Array<Buffer | null>;
  /** PUBACKs received, by packet id. */
  pubacks: number[];
}

async function scriptedBroker(afterConnack: Array<Buffer | null>, sessionPresent: (n: number) => boolean): Promise<Broker> {
  const b: Broker = { server: null as unknown as Server, port: 0, sockets: [], afterConnack, pubacks: [] };
  b.server = createServer({ key: readFileSync(path.join(TEST_CERTS_DIR, 'server.key')), cert: readFileSync(path.join(TEST_CERTS_DIR, 'server.pem')) }, (sock) => {
    const n = b.sockets.length;
    b.sockets.push(sock);
    sock.on('error', () => undefined);
    const buf = { data: Buffer.alloc(0) };
    sock.on('data', (d: Buffer) => {
      buf.data = Buffer.concat([buf.data, d]);
      for (const p of packets(buf)) {
        if (p.type === 1) sock.write(Buffer.concat([connack(sessionPresent(n)), b.afterConnack[n] ?? Buffer.alloc(0)]));
        else if (p.type === 8) {
          // SUBSCRIBE: grant QoS 1 to every filter (section 3.9).
          let o = 2, granted = 0;
          while (o < p.body.length) {
            o += 2 + p.body.readUInt16BE(o) + 1;
            granted++;
          }
          sock.write(packet(0x90, Buffer.concat([p.body.subarray(0, 2), Buffer.alloc(granted, 1)])));
        } else if (p.type === 4) b.pubacks.push(p.body.readUInt16BE(0));
        else if (p.type === 12) sock.write(Buffer.from([0xd0, 0]));
      }
    });
  });
  await new Promise<void>((r) => b.server.listen(0, '127.0.0.1', r));
  b.port = (b.server.address() as { port: number }).port;
  return b;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function connectTo(b: Broker): Promise<{ conn: EdgeHubConnection; order: string[] }> {
  const key = Buffer.from('0123456789abcdef0123456789abcdef').toString('base64');
  const restore = useModuleEnv({
    EdgeHubConnectionString: `HostName=testhub.azure-devices.net;DeviceId=${DEVICE};ModuleId=${MODULE};SharedAccessKey=${key};GatewayHostName=localhost:${b.port}`,
    EdgeModuleCACertificateFile: path.join(TEST_CERTS_DIR, 'ca.pem'),
  });
  cleanups.push(restore);
  const conn = await EdgeHubConnection.fromEnvironment({ log: recordingLogger(), backoff: { initialMs: 50, maxMs: 200 } });
  cleanups.push(async () => {
    for (const s of b.sockets) s.destroy();
    await conn.close();
    await new Promise<void>((r) => b.server.close(() => r()));
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
    // The ModuleClient drops an input nobody listens to, while mqtt.js acknowledges it: lost.
    const b = await scriptedBroker([publish(INPUT_TOPIC, 7, '{"seq":1}', true)], () => true);
    const { conn, order } = await connectTo(b);
    await conn.open();
    // mqtt.js sends the PUBACK after it emitted the message; the SDK hands it over one tick later,
    // long before the PUBACK can have crossed the socket.
    await waitFor(() => b.pubacks.includes(7), 5_000, 'the PUBACK');
    expect(order).toEqual(['link up', 'input telemetry {"seq":1}']);
  });

  it('reconnect: the connection signals the reconnect before it hands over the re-delivered input', async () => {
    const b = await scriptedBroker([null, publish(INPUT_TOPIC, 7, '{"seq":1}', true)], (n) => n > 0);
    const { conn, order } = await connectTo(b);
    await conn.open();
    b.sockets[0]!.destroy();
    await waitFor(() => order.some((o) => o.startsWith('input')), 10_000, 'the re-delivered input');
    expect(order).toEqual(['link up', 'link down', 'link up', 'reconnect', 'input telemetry {"seq":1}']);
  });
});
