import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EdgeHubConnection, mqttSocketOf, type EdgeHubOptions, type InputMeta } from '../../../src/io/edgehub/edgeHubConnection.js';
import type { OutputMessage } from '../../../src/contracts/output.js';
import { type EdgeHubEmulator, startEdgeHubEmulator, useModuleEnv } from '../../helpers/edgeHubEmulator.js';
import { recordingLogger } from './testLog.js';

// Real SDK (azure-iot-device 1.18.4 / -mqtt 1.16.4) against the real TLS broker of the emulator.

const MODULE = 'analytics';

function message(id: string, overrides: Partial<OutputMessage> = {}): OutputMessage {
  return {
    id,
    output: 'summaries',
    kind: 'summary',
    rule: 'machineTemp1m',
    groupKey: '{"deviceId":"dev1"}',
    body: {
      rule: 'machineTemp1m',
      group: { deviceId: 'dev1' },
      window: { type: 'tumbling', start: '2026-11-26T03:00:00.000Z', end: '2026-11-26T03:01:00.000Z' },
      count: 3,
      values: { avg: 50 },
      revision: 0,
    },
    createdAt: 0,
    ...overrides,
  };
}

const waitUntil = async (cond: () => boolean, timeoutMs = 10_000): Promise<void> => {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

/**
 * The socket under the connection's current SDK client and whether TCP_NODELAY is on it. Node keeps
 * the last `setNoDelay` in the socket's `kSetNoDelay` symbol (net.js, Node 20-24) and only records it
 * when it went to the handle (for TLS, TLSWrap forwards `setNoDelay` to the TCP handle), so true
 * means the OS socket has it.
 */
function socketState(c: EdgeHubConnection): { socket: object; noDelay: unknown; hasHandle: boolean } {
  const socket = mqttSocketOf((c as unknown as { client: unknown }).client);
  if (!socket) throw new Error('SDK socket not found: the private path in mqttSocketOf no longer matches the SDK');
  const sym = Object.getOwnPropertySymbols(socket).find((x) => x.description === 'kSetNoDelay');
  if (!sym) throw new Error('this Node keeps no kSetNoDelay on sockets');
  const handle = (socket as { _handle?: { setNoDelay?: unknown } })._handle;
  return { socket, noDelay: (socket as Record<symbol, unknown>)[sym], hasHandle: typeof handle?.setNoDelay === 'function' };
}

describe('EdgeHubConnection against the edgeHub emulator', () => {
  let emu: EdgeHubEmulator;
  let restoreEnv: () => void;
  let conn: EdgeHubConnection | undefined;
  let log: ReturnType<typeof recordingLogger>;

  const connect = async (extra: Partial<EdgeHubOptions> = {}): Promise<EdgeHubConnection> => {
    conn = await EdgeHubConnection.fromEnvironment({ log, twinTimeoutMs: 1500, backoff: { initialMs: 100, maxMs: 500 }, ...extra });
    return conn;
  };

  beforeEach(async () => {
    emu = await startEdgeHubEmulator({
      routes: [
        'FROM /messages/modules/analytics/outputs/* INTO $upstream',
        'FROM /messages/modules/sensor/outputs/temperatureOutput INTO BrokeredEndpoint("/modules/analytics/inputs/telemetry")',
      ],
    });
    restoreEnv = useModuleEnv(emu.moduleEnv(MODULE));
    log = recordingLogger();
  });

  afterEach(async () => {
    await conn?.close();
    conn = undefined;
    restoreEnv();
    await emu.close();
    // Secrets never reach the log (src/metrics/logger.ts redacts them; the SAS sig/key would show up as these).
    expect(log.text()).not.toMatch(/SharedAccessSignature sr=|SharedAccessKey=[A-Za-z0-9+/]/);
  });

  it('workload path: sends an output with contentType, contentEncoding, messageId and eddy properties, resolved on PUBACK', async () => {
    const c = await connect();
    expect(c.reachable).toBe(false);
    await c.open();
    expect(c.reachable).toBe(true);
    await c.send(message('mid-1'));
    await c.send(message('mid-2', { output: 'alerts', kind: 'alert', rule: 'tempSpike' }));
    expect(emu.upstream.map((m) => [m.output, m.messageId, m.contentType, m.contentEncoding, m.properties])).toEqual([
      ['summaries', 'mid-1', 'application/json', 'utf-8', { 'eddy-kind': 'summary', 'eddy-rule': 'machineTemp1m' }],
      ['alerts', 'mid-2', 'application/json', 'utf-8', { 'eddy-kind': 'alert', 'eddy-rule': 'tempSpike' }],
    ]);
    expect(JSON.parse(emu.upstream[0]!.body.toString('utf8'))).toEqual(message('x').body);
    // Workload mode: CA from /trust-bundle (fromEnvironment's and ours), SAS signed by the workload API.
    expect(emu.stats.trustBundleRequests).toBe(2);
    expect(emu.stats.signRequests).toBeGreaterThanOrEqual(1);
  });

  it('announces the product info it is given (EDDY_PRODUCT_INFO) in the MQTT username, the placeholder by default', async () => {
    const parts = (u: string): string => decodeURIComponent(new URLSearchParams(u.split('?')[1]).get('DeviceClientType') ?? '');
    const c = await connect({ productInfo: 'Contoso.EddyOffer.Standard' });
    await c.open();
    // The SDK appends the product info to its user agent with no separator (azure-iot-device 1.18.4).
    expect(parts(emu.usernames.get(MODULE)!)).toMatch(/^azure-iot-device\/1\.18\.4 \(.*\)Contoso\.EddyOffer\.Standard$/);
    await c.close();
    conn = undefined;
    const d = await connect();
    await d.open();
    expect(parts(emu.usernames.get(MODULE)!)).toMatch(/\)PublisherId\.OfferId\.SkuId$/);
  });

  it('dispatches inputs synchronously with $.cdid / $.cmid / messageId / user properties, also through a route', async () => {
    const c = await connect();
    const got: Array<{ input: string; body: string; meta: InputMeta }> = [];
    c.onInput((input, body, meta) => got.push({ input, body: body.toString('utf8'), meta }));
    await c.open();
    await emu.sendInput(MODULE, 'telemetry', { machine: { temperature: 21.5 } }, {
      deviceId: 'sensor dev/1',
      moduleId: 'sim&co',
      messageId: 'in-1',
      props: { 'sp ace': 'a/b&c=d', sequenceNumber: '7' },
    });
    await emu.sendInput(MODULE, 'control', 'plain');
    await waitUntil(() => got.length === 2);
    expect(got[0]).toEqual({
      input: 'telemetry',
      body: '{"machine":{"temperature":21.5}}',
      meta: { deviceId: 'sensor dev/1', moduleId: 'sim&co', messageId: 'in-1', properties: { 'sp ace': 'a/b&c=d', sequenceNumber: '7' } },
    });
    expect(got[1]).toEqual({ input: 'control', body: 'plain', meta: { deviceId: 'dev1', properties: {} } });
    await waitUntil(() => emu.inputAcks.length === 2);
  });

  it('reads the twin, reports properties, and delivers desired patches with their version', async () => {
    emu.pushDesired(MODULE, { rules: { a: { kind: 'aggregate' } }, store: { maxMB: 10 } }); // before connect: only in the twin
    const c = await connect();
    const patches: Array<[Record<string, unknown>, number]> = [];
    c.onDesired((p, v) => patches.push([p, v]));
    await c.open();
    const twin = await c.getTwin();
    expect(twin.desired).toEqual({ rules: { a: { kind: 'aggregate' } }, store: { maxMB: 10 }, $version: 2 });
    expect(twin.reported).toEqual({ $version: 1 });
    await c.reportProperties({ config: { desiredVersion: 2, status: 'applied' }, rules: { a: { status: 'active' } } });
    await c.reportProperties({ rules: { a: null, b: { status: 'rejected' } } });
    expect(emu.twin(MODULE).reported).toEqual({ $version: 3, config: { desiredVersion: 2, status: 'applied' }, rules: { b: { status: 'rejected' } } });
    expect(emu.pushDesired(MODULE, { rules: { a: null } })).toBe(3);
    await waitUntil(() => patches.length === 1);
    expect(patches).toEqual([[{ rules: { a: null } }, 3]]); // null kept: the lead merges with IoT Hub semantics
    expect((await c.getTwin()).desired).toEqual({ rules: {}, store: { maxMB: 10 }, $version: 3 });
    expect(patches).toHaveLength(1); // a GET is not a patch
  });

  it('answers direct methods with the handler status, 500 when it rejects, and keeps working', async () => {
    const c = await connect();
    c.onMethod('validateRules', async (payload) =>
      payload && typeof payload === 'object' && 'rules' in payload ? { status: 200, payload: { valid: true } } : { status: 400, payload: { message: 'rules missing' } },
    );
    c.onMethod('boom', async () => {
      throw new Error('kaput');
    });
    await c.open();
    expect(await emu.invokeMethod(MODULE, 'validateRules', { rules: {} })).toEqual({ status: 200, payload: { valid: true } });
    expect(await emu.invokeMethod(MODULE, 'validateRules', undefined)).toEqual({ status: 400, payload: { message: 'rules missing' } });
    expect(await emu.invokeMethod(MODULE, 'boom', {})).toEqual({ status: 500, payload: { message: 'kaput' } });
    c.onMethod('flush', async () => ({ status: 200, payload: null })); // registered after open
    expect(await emu.invokeMethod(MODULE, 'flush', null)).toEqual({ status: 200, payload: null });
  });

  it('connection-string path (EdgeHubConnectionString + EdgeModuleCACertificateFile) works without the workload API', async () => {
    restoreEnv();
    restoreEnv = useModuleEnv(emu.connectionStringEnv(MODULE));
    const c = await connect();
    await c.open();
    await c.send(message('cs-1'));
    expect((await c.getTwin()).reported).toEqual({ $version: 1 });
    expect(emu.upstream.map((m) => m.messageId)).toEqual(['cs-1']);
    expect(emu.stats.trustBundleRequests + emu.stats.signRequests).toBe(0);
  });

  it('keeps retrying the first connection while edgeHub is absent, logging each backoff step once', async () => {
    const outage = emu.outage(3000);
    const c = await connect({ backoff: { initialMs: 200, maxMs: 800 } });
    const t0 = Date.now();
    await c.open();
    await outage;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2500); // it cannot have connected while nothing listened
    const failures = log.lines.filter((l) => l.level === 'warn' && l.msg === 'first connection to edgeHub failed; retrying');
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures.map((l) => (l.obj as { attempt: number }).attempt)).toEqual(failures.map((_, i) => i + 1));
    // The SDK calls ECONNREFUSED "Not authorized" (finding 1 in src/io/edgehub/edgeHubConnection.ts); the log keeps the real cause.
    expect((failures[0]!.obj as { cause?: string }).cause).toMatch(/ECONNREFUSED/);
    await c.send(message('after-outage'));
    expect(emu.upstream.map((m) => m.messageId)).toEqual(['after-outage']);
  });

  it('keeps retrying with a rejected SAS (returnCode 5) and closes promptly while doing so', async () => {
    restoreEnv();
    restoreEnv = useModuleEnv(emu.connectionStringEnv(MODULE, Buffer.alloc(32, 7).toString('base64')));
    const c = await connect();
    const opening = c.open();
    await waitUntil(() => emu.stats.authFailures >= 2);
    await c.close();
    await opening;
    expect(c.reachable).toBe(false);
    expect(emu.stats.connects.get(MODULE)).toBeUndefined();
  });

  it('after dropConnections: fires onReconnect, sends arrive, inputs still flow (session kept)', async () => {
    const c = await connect();
    let reconnects = 0;
    const inputs: string[] = [];
    c.onReconnect(() => reconnects++);
    c.onInput((_i, body) => inputs.push(body.toString()));
    await c.open();
    expect(reconnects).toBe(0);
    emu.dropConnections();
    await waitUntil(() => reconnects === 1);
    expect(c.reachable).toBe(true);
    await c.send(message('after-drop'));
    await emu.sendInput(MODULE, 'telemetry', 'in-after-drop');
    await waitUntil(() => inputs.length === 1);
    expect(emu.upstream.map((m) => m.messageId)).toEqual(['after-drop']);
    expect((await c.getTwin()).desired.$version).toBe(1);
  });

  it('turns TCP_NODELAY on for the SDK socket after open and again on the new socket after a reconnect', async () => {
    const c = await connect();
    let reconnects = 0;
    c.onReconnect(() => reconnects++);
    await c.open();
    const first = socketState(c);
    expect(first).toMatchObject({ noDelay: true, hasHandle: true });
    emu.dropConnections();
    await waitUntil(() => reconnects === 1);
    const second = socketState(c);
    expect(second.socket).not.toBe(first.socket);
    expect(second).toMatchObject({ noDelay: true, hasHandle: true });
    await c.send(message('after-drop'));
    expect(log.text()).not.toContain('TCP_NODELAY not set');
  });

  it('guardWrites: the hook runs after each input handler and before its PUBACK leaves, on every new socket', async () => {
    const c = await connect();
    const events: string[] = [];
    let reconnects = 0;
    c.onReconnect(() => reconnects++);
    c.onInput((_i, body) => events.push(`in ${body.toString()}`));
    c.guardWrites(() => events.push('write'));
    expect(c.writesGuarded).toBe(false);
    await c.open();
    expect(c.writesGuarded).toBe(true);
    // Three inputs in one burst: the broker writes them in one go, the module handles them in one turn.
    await Promise.all(['a', 'b', 'c'].map((b) => emu.sendInput(MODULE, 'telemetry', b)));
    await waitUntil(() => emu.inputAcks.length === 3);
    const handled = events.filter((e) => e.startsWith('in ')).length;
    expect(handled).toBe(3);
    // Every PUBACK reached the broker, so a write ran after the last handler.
    expect(events.lastIndexOf('write')).toBeGreaterThan(events.lastIndexOf('in c'));
    emu.dropConnections();
    await waitUntil(() => reconnects === 1);
    expect(c.writesGuarded).toBe(true);
    events.length = 0;
    await emu.sendInput(MODULE, 'telemetry', 'd');
    await waitUntil(() => emu.inputAcks.length === 4);
    expect(events.indexOf('write')).toBeGreaterThan(events.indexOf('in d'));
  });

  it('holds PUBACKs and summaries until the end of the turn, but lets an alert leave before the next input of the same read', async () => {
    const c = await connect();
    const events: string[] = [];
    // Which event-loop turn each input was handled in: a burst handled in one turn came in one socket read.
    let turn = 0;
    let turnArmed = false;
    const turnOf = new Map<string, number>();
    c.onInput((_i, raw) => {
      const b = raw.toString();
      if (!turnArmed) {
        turnArmed = true;
        setImmediate(() => {
          turn++;
          turnArmed = false;
        });
      }
      turnOf.set(b, turn);
      events.push(`in ${b}`);
      // The second input of each burst makes an output: a summary or an alert.
      if (b.endsWith('-2')) void c.send(message(`out-${b}`, b.startsWith('alert') ? { kind: 'alert', output: 'alerts' } : {})).catch(() => undefined);
    });
    c.guardWrites(() => events.push('write'));
    await c.open();
    const oneRead = async (kind: string): Promise<string[]> => {
      for (let attempt = 0; attempt < 30; attempt++) {
        events.length = 0;
        const names = [1, 2, 3].map((i) => `${kind}${attempt}-${i}`);
        const acks = emu.inputAcks.length;
        const ups = emu.upstream.length;
        await Promise.all(names.map((n) => emu.sendInput(MODULE, 'telemetry', n)));
        await waitUntil(() => emu.inputAcks.length === acks + 3 && emu.upstream.length === ups + 1);
        if (turnOf.get(names[0]!) === turnOf.get(names[2]!)) return names;
      }
      throw new Error(`no burst of 3 inputs arrived in one socket read in 30 attempts (${kind})`);
    };
    const [s1, , s3] = await oneRead('summary');
    // Nothing left the socket while the burst was handled: the summary waited with the PUBACKs.
    expect(events.slice(events.indexOf(`in ${s1}`), events.indexOf(`in ${s3}`))).not.toContain('write');
    const [, a2, a3] = await oneRead('alert');
    // The alert (and the PUBACKs before it, after the input-log hook) left before the third input was handled.
    expect(events.slice(events.indexOf(`in ${a2}`), events.indexOf(`in ${a3}`))).toContain('write');
    expect(emu.upstream.at(-1)?.output).toBe('alerts');
  });

  it('fails a send fast while edgeHub is down, and the same message (same messageId) goes through afterwards', async () => {
    const c = await connect({ backoff: { initialMs: 2000, maxMs: 2000 } });
    await c.open();
    const outage = emu.outage(1500);
    await waitUntil(() => !c.reachable);
    await expect(c.send(message('retry-me'))).rejects.toMatchObject({ name: 'NotConnectedError' });
    expect(c.reachable).toBe(false);
    await outage;
    await waitUntil(() => c.reachable, 10_000);
    await c.send(message('retry-me'));
    expect(emu.upstream.map((m) => m.messageId)).toEqual(['retry-me']);
  });

  it('after a broker restart that loses sessions: getTwin recovers within its timeout, desired patches and inputs arrive again', async () => {
    const c = await connect();
    const patches: number[] = [];
    const inputs: string[] = [];
    let reconnects = 0;
    /** Per session start, the inputs dispatched before it: none may come before its own session is reported. */
    const sessions: number[] = [];
    c.onDesired((_p, v) => patches.push(v));
    c.onInput((_i, body) => inputs.push(body.toString()));
    c.onReconnect(() => reconnects++);
    c.onSession(() => sessions.push(inputs.length));
    await c.open();
    await c.getTwin();
    await emu.restartLosingSessions();
    await waitUntil(() => reconnects === 1);
    // The SDK still thinks its twin topics are subscribed: the first GET gets no answer (finding 5 in src/io/edgehub/edgeHubConnection.ts).
    const twin = await c.getTwin();
    expect(twin.desired.$version).toBe(1);
    expect(log.lines.some((l) => l.msg === 'twin GET timed out; re-creating the edgeHub client')).toBe(true);
    expect(reconnects).toBe(1); // the re-created client's first connect is not reported as a reconnect
    // ... but it is a session start: the first connect, the reconnect, the re-created client.
    expect(sessions).toEqual([0, 0, 0]);
    const v = emu.pushDesired(MODULE, { rules: { b: { kind: 'anomaly' } } });
    await waitUntil(() => patches.includes(v));
    await emu.sendInput(MODULE, 'telemetry', 'in-after-restart');
    await waitUntil(() => inputs.includes('in-after-restart'));
    await c.send(message('after-restart'));
    expect(emu.upstream.map((m) => m.messageId)).toEqual(['after-restart']);
  });

  it('a client re-created during an outage stays the only one: the replaced client\'s reconnect loop neither reopens it nor knocks the new one off', async () => {
    // Found by test/oracle/moduleOutageDifferential.test.ts (seed 2, run 3): a twin GET in flight when the
    // link dropped timed out and re-created the client while the old client's reconnect loop slept; that
    // loop then reopened the old client, edgeHub (one connection per client id) closed the fresh one, whose
    // reconnect was skipped as "already reconnecting", and the link stayed down for eddy while the old
    // client still took inputs: connected time stood still, so no idle flush and no `missing` (docs/contract.md
    // section 5) until an output happened to wake the fresh client 19 s later.
    // Backoff (jitter pinned near its top): the old loop retries at about 0.2, 0.6, 1.4 and 3.0 s (edgeHub is
    // back at 3.3 s), then 6.2 s; the fresh client from the twin timeout (0.8 s) at 1.0, 1.4, 2.2 and 3.8 s:
    // it connects first, and the old loop wakes up with it connected.
    const c = await connect({ twinTimeoutMs: 800, backoff: { initialMs: 200, maxMs: 4_000 }, random: () => 0.99 });
    const links: boolean[] = [];
    const inputs: string[] = [];
    c.onLink((up) => links.push(up));
    c.onInput((_i, body) => inputs.push(body.toString()));
    await c.open();
    await c.getTwin();
    // In flight when the link drops: no answer, so it times out during the outage and re-creates the client.
    const twin = c.getTwin();
    const outage = emu.outage(3_300);
    expect((await twin).desired.$version).toBe(1);
    await outage;
    expect(log.lines.some((l) => l.msg === 'twin GET timed out; re-creating the edgeHub client')).toBe(true);
    await waitUntil(() => c.reachable && emu.isConnected(MODULE), 10_000);
    const upAt = links.length;
    expect(links[upAt - 1]).toBe(true);
    // Past the old loop's last wake-up (6.2 s after the drop) with margin.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(links.slice(upAt)).toEqual([]);
    expect(c.reachable).toBe(true);
    await emu.sendInput(MODULE, 'telemetry', 'in-after-recreate');
    await waitUntil(() => inputs.includes('in-after-recreate'));
    await c.send(message('after-recreate'));
    expect(emu.upstream.map((m) => m.messageId)).toEqual(['after-recreate']);
    expect(links.slice(upAt)).toEqual([]);
  });

  it('a client re-created for a reported patch that timed out during an outage reports a reconnect: a desired patch made meanwhile gets read', async () => {
    // Found by test/oracle/moduleTwinDifferential.test.ts: the re-created client's first connect was never
    // reported as a reconnect, on the grounds that the operation that timed out was re-reading the twin. A
    // reported patch is not: the module reads the twin only on `onReconnect` (src/app/eddyApp.ts), so a
    // desired patch made during the outage (edgeHub does not deliver it, docs/contract.md section 6) was
    // never applied, and the old rules ran on in silence until the next reconnect.
    const c = await connect({ twinTimeoutMs: 800, backoff: { initialMs: 200, maxMs: 4_000 }, random: () => 0.99 });
    let reconnects = 0;
    const patches: number[] = [];
    c.onReconnect(() => reconnects++);
    c.onDesired((_p, v) => patches.push(v));
    await c.open();
    await c.getTwin();
    // In flight when the link drops: no answer, so it times out during the outage and re-creates the client.
    const report = c.reportProperties({ config: { desiredVersion: 1 } }).catch((err: unknown) => err);
    const outage = emu.outage(3_300);
    // Made while edgeHub is away: not delivered.
    const v = emu.pushDesired(MODULE, { rules: { b: { kind: 'anomaly' } } });
    await outage;
    await report;
    expect(log.lines.some((l) => l.msg === 'reported patch timed out; re-creating the edgeHub client')).toBe(true);
    await waitUntil(() => c.reachable && emu.isConnected(MODULE), 10_000);
    expect(patches).not.toContain(v);
    // The lead learns of the missed patch only through a reconnect.
    await waitUntil(() => reconnects > 0, 10_000);
    expect((await c.getTwin()).desired.$version).toBe(v);
  });

  it('close() is bounded and idempotent; a closed connection refuses sends', async () => {
    const c = await connect();
    await c.open();
    await c.close();
    await c.close();
    await expect(c.send(message('late'))).rejects.toMatchObject({ name: 'NotConnectedError' });
  });
});
