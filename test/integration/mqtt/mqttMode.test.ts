import { afterEach, describe, expect, it } from 'vitest';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../../helpers/mosquitto.js';
import { freePort } from '../../helpers/freePort.js';

/*
 * MQTT mode (docs/contract.md section 2) against a real Mosquitto broker started
 * here (test/helpers/mosquitto.ts; `.ci/run` installs it, and without it this test fails). eddy
 * (`node dist/main.js`) reads devices' QoS 1 telemetry over TLS with a username and password, is
 * killed with SIGKILL while messages are in flight, and restarts on the same data dir and client id.
 * What is independent of eddy's code: the broker re-delivers exactly the messages it got no PUBACK
 * for (MQTT 5 section 4.4), and the test knows which readings it published, so every window's
 * count and sum are known in advance.
 */

const MAIN = path.resolve(import.meta.dirname, '../../../dist/main.js');
const DEVICES = ['press-1', 'press-2', 'press-3'];
const PER_DEVICE = 120; // 10 one-minute windows of 12 readings (5 s apart in event time)

interface Eddy {
  child: ChildProcess;
  stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function startEddy(env: Record<string, string>): Eddy {
  const child = spawn(process.execPath, [process.env.EDDY_TEST_MAIN ?? MAIN], {
    env: { PATH: process.env.PATH, EDDY_METRICS_PORT: '0', EDDY_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const e: Eddy = { child, stderr: '', exited: false, exit: null as unknown as Eddy['exit'] };
  e.exit = new Promise((resolve) => child.once('exit', (code, signal) => {
    e.exited = true;
    resolve({ code, signal });
  }));
  child.stdout!.resume();
  child.stderr!.on('data', (d: Buffer) => (e.stderr += d.toString()));
  cleanups.push(async () => {
    if (!e.exited) child.kill('SIGKILL');
    await e.exit;
  });
  return e;
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('MQTT mode over a real mosquitto (docs/contract.md section 2, "MQTT mode")', () => {
  it('SIGKILL mid-run over TLS with a password: every published reading counted exactly once, device ids from the topic', async () => {
    const broker: Mosquitto = await startMosquitto();
    cleanups.push(() => broker.stop());
    const data = mkdtempSync(path.join(tmpdir(), 'eddy-mqtt-data-'));
    const rulesDir = mkdtempSync(path.join(tmpdir(), 'eddy-mqtt-rules-'));
    cleanups.push(() => rmSync(data, { recursive: true, force: true }), () => rmSync(rulesDir, { recursive: true, force: true }));
    const rulesFile = path.join(rulesDir, 'rules.json');
    writeFileSync(rulesFile, JSON.stringify({
      perDevice: {
        kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', maxLateness: '5s',
        window: { type: 'tumbling', size: '1m' }, select: { n: 'count()', seqSum: 'sum(seq)' }, output: 'summaries',
      },
    }));
    const env = {
      EDDY_DATA_DIR: data, EDDY_RULES_FILE: rulesFile,
      EDDY_MQTT_URL: `mqtts://localhost:${broker.tlsPort}`, EDDY_MQTT_CA: broker.caFile,
      EDDY_MQTT_USERNAME: broker.username, EDDY_MQTT_PASSWORD: broker.password,
      EDDY_MQTT_TOPIC: 'plant/+/telemetry', EDDY_MQTT_DEVICE_FROM: 'topic:1', EDDY_MQTT_CLIENT_ID: 'eddy-test-1',
    };
    const auth = { username: broker.username, password: broker.password, protocolVersion: 5 as const };

    // Everything eddy publishes, with its MQTT 5 user properties.
    const received: Array<{ topic: string; messageId: string; body: string }> = [];
    const sub: MqttClient = await connectAsync(`mqtt://127.0.0.1:${broker.port}`, { ...auth, clientId: 'test-sub' });
    cleanups.push(() => sub.endAsync());
    sub.on('message', (topic, payload, packet) => {
      const id = packet.properties?.userProperties?.messageId;
      received.push({ topic, messageId: typeof id === 'string' ? id : '', body: payload.toString('utf8') });
    });
    await sub.subscribeAsync('eddy/#', { qos: 1 });

    const first = startEddy(env);
    await until(() => /eddy running in local mode: MQTT/.test(first.stderr) && /mqtt: subscribed/.test(first.stderr), 20_000, 'eddy subscribed');

    const pub: MqttClient = await connectAsync(`mqtt://127.0.0.1:${broker.port}`, { ...auth, clientId: 'test-pub' });
    cleanups.push(() => pub.endAsync());
    // Event time three hours back, aligned to the minute: all windows are past, none in the future.
    const base = Math.floor((Date.now() - 3 * 3_600_000) / 60_000) * 60_000;
    const publishes: Array<Promise<unknown>> = [];
    let published = 0;
    let second: Eddy | null = null;
    for (let i = 0; i < PER_DEVICE; i++) {
      for (const d of DEVICES) {
        publishes.push(pub.publishAsync(`plant/${d}/telemetry`, JSON.stringify({ ts: new Date(base + i * 5_000).toISOString(), seq: i }), { qos: 1 }).then(() => published++));
      }
      if (i % 10 === 9) await sleep(40);
      if (i === 45) {
        // Mid-run: readings in flight between the broker and eddy, some logged and not yet acknowledged.
        first.child.kill('SIGKILL');
        await first.exit;
      }
      if (i === 70) second = startEddy(env);
    }
    await Promise.all(publishes);
    expect(published).toBe(PER_DEVICE * DEVICES.length);
    // One reading per device two hours later closes every window above (the watermark passes them).
    for (const d of DEVICES) await pub.publishAsync(`plant/${d}/telemetry`, JSON.stringify({ ts: new Date(base + 2 * 3_600_000).toISOString(), seq: 0 }), { qos: 1 });

    const windowsEnd = base + PER_DEVICE * 5_000;
    const latest = (): Map<string, { n: number; seqSum: number; revision: number }> => {
      const out = new Map<string, { n: number; seqSum: number; revision: number }>();
      for (const r of received) {
        const b = JSON.parse(r.body) as { rule: string; group: { deviceId: string }; window: { start: string }; count: number; values: { n: number; seqSum: number }; revision: number };
        if (Date.parse(b.window.start) >= windowsEnd) continue;
        const k = `${b.group.deviceId} ${b.window.start}`;
        const cur = out.get(k);
        if (!cur || b.revision > cur.revision) out.set(k, { n: b.values.n, seqSum: b.values.seqSum, revision: b.revision });
      }
      return out;
    };
    // On a timeout the comparison below shows which windows are missing or wrong.
    await until(() => latest().size === DEVICES.length * (PER_DEVICE / 12), 40_000, 'a summary of every window').catch(() => undefined);
    await sleep(1_000);
    second!.child.kill('SIGINT');
    expect((await second!.exit).code, second!.stderr).toBe(0);

    // A messageId is one body: re-sends after the restart are the same message (the outbox, docs/contract.md section 5).
    const byId = new Map<string, string>();
    for (const r of received) {
      expect(r.messageId).not.toBe('');
      expect(byId.get(r.messageId) ?? r.body, `messageId ${r.messageId} carries two bodies`).toBe(r.body);
      byId.set(r.messageId, r.body);
      expect(r.topic).toBe('eddy/summaries/perDevice');
    }
    const expected = new Map<string, { n: number; seqSum: number }>();
    for (const d of DEVICES) {
      for (let w = 0; w < PER_DEVICE / 12; w++) {
        let seqSum = 0;
        for (let i = w * 12; i < w * 12 + 12; i++) seqSum += i;
        expected.set(`${d} ${new Date(base + w * 60_000).toISOString()}`, { n: 12, seqSum });
      }
    }
    const got = new Map([...latest()].map(([k, v]) => [k, { n: v.n, seqSum: v.seqSum }]));
    expect(Object.fromEntries([...got].sort())).toEqual(Object.fromEntries([...expected].sort()));
    // The first process was killed before it saw everything; the second took over the broker's session.
    expect(second!.stderr).toMatch(/"sessionPresent":true/);
    expect(first.stderr + second!.stderr).not.toContain(broker.password);
  }, 120_000);
  it('device id from a body path; a message without one is rejected (no-device-id), acknowledged, and does not stop the others', async () => {
    const broker: Mosquitto = await startMosquitto();
    cleanups.push(() => broker.stop());
    const data = mkdtempSync(path.join(tmpdir(), 'eddy-mqtt-data-'));
    const rulesDir = mkdtempSync(path.join(tmpdir(), 'eddy-mqtt-rules-'));
    cleanups.push(() => rmSync(data, { recursive: true, force: true }), () => rmSync(rulesDir, { recursive: true, force: true }));
    const rulesFile = path.join(rulesDir, 'rules.json');
    writeFileSync(rulesFile, JSON.stringify({
      perDevice: { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'ts', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' }, output: 'summaries' },
    }));
    const auth = { username: broker.username, password: broker.password, protocolVersion: 5 as const };
    const received: Array<{ topic: string; body: { group: { deviceId: string }; window: { start: string }; values: { n: number } } }> = [];
    const sub: MqttClient = await connectAsync(`mqtt://127.0.0.1:${broker.port}`, { ...auth, clientId: 'test-sub-2' });
    cleanups.push(() => sub.endAsync());
    sub.on('message', (topic, payload) => received.push({ topic, body: JSON.parse(payload.toString('utf8')) as (typeof received)[number]['body'] }));
    await sub.subscribeAsync('site/out/#', { qos: 1 });
    const metricsPort = await freePort();
    const eddy = startEddy({
      EDDY_METRICS_PORT: String(metricsPort), EDDY_DATA_DIR: data, EDDY_RULES_FILE: rulesFile, EDDY_MQTT_URL: `mqtt://127.0.0.1:${broker.port}`,
      EDDY_MQTT_USERNAME: broker.username, EDDY_MQTT_PASSWORD: broker.password,
      EDDY_MQTT_TOPIC: 'site/in', EDDY_MQTT_DEVICE_FROM: 'body:meta.serial', EDDY_MQTT_OUTPUT_TOPIC: 'site/out/{kind}/{rule}', EDDY_MQTT_CLIENT_ID: 'eddy-test-2',
    });
    await until(() => /mqtt: subscribed/.test(eddy.stderr), 20_000, 'eddy subscribed'); // a reading published before the SUBACK is not routed to eddy
    const pub: MqttClient = await connectAsync(`mqtt://127.0.0.1:${broker.port}`, { ...auth, clientId: 'test-pub-2' });
    cleanups.push(() => pub.endAsync());
    const base = Math.floor((Date.now() - 3_600_000) / 60_000) * 60_000;
    const ts = (ms: number): string => new Date(base + ms).toISOString();
    await pub.publishAsync('site/in', JSON.stringify({ meta: { serial: 'SN-1' }, ts: ts(1_000) }), { qos: 1 });
    await pub.publishAsync('site/in', JSON.stringify({ meta: {}, ts: ts(2_000) }), { qos: 1 });
    await pub.publishAsync('site/in', JSON.stringify([{ meta: { serial: 'SN-2' }, ts: ts(3_000) }, { ts: ts(4_000) }]), { qos: 1 });
    await pub.publishAsync('site/in', JSON.stringify({ meta: { serial: 'SN-1' }, ts: ts(5_000) }), { qos: 1 });
    // Close the first minute of both devices.
    await pub.publishAsync('site/in', JSON.stringify([{ meta: { serial: 'SN-1' }, ts: ts(600_000) }]), { qos: 1 });
    await pub.publishAsync('site/in', JSON.stringify([{ meta: { serial: 'SN-2' }, ts: ts(600_000) }]), { qos: 1 });
    const first = (): Array<[string, number]> => received.filter((r) => r.body.window.start === ts(0)).map((r) => [r.body.group.deviceId, r.body.values.n] as [string, number]).sort();
    await until(() => first().length === 2, 20_000, 'both first windows').catch(() => undefined);
    // The batch is one device's (its first element names it): SN-2 holds both of its readings.
    expect(first()).toEqual([['SN-1', 2], ['SN-2', 2]]);
    expect(new Set(received.map((r) => r.topic))).toEqual(new Set(['site/out/summary/perDevice']));
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(metrics).toMatch(/^eddy_messages_rejected_total\{reason="no-device-id"\} 1$/m);
    eddy.child.kill('SIGINT');
    expect((await eddy.exit).code, eddy.stderr).toBe(0);
  }, 60_000);
});
