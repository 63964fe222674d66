import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { TEST_CERTS_DIR } from './edgeHubEmulator.js';
import { packet } from './mqttPackets.js';

/**
 * A scripted edgeHub: MQTT 3.1.1 over TLS (the test certificates of the edgeHub emulator), written
 * packet by packet, for what the aedes-based emulator cannot be made to do: put a PUBLISH in the
 * same TCP write as the CONNACK, as a broker resuming a persistent session may (MQTT 3.1.1 section
 * 4.4: unacknowledged PUBLISHes are re-sent first, right after the CONNACK). It answers what the SDK
 * sends (SUBSCRIBE, PINGREQ, twin GET and reported PATCH on `$iothub/twin/`), acknowledges and
 * records the module's outputs, and records the PUBACKs of the inputs it sent.
 */

const str = (s: string): Buffer => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};

/** CONNACK, accepted, Session Present as given (MQTT 3.1.1 section 3.2). */
export const connack = (sessionPresent: boolean): Buffer => packet(0x20, Buffer.from([sessionPresent ? 1 : 0, 0]));

/** A PUBLISH (section 3.3): QoS 1 with `packetId`, DUP = 1 for a re-delivery; QoS 0 without. */
export function publish(topic: string, payload: string | Buffer, opts: { packetId?: number; dup?: boolean } = {}): Buffer {
  const id = opts.packetId;
  const flags = id === undefined ? 0 : 0x02 | (opts.dup === true ? 0x08 : 0);
  return packet(0x30 | flags, Buffer.concat([str(topic), id === undefined ? Buffer.alloc(0) : Buffer.from([id >> 8, id & 0xff]), Buffer.from(payload)]));
}

/** The topic edgeHub delivers input `input` of `moduleId` on, with `$.cdid` (the sending device). */
export const inputTopic = (deviceId: string, moduleId: string, input: string, sendingDevice: string): string =>
  `devices/${deviceId}/modules/${moduleId}/inputs/${input}/%24.cdid=${encodeURIComponent(sendingDevice)}`;

/** Splits complete packets off the front of `buf.data`. */
function* packets(buf: { data: Buffer }): Generator<{ first: number; body: Buffer }> {
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
    yield { first: d[0]!, body: d.subarray(i, i + len) };
  }
}

export interface ScriptedEdgeHub {
  readonly port: number;
  /** Every TLS connection so far (index 0 = the first). */
  readonly sockets: TLSSocket[];
  /** Packet ids of the PUBACKs received for inputs. */
  readonly pubacks: number[];
  /** The module's PUBLISHes to its outputs (`.../messages/events/...`), acknowledged. */
  readonly outputs: Array<{ topic: string; body: string }>;
  /**
   * Per connection index: Session Present, and what to write in the same write as the CONNACK.
   * Read when that connection's CONNECT arrives; connections without an entry get a fresh session.
   */
  onConnect: Map<number, { sessionPresent: boolean; after?: Buffer }>;
  /** Writes `data` to the newest connection. */
  write(data: Buffer): void;
  /** The `EdgeHubConnectionString` environment of a module connecting here. */
  env(deviceId: string, moduleId: string): Record<string, string>;
  close(): Promise<void>;
}

export async function startScriptedEdgeHub(): Promise<ScriptedEdgeHub> {
  const sockets: TLSSocket[] = [];
  const hub: ScriptedEdgeHub = {
    port: 0,
    sockets,
    pubacks: [],
    outputs: [],
    onConnect: new Map(),
    write: (data) => void sockets.at(-1)?.write(data),
    env: (deviceId, moduleId) => ({
      // Any key: the script does not check the SAS token.
      EdgeHubConnectionString: `HostName=testhub.azure-devices.net;DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')};GatewayHostName=localhost:${server.address() === null ? 0 : (server.address() as { port: number }).port}`,
      EdgeModuleCACertificateFile: path.join(TEST_CERTS_DIR, 'ca.pem'),
    }),
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: Server = createServer({ key: readFileSync(path.join(TEST_CERTS_DIR, 'server.key')), cert: readFileSync(path.join(TEST_CERTS_DIR, 'server.pem')) }, (sock) => {
    const n = sockets.length;
    sockets.push(sock);
    sock.on('error', () => undefined);
    const buf = { data: Buffer.alloc(0) };
    sock.on('data', (d: Buffer) => {
      buf.data = Buffer.concat([buf.data, d]);
      for (const p of packets(buf)) {
        const type = p.first >> 4;
        if (type === 1) {
          const script = hub.onConnect.get(n) ?? { sessionPresent: false };
          sock.write(Buffer.concat([connack(script.sessionPresent), script.after ?? Buffer.alloc(0)]));
        } else if (type === 8) {
          // SUBSCRIBE: QoS 1 granted to every filter (section 3.9).
          let o = 2, granted = 0;
          while (o < p.body.length) {
            o += 2 + p.body.readUInt16BE(o) + 1;
            granted++;
          }
          sock.write(packet(0x90, Buffer.concat([p.body.subarray(0, 2), Buffer.alloc(granted, 1)])));
        } else if (type === 4) hub.pubacks.push(p.body.readUInt16BE(0));
        else if (type === 12) sock.write(Buffer.from([0xd0, 0]));
        else if (type === 3) {
          const qos = (p.first >> 1) & 3;
          const tlen = p.body.readUInt16BE(0);
          const topic = p.body.toString('utf8', 2, 2 + tlen);
          let o = 2 + tlen;
          if (qos > 0) {
            sock.write(packet(0x40, p.body.subarray(o, o + 2)));
            o += 2;
          }
          const body = p.body.toString('utf8', o);
          const rid = /\$rid=([^&]+)/.exec(topic)?.[1];
          // The twin as IoT Hub answers it (SDK twin.js: GET 200 with the document, PATCH 204).
          if (topic.startsWith('$iothub/twin/GET/') && rid !== undefined) sock.write(publish(`$iothub/twin/res/200/?$rid=${rid}`, '{"desired":{"$version":1},"reported":{"$version":1}}'));
          else if (topic.startsWith('$iothub/twin/PATCH/properties/reported/') && rid !== undefined) sock.write(publish(`$iothub/twin/res/204/?$rid=${rid}&$version=2`, ''));
          else if (topic.includes('/messages/events/')) hub.outputs.push({ topic, body });
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (hub as { port: number }).port = (server.address() as { port: number }).port;
  return hub;
}
