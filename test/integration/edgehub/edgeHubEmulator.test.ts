import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EdgeHubEmulator, parseRoute, startEdgeHubEmulator, topicMatches } from '../../helpers/edgeHubEmulator.js';

// Self-test of the emulator with a plain mqtt.js 5 client (no Azure SDK), so a broken emulator
// shows up here and not as a puzzling SDK failure.

const workload = (emu: EdgeHubEmulator, method: string, path: string, body?: unknown): Promise<{ status: number; type: string; json: Record<string, string> }> =>
  new Promise((resolve, reject) => {
    const req = request({ socketPath: emu.socketPath, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), json: JSON.parse(Buffer.concat(chunks).toString()) }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });

describe('edgeHub emulator', () => {
  let emu: EdgeHubEmulator;
  const clients: mqtt.MqttClient[] = [];
  beforeEach(async () => {
    emu = await startEdgeHubEmulator({ routes: ['FROM /messages/modules/sim/outputs/out1 INTO BrokeredEndpoint("/modules/analytics/inputs/telemetry")'] });
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await emu.close();
  });

  const sas = (moduleId: string, key = readFileSync(new URL('../../fixtures/certs/module.key', import.meta.url), 'utf8').trim()): string => {
    const sr = `${emu.iothubHostName}/devices/${emu.deviceId}/modules/${moduleId}`;
    const se = Math.floor(Date.now() / 1000) + 3600;
    const sig = createHmac('sha256', Buffer.from(key, 'base64')).update(`${encodeURIComponent(sr)}\n${se}`).digest('base64');
    return `SharedAccessSignature sr=${encodeURIComponent(sr)}&sig=${encodeURIComponent(sig)}&se=${se}`;
  };
  const connect = (moduleId: string, password = sas(moduleId)): Promise<mqtt.MqttClient> => {
    const client = mqtt.connect(`mqtts://localhost:${emu.port}`, {
      clientId: `${emu.deviceId}/${moduleId}`,
      username: `${emu.iothubHostName}/${emu.deviceId}/${moduleId}/?api-version=2021-04-12`,
      password,
      ca: readFileSync(emu.caPath),
      clean: false,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    clients.push(client);
    return new Promise((resolve, reject) => {
      client.once('connect', () => resolve(client));
      client.once('error', reject);
    });
  };

  it('serves the workload API with application/json and signs with the module key', async () => {
    const tb = await workload(emu, 'GET', '/trust-bundle?api-version=2018-06-28');
    expect(tb).toMatchObject({ status: 200, type: 'application/json' });
    expect(tb.json.certificate).toContain('BEGIN CERTIFICATE');
    const data = Buffer.from('hub%2Fdevices%2Fdev1\n123').toString('base64');
    const signed = await workload(emu, 'POST', '/modules/analytics/genid/gen1/sign?api-version=2018-06-28', { keyId: 'primary', algo: 'HMACSHA256', data });
    const key = Buffer.from(readFileSync(new URL('../../fixtures/certs/module.key', import.meta.url), 'utf8').trim(), 'base64');
    expect(signed.json.digest).toBe(createHmac('sha256', key).update(Buffer.from(data, 'base64')).digest('base64'));
    expect((await workload(emu, 'POST', '/modules/analytics/genid/other/sign', { keyId: 'primary', algo: 'HMACSHA256', data })).status).toBe(404);
  });

  it('rejects a bad SAS with CONNACK returnCode 5 and accepts a good one', async () => {
    await expect(connect('analytics', sas('analytics', Buffer.alloc(32, 1).toString('base64')))).rejects.toMatchObject({ code: 5 });
    expect(emu.stats.authFailures).toBe(1);
    await connect('analytics');
    expect(emu.stats.connects.get('analytics')).toBe(1);
  });

  it('routes outputs to inputs with $.cdid/$.cmid and encodeURIComponent properties (never "+"), twin GET/PATCH per client', async () => {
    const analytics = await connect('analytics');
    await analytics.subscribeAsync([`devices/dev1/modules/analytics/inputs/#`, '$iothub/twin/res/#'], { qos: 1 });
    const sim = await connect('sim');
    const got: string[] = [];
    analytics.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    await sim.publishAsync('devices/dev1/modules/sim/messages/events/%24.on=out1&%24.mid=m1&sp%20ace=a%2Bb/', 'hello', { qos: 1 });
    await analytics.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=1', JSON.stringify({ a: { b: 1, c: 2 } }));
    await analytics.publishAsync('$iothub/twin/PATCH/properties/reported/?$rid=2', JSON.stringify({ a: { c: null } }));
    await analytics.publishAsync('$iothub/twin/GET/?$rid=3', ' ');
    await sim.publishAsync('$iothub/twin/GET/?$rid=4', ' '); // sim did not subscribe: no answer, like edgeHub
    const start = Date.now();
    while (got.length < 4 && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(got).toEqual([
      'devices/dev1/modules/analytics/inputs/telemetry/sp%20ace=a%2Bb&%24.mid=m1&%24.cdid=dev1&%24.cmid=sim hello',
      '$iothub/twin/res/204/?$rid=1 ',
      '$iothub/twin/res/204/?$rid=2 ',
      '$iothub/twin/res/200/?$rid=3 {"desired":{"$version":1},"reported":{"$version":3,"a":{"b":1}}}',
    ]);
  });

  it('parses routes and matches topics like edgeHub / MQTT', () => {
    expect(parseRoute('FROM /messages/modules/a/outputs/* INTO $upstream')).toEqual({ fromModule: 'a', fromOutput: '*', to: { upstream: true } });
    expect(parseRoute('FROM /messages/* WHERE x INTO $upstream')).toBeInstanceOf(Error);
    expect(topicMatches('$iothub/twin/res/#', '$iothub/twin/res/200/?$rid=1')).toBe(true);
    expect(topicMatches('#', '$iothub/twin/res/200/?$rid=1')).toBe(false);
    expect(topicMatches('devices/+/modules/m/inputs/#', 'devices/d/modules/m/inputs/x/')).toBe(true);
  });
});
