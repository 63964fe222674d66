import { createServer, type Server, type Socket, connect } from 'node:net';
import { freePort } from '../../helpers/freePort.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type EdgeHubEmulator, startEdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { bodyOf, cleanupModules, spawnModule, upstreamOf, waitForUpstreamCount, waitUntilRunning } from './moduleProcess.js';
import { MINUTE, sensorBody, type SummaryBody, T0 } from './traffic.js';

/*
 * docs/contract.md sections 1 and 2 with the built module: edgeHub absent at start (the SDK does
 * not retry a failed first connection: the module must, logging each backoff step once), and the
 * iotedgehubdev-style connection-string start.
 */

/** A free TCP port on 127.0.0.1 (nothing listens on it once this resolves). */
/** A plain TCP relay from `port` to the emulator's TLS port: "edgeHub comes up" the moment it listens. */
async function relay(port: number, target: number): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer((inbound) => {
    const outbound = connect(target, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => s.destroy());
      s.on('close', () => sockets.delete(s));
    }
    inbound.pipe(outbound).pipe(inbound);
    inbound.on('close', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
  });
  server.on('close', () => {
    for (const s of sockets) s.destroy();
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return server;
}

describe('built module: starting', () => {
  let emu: EdgeHubEmulator;
  let relayServer: Server | undefined;

  beforeAll(async () => {
    emu = await startEdgeHubEmulator();
  });
  afterAll(async () => {
    await emu.close();
  });
  afterEach(async (ctx) => {
    await cleanupModules(ctx.task.result?.state === 'fail');
    if (relayServer) await new Promise<void>((r) => relayServer!.close(() => r()));
    relayServer = undefined;
  });

  it('edgeHub absent at start: retries with growing backoff, one log line per step, then connects and works', { timeout: 60_000 }, async () => {
    const M = 'eddy-late';
    // The workload API answers (iotedged runs), but nothing listens on the gateway port yet (edgeHub is not up).
    const port = await freePort();
    const mp = spawnModule({ ...emu.moduleEnv(M), IOTEDGE_GATEWAYHOSTNAME: `localhost:${port}` });
    const failed = (l: { msg?: string }): boolean => l.msg === 'first connection to edgeHub failed; retrying';
    await mp.waitForLog((l) => failed(l) && l.attempt === 3, 30_000, 'the third failed connection attempt');
    relayServer = await relay(port, emu.port);
    await waitUntilRunning(emu, M, mp, 30_000);

    const failures = mp.logs.filter(failed) as unknown as Array<{ attempt: number; retryInMs: number; time: string; err: { message: string } }>;
    // Each backoff step logged exactly once, in order...
    expect(failures.map((l) => l.attempt)).toEqual(failures.map((_, i) => i + 1));
    expect(failures.length).toBeGreaterThanOrEqual(3);
    for (const [i, l] of failures.entries()) {
      // ...with capped doubling and jitter in [50 %, 100 %] of the step (edgeHubConnection.ts: 1 s doubling to 30 s)...
      const base = Math.min(30_000, 1_000 * 2 ** i);
      expect(l.retryInMs).toBeGreaterThanOrEqual(base / 2);
      expect(l.retryInMs).toBeLessThanOrEqual(base);
      // ...and the next attempt really waited that long (a lower bound only: nothing here depends on speed).
      const next = failures[i + 1];
      if (next) expect(Date.parse(next.time) - Date.parse(l.time)).toBeGreaterThanOrEqual(l.retryInMs - 2);
    }
    expect(mp.logs.find((l) => l.msg === 'first connection to edgeHub: connected')).toMatchObject({ attempts: failures.length + 1 });

    // Connected for real: inputs, outputs and methods work.
    await emu.sendInput(M, 'telemetry', sensorBody(T0, 30, 1, 20, 25), { deviceId: 'late-1' });
    await emu.sendInput(M, 'telemetry', sensorBody(T0 + MINUTE + 10_000, 30, 1, 20, 25), { deviceId: 'late-1' });
    await waitForUpstreamCount(emu, M, (m) => m.output === 'summaries', 2, 15_000);
    expect((await emu.invokeMethod(M, 'getStats', null)).payload).toMatchObject({ received: 2 });
  });

  it('EdgeHubConnectionString + EdgeModuleCACertificateFile (no workload API): runs, reports, summarises; announces EDDY_PRODUCT_INFO', { timeout: 60_000 }, async () => {
    const M = 'eddy-cs';
    const mp = spawnModule({ ...emu.connectionStringEnv(M), EDDY_PRODUCT_INFO: 'Contoso.EddyOffer.Standard' });
    await waitUntilRunning(emu, M, mp, 30_000);
    // The SDK appends the product info to its user agent in the MQTT username's DeviceClientType.
    expect(decodeURIComponent(emu.usernames.get(M) ?? '')).toMatch(/DeviceClientType=azure-iot-device\/[^&]*\)Contoso\.EddyOffer\.Standard$/);
    expect(emu.twin(M).reported).toMatchObject({ eddy: { version: expect.any(String) }, config: { status: 'applied' } });
    const signsBefore = emu.stats.signRequests;

    for (const [i, s] of [0, 20, 40].entries()) await emu.sendInput(M, 'telemetry', sensorBody(T0 + s * 1000, 40 + i, 1, 20, 25), { deviceId: 'cs-1' });
    await emu.sendInput(M, 'telemetry', sensorBody(T0 + MINUTE + 10_000, 30, 1, 20, 25), { deviceId: 'cs-1' });
    const got = await waitForUpstreamCount(emu, M, (m) => m.output === 'summaries', 2, 15_000);
    const machine = got.map((m) => bodyOf<SummaryBody>(m)).find((b) => b.rule === 'machine1m');
    expect(machine).toMatchObject({ group: { deviceId: 'cs-1' }, count: 3, values: { tempAvg: 41, tempMin: 40, tempMax: 42, tempStdev: 1 }, revision: 0 });
    for (const m of got) expect([m.contentType, m.contentEncoding, m.properties['eddy-kind']]).toEqual(['application/json', 'utf-8', 'summary']);
    expect(emu.stats.signRequests).toBe(signsBefore); // the key came from the connection string
    expect(upstreamOf(emu, M).every((m) => m.deviceId === emu.deviceId && m.moduleId === M)).toBe(true);
  });
});
