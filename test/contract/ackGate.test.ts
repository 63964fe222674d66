import { createServer, type Socket } from 'node:net';
import { ackGateSuite, type AckSide } from './ackGate.suite.js';
import { EdgeHubConnection } from '../../src/io/edgehub/edgeHubConnection.js';
import { MqttConnection } from '../../src/io/mqtt/mqttConnection.js';
import { localAckGate } from '../../src/io/local/localAckGate.js';
import { silentLogger } from '../../src/contracts/logger.js';
import { startEdgeHubEmulator, useModuleEnv } from '../helpers/edgeHubEmulator.js';
import { packet } from '../helpers/mqttPackets.js';

/** The local simulator: it acknowledges nothing; its "acknowledgement" is the handler returning (the next reading follows). */
ackGateSuite('local simulator (localAckGate)', async () => {
  let handler: (body: Buffer) => void = () => undefined;
  let ack: () => void = () => undefined;
  return {
    gate: localAckGate,
    onInput: (h) => void (handler = h),
    open: async () => undefined,
    send: async (body) => {
      handler(Buffer.from(body, 'latin1'));
      ack();
    },
    onAck: (fn) => void (ack = fn),
    ready: async () => undefined,
    close: async () => undefined,
  };
}, { reconnects: false });

/** edgeHub: the real SDK (the versions package.json pins) against the in-process emulator (aedes over TLS). */
const MODULE = 'eddy';
ackGateSuite('edgeHub (EdgeHubConnection, real SDK, edgeHub emulator)', async (): Promise<AckSide> => {
  const emu = await startEdgeHubEmulator();
  const restoreEnv = useModuleEnv(emu.moduleEnv(MODULE));
  const conn = await EdgeHubConnection.fromEnvironment({ log: silentLogger, backoff: { initialMs: 100, maxMs: 500 } });
  let reconnects = 0;
  let readyAt = 0;
  conn.onReconnect(() => reconnects++);
  return {
    gate: conn,
    onInput: (h) => conn.onInput((_input, body) => h(body)),
    open: async () => {
      await conn.open();
      await emu.waitForClient(MODULE);
    },
    send: (body) => emu.sendInput(MODULE, 'telemetry', Buffer.from(body, 'latin1')),
    onAck: (fn) => void emu.on('inputAck', fn),
    dropConnection: () => {
      readyAt = reconnects + 1;
      emu.dropConnections();
    },
    ready: async () => {
      const end = Date.now() + 15_000;
      while (reconnects < readyAt && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      await emu.waitForClient(MODULE, 15_000);
    },
    close: async () => {
      await conn.close();
      restoreEnv();
      await emu.close();
    },
  };
});

/**
 * A scripted MQTT 5 broker on plain TCP (aedes speaks MQTT 3.1.1 only; a Mosquitto process could not
 * report a PUBACK's arrival synchronously): CONNACK, SUBACK, QoS 1 PUBLISHes to the client, and a
 * callback at each PUBACK it reads (MQTT 5.0 sections 3.2, 3.9, 3.3, 3.4).
 */
async function scriptedBroker() {
  const sockets = new Set<Socket>();
  const acks: Array<() => void> = [];
  let subscribed = 0;
  let packetId = 0;
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 2) return;
        let len = 0;
        let mul = 1;
        let i = 1;
        for (; i < buf.length; i++) {
          len += (buf[i]! & 0x7f) * mul;
          mul *= 128;
          if ((buf[i]! & 0x80) === 0) break;
        }
        if (i >= buf.length || buf.length < i + 1 + len) return;
        const type = buf[0]! >> 4;
        const body = buf.subarray(i + 1, i + 1 + len);
        buf = buf.subarray(i + 1 + len);
        if (type === 1) sock.write(packet(0x20, Buffer.from([0x00, 0x00, 0x00]))); // CONNECT -> CONNACK, success
        else if (type === 8) {
          sock.write(packet(0x90, Buffer.from([body[0]!, body[1]!, 0x00, 0x01]))); // SUBSCRIBE -> SUBACK, QoS 1 granted
          subscribed++;
        } else if (type === 4) for (const fn of acks) fn(); // PUBACK
        else if (type === 12) sock.write(Buffer.from([0xd0, 0x00])); // PINGREQ -> PINGRESP
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    subscribed: () => subscribed,
    onAck: (fn: () => void) => void acks.push(fn),
    publish: (topic: string, payload: Buffer): void => {
      packetId = (packetId % 65_535) + 1;
      const t = Buffer.from(topic);
      const body = Buffer.concat([Buffer.from([t.length >> 8, t.length & 0xff]), t, Buffer.from([packetId >> 8, packetId & 0xff, 0x00]), payload]);
      for (const s of sockets) s.write(packet(0x32, body));
    },
    drop: () => sockets.forEach((s) => s.destroy()),
    close: () => {
      sockets.forEach((s) => s.destroy());
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** MQTT: the real mqtt.js client of MqttConnection against a scripted MQTT 5 broker. */
ackGateSuite('MQTT broker (MqttConnection, mqtt.js)', async (): Promise<AckSide> => {
  const broker = await scriptedBroker();
  let readyAt = 1;
  const conn = new MqttConnection(
    { url: `mqtt://127.0.0.1:${broker.port}`, topic: 'devices/+/telemetry', deviceFrom: { kind: 'topic', level: 1 }, outputTopic: 'eddy/{output}/{rule}', clientId: 'eddy-contract', username: undefined, password: undefined, ca: undefined },
    silentLogger,
  );
  const waitSubscribed = async (): Promise<void> => {
    const end = Date.now() + 15_000;
    while (broker.subscribed() < readyAt && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  };
  return {
    gate: conn,
    onInput: (h) =>
      conn.onInput((_topic, body) => {
        h(body);
        return true;
      }),
    open: async () => {
      conn.open();
      await waitSubscribed();
    },
    send: async (body) => broker.publish('devices/d1/telemetry', Buffer.from(body, 'latin1')),
    onAck: broker.onAck,
    dropConnection: () => {
      readyAt = broker.subscribed() + 1;
      broker.drop();
    },
    ready: waitSubscribed,
    close: async () => {
      void conn.close().catch(() => undefined);
      await broker.close();
    },
  };
});
