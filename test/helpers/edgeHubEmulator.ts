/**
 * An in-process stand-in for IoT Edge's edgeHub (MQTT over TLS, via aedes) and the
 * iotedged workload API (HTTP on a unix socket), good enough to run the REAL
 * azure-iot-device ModuleClient against it offline. The SDK behaviours it must reproduce are listed
 * at the top of src/io/edgehub/edgeHubConnection.ts ("finding N" below refers to that list).
 *
 * In-process: `const emu = await startEdgeHubEmulator(); Object.assign(process.env, emu.moduleEnv('analytics'))`.
 * As a process (benchmarks, child-process tests): `tsx test/helpers/edgeHubEmulatorCli.ts` (see that file).
 */
import { createHmac, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { Aedes, type Client } from 'aedes';

/** Directory of the committed test-only CA, server cert and module key (see its README). */
export const TEST_CERTS_DIR = fileURLToPath(new URL('../fixtures/certs/', import.meta.url));

export interface EdgeHubEmulatorOptions {
  deviceId?: string;
  iothubHostName?: string;
  generationId?: string;
  /** MQTT/TLS port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** edgeHub route strings (see `parseRoute`); default `FROM /messages/* INTO $upstream`. */
  routes?: string[];
  /** base64 symmetric key of every module (default: test/fixtures/certs/module.key). */
  moduleKey?: string;
  /** Modules whose SAS must be rejected whatever the signature (CONNACK returnCode 5). */
  rejectModules?: string[];
}

/** A message that reached `$upstream` through a route. */
export interface UpstreamMessage {
  deviceId: string;
  moduleId: string;
  output: string;
  messageId: string | undefined;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  /** `$.`-prefixed system properties as sent (`$.on`, `$.mid`, `$.ct`, `$.ce`, ...). */
  systemProperties: Record<string, string>;
  /** User (application) properties. */
  properties: Record<string, string>;
  body: Buffer;
  topic: string;
}

/** An input message the broker saw acknowledged (PUBACK) by a module. */
export interface InputAck {
  moduleId: string;
  topic: string;
  packetId: number | undefined;
}

export interface SendInputOptions {
  /** Sender device; becomes `$.cdid` (default: the emulator's device id). */
  deviceId?: string;
  /** Sender module; becomes `$.cmid` (omitted when undefined). */
  moduleId?: string;
  messageId?: string;
  contentType?: string;
  contentEncoding?: string;
  props?: Record<string, string>;
}

export interface Twin {
  desired: Record<string, unknown> & { $version: number };
  reported: Record<string, unknown> & { $version: number };
}

type Route = { fromModule: string | '*'; fromOutput: string | '*'; to: { upstream: true } | { module: string; input: string } };

/**
 * Parses the subset of edgeHub route syntax the emulator understands:
 * `FROM /messages/* | /messages/modules/<m>/* | /messages/modules/<m>/outputs/<o|*>`
 * `INTO $upstream | BrokeredEndpoint("/modules/<t>/inputs/<i>")`. No WHERE clause.
 * Returns an Error instead of throwing (aedes lib/utils.js style).
 */
export function parseRoute(route: string): Route | Error {
  const m = /^\s*FROM\s+\/messages\/(?:\*|modules\/([^/\s]+)\/(?:\*|outputs\/([^/\s]+)))\s+INTO\s+(.+?)\s*$/i.exec(route);
  if (!m) return new Error(`unsupported route: ${route}`);
  const fromModule = m[1] ?? '*';
  const fromOutput = m[2] ?? '*';
  const sink = m[3]!;
  if (sink === '$upstream') return { fromModule, fromOutput, to: { upstream: true } };
  const b = /^BrokeredEndpoint\(\s*"\/modules\/([^/"]+)\/inputs\/([^/"]+)"\s*\)$/i.exec(sink);
  if (!b) return new Error(`unsupported route sink: ${sink}`);
  return { fromModule, fromOutput, to: { module: b[1]!, input: b[2]! } };
}

/** Encodes topic properties the way the SDK and edgeHub do. Never URLSearchParams: it turns ' ' into '+', an MQTT wildcard (finding 7). */
export function encodeTopicProperties(props: Record<string, string>): string {
  return Object.entries(props)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
}

function decodeTopicProperties(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const pair of s.split('&')) {
    const i = pair.indexOf('=');
    const k = decodeURIComponent(i < 0 ? pair : pair.slice(0, i));
    out[k] = i < 0 ? '' : decodeURIComponent(pair.slice(i + 1));
  }
  return out;
}

/** IoT Hub twin merge: objects merge recursively, `null` deletes. */
function mergePatch(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$version') continue;
    if (v === null) delete target[k];
    else if (typeof v === 'object' && !Array.isArray(v)) {
      const cur = target[k];
      const dest = cur && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Record<string, unknown>) : {};
      mergePatch(dest, v as Record<string, unknown>);
      target[k] = dest;
    } else target[k] = v;
  }
}

const noop = (): void => undefined;

/** MQTT topic-filter match (`+`, `#`); `$`-topics only match filters that name them (MQTT 3.1.1 section 4.7.2). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

/**
 * The emulator. One device, any number of modules (client id `<device>/<module>`).
 * Sessions (`clean: false`) live in the aedes instance: `dropConnections` and `outage`
 * keep them, `restartLosingSessions` does not (finding 5).
 */
export class EdgeHubEmulator extends EventEmitter {
  readonly deviceId: string;
  readonly iothubHostName: string;
  readonly generationId: string;
  readonly tmpDir: string;
  readonly socketPath: string;
  readonly caPath = join(TEST_CERTS_DIR, 'ca.pem');
  /** Every message that reached `$upstream`, in arrival order. */
  readonly upstream: UpstreamMessage[] = [];
  /** Every input message a module acknowledged, in PUBACK arrival order. */
  readonly inputAcks: InputAck[] = [];
  /** Counters for assertions: CONNECTs accepted and rejected per module, workload calls. */
  readonly stats = { connects: new Map<string, number>(), authFailures: 0, trustBundleRequests: 0, signRequests: 0 };
  /** The MQTT username of each module's last accepted connect (it carries the SDK's user agent and product info). */
  readonly usernames = new Map<string, string>();

  private broker!: Aedes;
  private readonly tls: TlsServer;
  private readonly workload: HttpServer;
  private readonly sockets = new Set<Socket>();
  private readonly twins = new Map<string, Twin>();
  private readonly pendingMethods = new Map<string, (r: { status: number; payload: unknown }) => void>();
  private routes: Route[] = [];
  /** Topic filters per client id, as the current broker instance knows them (its sessions). */
  private subscriptions = new Map<string, Set<string>>();
  private readonly moduleKey: Buffer;
  private readonly rejectModules: Set<string>;
  private pubackDelay: { ms: number; remaining: number } = { ms: 0, remaining: 0 };
  private _heldPublishes = 0;
  private _port = 0;

  private constructor(opts: EdgeHubEmulatorOptions) {
    super();
    this.deviceId = opts.deviceId ?? 'dev1';
    this.iothubHostName = opts.iothubHostName ?? 'testhub.azure-devices.net';
    this.generationId = opts.generationId ?? 'gen1';
    this.moduleKey = Buffer.from(opts.moduleKey ?? readFileSync(join(TEST_CERTS_DIR, 'module.key'), 'utf8').trim(), 'base64');
    this.rejectModules = new Set(opts.rejectModules ?? []);
    this.setRoutes(opts.routes ?? ['FROM /messages/* INTO $upstream']);
    this.tmpDir = mkdtempSync(join(tmpdir(), 'edgehub-emu-'));
    this.socketPath = join(this.tmpDir, 'workload.sock');
    this.tls = createTlsServer(
      { key: readFileSync(join(TEST_CERTS_DIR, 'server.key')), cert: readFileSync(join(TEST_CERTS_DIR, 'server.pem')) },
      (sock) => {
        this.sockets.add(sock);
        sock.on('close', () => this.sockets.delete(sock));
        sock.on('error', noop);
        this.broker.handle(sock);
      },
    );
    this.tls.on('tlsClientError', noop);
    this.workload = createHttpServer((req, res) => this.serveWorkload(req, res));
  }

  /** Starts broker, TLS listener and workload socket. */
  static async start(opts: EdgeHubEmulatorOptions = {}): Promise<EdgeHubEmulator> {
    const emu = new EdgeHubEmulator(opts);
    emu.broker = await emu.createBroker();
    await new Promise<void>((resolve, reject) => {
      emu.tls.once('error', reject);
      emu.tls.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    emu._port = (emu.tls.address() as { port: number }).port;
    await new Promise<void>((resolve) => emu.workload.listen(emu.socketPath, () => resolve()));
    return emu;
  }

  /** The MQTT/TLS port; stays the same across `outage` and `restartLosingSessions`. */
  get port(): number {
    return this._port;
  }

  get workloadUri(): string {
    return `unix://${this.socketPath}`;
  }

  /** The exact variables edgeAgent gives a module (the SDK's `ModuleClient.fromEnvironment` workload-API path). */
  moduleEnv(moduleId: string): Record<string, string> {
    return {
      IOTEDGE_WORKLOADURI: this.workloadUri,
      IOTEDGE_DEVICEID: this.deviceId,
      IOTEDGE_MODULEID: moduleId,
      IOTEDGE_MODULEGENERATIONID: this.generationId,
      IOTEDGE_IOTHUBHOSTNAME: this.iothubHostName,
      IOTEDGE_GATEWAYHOSTNAME: `localhost:${this.port}`,
      IOTEDGE_AUTHSCHEME: 'sasToken',
    };
  }

  /** The iotedgehubdev-style variables (`fromEnvironment`'s connection-string path). `key` overrides the module key (bad-SAS tests). */
  connectionStringEnv(moduleId: string, key = this.moduleKey.toString('base64')): Record<string, string> {
    return {
      EdgeHubConnectionString: `HostName=${this.iothubHostName};DeviceId=${this.deviceId};ModuleId=${moduleId};SharedAccessKey=${key};GatewayHostName=localhost:${this.port}`,
      EdgeModuleCACertificateFile: this.caPath,
    };
  }

  setRoutes(routes: string[]): void {
    const parsed = routes.map(parseRoute);
    const bad = parsed.find((r): r is Error => r instanceof Error);
    if (bad) throw bad;
    this.routes = parsed as Route[];
  }

  /** The module's twin as IoT Hub holds it (a live object; clone before keeping). */
  twin(moduleId: string): Twin {
    let t = this.twins.get(moduleId);
    if (!t) {
      t = { desired: { $version: 1 }, reported: { $version: 1 } };
      this.twins.set(moduleId, t);
    }
    return t;
  }

  /** Whether the module currently has a connected MQTT client. */
  isConnected(moduleId: string): boolean {
    return Boolean(this.client(moduleId)?.connected);
  }

  /** Merges a desired patch, bumps `$version`, and pushes it to the module if connected (else it is missed, as in edgeHub). Returns the new version. */
  pushDesired(moduleId: string, patch: Record<string, unknown>): number {
    const t = this.twin(moduleId);
    mergePatch(t.desired, patch);
    t.desired.$version += 1;
    const v = t.desired.$version;
    this.toClient(moduleId, `$iothub/twin/PATCH/properties/desired/?$version=${v}`, JSON.stringify({ ...patch, $version: v }));
    return v;
  }

  /**
   * Invokes a direct method the way IoT Hub does. Resolves with the module's answer, or
   * status 404 when the module is not connected and 504 on timeout (IoT Hub's codes).
   */
  invokeMethod(moduleId: string, name: string, payload: unknown, timeoutMs = 5000): Promise<{ status: number; payload: unknown }> {
    if (!this.isConnected(moduleId)) return Promise.resolve({ status: 404, payload: { message: 'module not connected' } });
    const rid = randomUUID();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pendingMethods.delete(rid);
        resolve({ status: 504, payload: { message: 'timeout' } });
      }, timeoutMs);
      this.pendingMethods.set(rid, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      // Always a JSON body: IoT Hub sends `null` for no payload, and the SDK JSON.parses any Buffer, even an empty one.
      this.toClient(moduleId, `$iothub/methods/POST/${name}/?$rid=${rid}`, JSON.stringify(payload ?? null));
    });
  }

  /**
   * Delivers an input message as edgeHub does: QoS 1 to `devices/<d>/modules/<t>/inputs/<in>/<props>`,
   * queued in the module's session while it is offline. The topic always has a segment after the
   * input name, else the SDK silently drops it (finding 8). Resolves when the broker accepted it.
   */
  sendInput(targetModule: string, inputName: string, body: string | Buffer | object, opts: SendInputOptions = {}): Promise<void> {
    const sys: Record<string, string> = {};
    if (opts.messageId !== undefined) sys['$.mid'] = opts.messageId;
    if (opts.contentType !== undefined) sys['$.ct'] = opts.contentType;
    if (opts.contentEncoding !== undefined) sys['$.ce'] = opts.contentEncoding;
    sys['$.cdid'] = opts.deviceId ?? this.deviceId;
    if (opts.moduleId !== undefined) sys['$.cmid'] = opts.moduleId;
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return this.publishInput(targetModule, inputName, payload, { ...(opts.props ?? {}), ...sys });
  }

  /** Destroys every client connection; the listener stays up and sessions survive. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Stops listening and drops every connection for `ms`, then listens again on the same port. Sessions survive. */
  async outage(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      this.tls.close(() => resolve());
      this.dropConnections();
    });
    await new Promise((r) => setTimeout(r, ms));
    await new Promise<void>((resolve, reject) => {
      this.tls.once('error', reject);
      this.tls.listen(this._port, '127.0.0.1', () => {
        this.tls.off('error', reject);
        resolve();
      });
    });
  }

  /** Replaces the broker by a fresh one (same port, twins kept): every session and subscription is forgotten. */
  async restartLosingSessions(): Promise<void> {
    const old = this.broker;
    this.subscriptions = new Map();
    this.broker = await this.createBroker();
    this.dropConnections();
    await new Promise<void>((resolve) => old.close(() => resolve()));
  }

  /**
   * Withholds the PUBACK of the next `count` publishes from modules (default: all until `delayPubacks(0)`) by `ms`.
   * aedes handles one client's packets in order, so everything that client sends after a delayed
   * publish (a resend, twin requests) also waits behind it, like a stalled edgeHub.
   */
  delayPubacks(ms: number, count = Number.POSITIVE_INFINITY): void {
    this.pubackDelay = { ms, remaining: ms > 0 ? count : 0 };
  }

  /** How many module publishes `delayPubacks` holds right now (received, PUBACK not yet sent). */
  get heldPublishes(): number {
    return this._heldPublishes;
  }

  /** Resolves with the first upstream message (already recorded or future) matching `predicate`. */
  waitForUpstream(predicate: (m: UpstreamMessage) => boolean, timeoutMs = 5000): Promise<UpstreamMessage> {
    return this.waitFor('upstream', this.upstream, predicate, timeoutMs);
  }

  /** Resolves with the first input PUBACK (already recorded or future) matching `predicate`. */
  waitForInputAck(predicate: (a: InputAck) => boolean, timeoutMs = 5000): Promise<InputAck> {
    return this.waitFor('inputAck', this.inputAcks, predicate, timeoutMs);
  }

  /** Resolves when the module has a connected client whose subscriptions are in place. */
  waitForClient(moduleId: string, timeoutMs = 5000): Promise<void> {
    if (this.isConnected(moduleId)) return Promise.resolve();
    return this.waitFor('clientReady', [] as string[], (id) => id === moduleId, timeoutMs).then(noop);
  }

  async close(): Promise<void> {
    for (const resolve of this.pendingMethods.values()) resolve({ status: 504, payload: { message: 'emulator closed' } });
    this.pendingMethods.clear();
    this.dropConnections();
    await Promise.all([
      new Promise<void>((r) => this.tls.close(() => r())),
      new Promise<void>((r) => this.workload.close(() => r())),
      new Promise<void>((r) => this.broker.close(() => r())),
    ]);
    rmSync(this.tmpDir, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------------------

  private waitFor<T>(event: string, seen: T[], predicate: (x: T) => boolean, timeoutMs: number): Promise<T> {
    const found = seen.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const onEvent = (x: T): void => {
        if (!predicate(x)) return;
        clearTimeout(timer);
        this.off(event, onEvent);
        resolve(x);
      };
      const timer = setTimeout(() => {
        this.off(event, onEvent);
        reject(new Error(`edgeHub emulator: no matching ${event} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.on(event, onEvent);
    });
  }

  private client(moduleId: string): Client | undefined {
    return (this.broker as unknown as { clients: Record<string, Client> }).clients[`${this.deviceId}/${moduleId}`];
  }

  private moduleOf(client: Client): string {
    return client.id.slice(this.deviceId.length + 1);
  }

  private toClient(moduleId: string, topic: string, body: string): void {
    // Per-connection delivery at QoS 0, as edgeHub does for $iothub topics: there is no shared $iothub namespace.
    // Like edgeHub, only to a client whose session subscribed the topic: after a broker restart that lost
    // the session, the SDK's twin GETs go unanswered (finding 5), which is what tests must see.
    const filters = this.subscriptions.get(`${this.deviceId}/${moduleId}`);
    if (!filters || ![...filters].some((f) => topicMatches(f, topic))) return;
    this.client(moduleId)?.publish({ cmd: 'publish', topic, payload: Buffer.from(body), qos: 0, retain: false, dup: false }, noop);
  }

  private publishInput(targetModule: string, inputName: string, payload: Buffer, props: Record<string, string>): Promise<void> {
    const topic = `devices/${this.deviceId}/modules/${targetModule}/inputs/${inputName}/${encodeTopicProperties(props)}`;
    return new Promise((resolve, reject) =>
      this.broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (err) => (err ? reject(err) : resolve())),
    );
  }

  private async createBroker(): Promise<Aedes> {
    const broker = await Aedes.createBroker();
    broker.authenticate = (client, username, password, done) => {
      const fail = (why: string): void => {
        this.stats.authFailures += 1;
        this.emit('authFailure', { clientId: client.id, why });
        done(Object.assign(new Error(`bad SAS: ${why}`), { returnCode: 5 as const }), false);
      };
      const [dev, mod] = client.id.split('/');
      if (dev !== this.deviceId || !mod) return fail('client id is not <device>/<module>');
      if (!String(username).startsWith(`${this.iothubHostName}/${client.id}/?api-version=`)) return fail('username');
      if (this.rejectModules.has(mod)) return fail('module rejected by test');
      const q = Object.fromEntries(new URLSearchParams(String(password ?? '').replace(/^SharedAccessSignature /, '')));
      const sr = `${this.iothubHostName}/devices/${dev}/modules/${mod}`;
      if (q.sr !== sr) return fail('sr');
      const sig = createHmac('sha256', this.moduleKey).update(`${encodeURIComponent(q.sr)}\n${q.se}`).digest('base64');
      if (q.sig !== sig) return fail('signature');
      if (Number(q.se) * 1000 < Date.now()) return fail('expired');
      this.stats.connects.set(mod, (this.stats.connects.get(mod) ?? 0) + 1);
      this.usernames.set(mod, String(username));
      done(null, true);
    };
    broker.authorizePublish = (client, packet, done) => {
      // Withholding the callback withholds the PUBACK (aedes handlers/publish.js runs authorize before enqueue+ack).
      if (client && packet.topic.startsWith('devices/') && this.pubackDelay.remaining > 0) {
        this.pubackDelay.remaining -= 1;
        this._heldPublishes += 1;
        setTimeout(() => {
          this._heldPublishes -= 1;
          done(null);
        }, this.pubackDelay.ms);
        return;
      }
      done(null);
    };
    broker.on('publish', (packet, client) => {
      if (client) this.onModulePublish(client, packet.topic, packet.payload as Buffer);
    });
    broker.on('ack', (packet, client) => {
      if (!client || !packet || packet.cmd !== 'publish') return;
      const ack: InputAck = { moduleId: this.moduleOf(client), topic: packet.topic, packetId: packet.messageId };
      this.inputAcks.push(ack);
      this.emit('inputAck', ack);
    });
    broker.on('subscribe', (subs, client) => {
      if (broker !== this.broker) return;
      const set = this.subscriptions.get(client.id) ?? new Set<string>();
      for (const sub of subs) set.add(sub.topic);
      this.subscriptions.set(client.id, set);
      if (subs.some((s) => s.topic.includes('/inputs/') || s.topic.startsWith('$iothub/'))) this.emit('clientReady', this.moduleOf(client));
    });
    broker.on('unsubscribe', (topics, client) => {
      for (const t of topics) this.subscriptions.get(client.id)?.delete(t);
    });
    broker.on('clientDisconnect', (client) => {
      if (broker === this.broker && (client as unknown as { clean?: boolean }).clean) this.subscriptions.delete(client.id);
    });
    broker.on('clientReady', (client) => this.emit('clientReady', this.moduleOf(client)));
    return broker;
  }

  private onModulePublish(client: Client, topic: string, payload: Buffer): void {
    const moduleId = this.moduleOf(client);
    let m: RegExpExecArray | null;
    if ((m = /^devices\/([^/]+)\/modules\/([^/]+)\/messages\/events\/(.*?)\/?$/.exec(topic))) {
      this.route(m[1]!, m[2]!, decodeTopicProperties(m[3]!), payload, topic);
    } else if ((m = /^\$iothub\/twin\/GET\/\?\$rid=(.+)$/.exec(topic))) {
      this.toClient(moduleId, `$iothub/twin/res/200/?$rid=${m[1]}`, JSON.stringify(this.twin(moduleId)));
    } else if ((m = /^\$iothub\/twin\/PATCH\/properties\/reported\/\?\$rid=(.+)$/.exec(topic))) {
      const t = this.twin(moduleId);
      try {
        mergePatch(t.reported, JSON.parse(payload.toString('utf8')) as Record<string, unknown>);
        t.reported.$version += 1;
        this.emit('reported', { moduleId, version: t.reported.$version });
        // edgeHub answers 204 with an empty body (DeviceMessageHandler.cs).
        this.toClient(moduleId, `$iothub/twin/res/204/?$rid=${m[1]}`, '');
      } catch {
        this.toClient(moduleId, `$iothub/twin/res/400/?$rid=${m[1]}`, JSON.stringify({ errorCode: 400000, message: 'bad reported patch' }));
      }
    } else if ((m = /^\$iothub\/methods\/res\/(\d+)\/\?\$rid=(.+)$/.exec(topic))) {
      const resolve = this.pendingMethods.get(m[2]!);
      if (!resolve) return;
      this.pendingMethods.delete(m[2]!);
      const text = payload.toString('utf8');
      let body: unknown = text;
      try {
        body = text === '' ? null : JSON.parse(text);
      } catch {
        /* not JSON: keep the text */
      }
      resolve({ status: Number(m[1]), payload: body });
    }
  }

  private route(deviceId: string, moduleId: string, props: Record<string, string>, body: Buffer, topic: string): void {
    const output = props['$.on'] ?? '';
    const systemProperties: Record<string, string> = {};
    const properties: Record<string, string> = {};
    for (const [k, v] of Object.entries(props)) (k.startsWith('$.') ? systemProperties : properties)[k] = v;
    for (const r of this.routes) {
      if (r.fromModule !== '*' && r.fromModule !== moduleId) continue;
      if (r.fromOutput !== '*' && r.fromOutput !== output) continue;
      if ('upstream' in r.to) {
        const msg: UpstreamMessage = {
          deviceId,
          moduleId,
          output,
          messageId: systemProperties['$.mid'],
          contentType: systemProperties['$.ct'],
          contentEncoding: systemProperties['$.ce'],
          systemProperties,
          properties,
          body,
          topic,
        };
        this.upstream.push(msg);
        this.emit('upstream', msg);
      } else {
        // edgeHub forwards user props and $.mid/$.cid/$.ct/$.ce/$.exp, adds $.cdid/$.cmid, drops $.on (SystemProperties.cs).
        const fwd: Record<string, string> = { ...properties };
        for (const k of ['$.mid', '$.cid', '$.ct', '$.ce', '$.exp']) if (systemProperties[k] !== undefined) fwd[k] = systemProperties[k]!;
        fwd['$.cdid'] = deviceId;
        fwd['$.cmid'] = moduleId;
        void this.publishInput(r.to.module, r.to.input, body, fwd).catch(noop);
      }
    }
  }

  private serveWorkload(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://workload');
    // The SDK parses the body only with this content type (notes: rest_api_client.ts:235).
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/trust-bundle') {
      this.stats.trustBundleRequests += 1;
      reply(200, { certificate: readFileSync(this.caPath, 'utf8') });
      return;
    }
    const m = /^\/modules\/([^/]+)\/genid\/([^/]+)\/sign$/.exec(url.pathname);
    if (req.method === 'POST' && m) {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          if (decodeURIComponent(m[2]!) !== this.generationId) return reply(404, { message: 'unknown generation id' });
          const { data, keyId, algo } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: string; keyId: string; algo: string };
          if (keyId !== 'primary' || algo !== 'HMACSHA256') return reply(400, { message: 'unsupported key or algorithm' });
          this.stats.signRequests += 1;
          reply(200, { digest: createHmac('sha256', this.moduleKey).update(Buffer.from(data, 'base64')).digest('base64') });
        } catch (err) {
          reply(400, { message: String(err) });
        }
      });
      return;
    }
    reply(404, { message: 'not found' });
  }
}

/** Starts an emulator; see `EdgeHubEmulator`. */
export function startEdgeHubEmulator(options: EdgeHubEmulatorOptions = {}): Promise<EdgeHubEmulator> {
  return EdgeHubEmulator.start(options);
}

const MODULE_ENV_KEYS = [
  'IOTEDGE_WORKLOADURI', 'IOTEDGE_DEVICEID', 'IOTEDGE_MODULEID', 'IOTEDGE_MODULEGENERATIONID', 'IOTEDGE_IOTHUBHOSTNAME',
  'IOTEDGE_GATEWAYHOSTNAME', 'IOTEDGE_AUTHSCHEME', 'EdgeHubConnectionString', 'IotHubConnectionString', 'EdgeModuleCACertificateFile',
];

/**
 * Replaces every IoT Edge variable in `process.env` by `env` (the SDK reads process.env itself)
 * and returns a function that restores the previous values.
 */
export function useModuleEnv(env: Record<string, string>): () => void {
  const saved = Object.fromEntries(MODULE_ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of MODULE_ENV_KEYS) delete process.env[k];
  Object.assign(process.env, env);
  return () => {
    for (const k of MODULE_ENV_KEYS) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  };
}
