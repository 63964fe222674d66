/**
 * eddy's only door to edgeHub: a wrapper around azure-iot-device's ModuleClient over MQTT
 * (docs/contract.md sections 1, 4, 6, 7, 8) that works around these behaviours of the pinned SDK
 * (azure-iot-device 1.18.4 / azure-iot-device-mqtt 1.16.4, read in
 * https://github.com/Azure/azure-iot-sdk-node and checked against the edgeHub emulator in
 * test/integration/edgehub/edgeHubConnection.test.ts). "Finding N" below refers to this list:
 * 1. A failed first connection is not retried, and ECONNREFUSED is reported as "Not authorized".
 * 2. `setOptions` replaces the MQTT options wholesale: a call without `ca` drops the edge CA set by
 *    `fromEnvironment`, and the next connect fails TLS.
 * 3. `sendOutputEvent` has no offline queue: each send retries on its own (up to 240 s), so sends
 *    resolve out of order after an outage, and a lost PUBACK makes the SDK publish again.
 * 4. No `disconnect` event while the SDK reconnects in the background (with `NoRetry`, at once).
 * 5. Twin topics are not re-subscribed when the broker loses the session: twin GETs then get no
 *    answer, and twin requests have no timeout of their own.
 * 6. The gateway host may carry a port (`IOTEDGE_GATEWAYHOSTNAME=localhost:18884`); TLS is mandatory.
 * 7. Topic properties are encoded with `encodeURIComponent` (`%20`), never `+`.
 * 8. Input topics need a segment after the input name, else the SDK drops the message silently.
 * 9. Twin responses count as errors only when their body has `errorCode`; twin GET and PATCH have
 *    no timeout.
 */
import { readFile } from 'node:fs/promises';
// Before the SDK: its `debug` loggers become no-ops unless DEBUG is set (see there; docs/sdk-patches.md, row `quietDebug`).
import './quietSdkDebug.js';
import common from 'azure-iot-common';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import type { LogFn, Logger } from '../../contracts/logger.js';
import type { OutputMessage, Sink } from '../../contracts/output.js';
import { systemTimers, type TimerHandle, type Timers } from '../../contracts/timers.js';
import { redactSecrets } from '../../metrics/logger.js';
import { latencyTrace, Stage } from '../../metrics/latencyTrace.js';
import { backoffDelay, equalJitter } from '../../util/backoff.js';

type ModuleClient = InstanceType<typeof device.ModuleClient>;
type SdkTwin = Awaited<ReturnType<ModuleClient['getTwin']>>;

/**
 * The placeholder product info: an Azure Marketplace module sets `PublisherId.OfferId.SkuId` of its
 * offer (https://learn.microsoft.com/partner-center/marketplace-offers/iot-edge-technical-asset). A publisher sets
 * theirs with EDDY_PRODUCT_INFO (docs/contract.md section 2); no rebuild needed.
 */
export const PRODUCT_INFO = 'PublisherId.OfferId.SkuId';

/** The part of the Logger port (src/contracts/logger.ts) the connection writes to. */
export type EdgeHubLogFn = LogFn;
export type EdgeHubLogger = Pick<Logger, 'info' | 'warn' | 'error' | 'debug'>;

export interface EdgeHubOptions {
  /** EDDY_PRODUCT_INFO; undefined means PRODUCT_INFO. */
  productInfo?: string | undefined;
  log: EdgeHubLogger;
  /** Timers (the Timers port, src/contracts/timers.ts) for backoff and timeouts; default Node's. */
  timers?: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  /** [0,1) source for backoff jitter. */
  random?: () => number;
  /** Twin GET / reported PATCH timeout; the SDK has none (finding 9). Default 10 s. */
  twinTimeoutMs?: number;
  /** Bound on `close()`. Default 5 s. */
  closeTimeoutMs?: number;
  /** Connection retry backoff (first connection and reconnects). Default 1 s doubling to 30 s, jittered. */
  backoff?: { initialMs: number; maxMs: number };
}

/** What eddy needs of an input message. */
export interface InputMeta {
  /** edgeHub's `$.cdid`: the sending device. */
  deviceId?: string;
  /** edgeHub's `$.cmid`: the sending module. */
  moduleId?: string;
  messageId?: string;
  /** User properties (without `$.cdid`/`$.cmid`). */
  properties: Record<string, string>;
}

/** Called synchronously for each input; the PUBACK goes out after it returns (docs/contract.md section 8). */
export type InputHandler = (input: string, body: Buffer, meta: InputMeta) => void;
export type DesiredHandler = (patch: Record<string, unknown>, version: number) => void;
export type MethodHandler = (payload: unknown) => Promise<{ status: number; payload: unknown }>;

export interface TwinDocument {
  desired: Record<string, unknown>;
  reported: Record<string, unknown>;
}

/**
 * The TCP (TLS) socket under a ModuleClient's MQTT connection, or undefined when the SDK's private
 * fields are not where azure-iot-device 1.18.4 / azure-iot-device-mqtt 1.16.4 /
 * azure-iot-mqtt-base 1.13.3 / mqtt.js 4.3.8 keep them: ModuleClient `_transport` (Mqtt) →
 * `_mqtt` (MqttBase) → `_mqttClient` (mqtt.js MqttClient, re-created by every MqttBase connect) →
 * `stream` (the `tls.connect` result of mqtt.js `lib/connect/tls.js`). Exported for the tests that
 * pin these versions; re-check the path when upgrading the SDK. Read by the `noDelay` and `guard`
 * patches (docs/sdk-patches.md).
 */
export function mqttSocketOf(client: unknown): { setNoDelay(on?: boolean): unknown } | undefined {
  const stream = mqttClientOf(client)?.stream;
  return stream !== null && typeof stream === 'object' && typeof (stream as { setNoDelay?: unknown }).setNoDelay === 'function'
    ? (stream as { setNoDelay(on?: boolean): unknown })
    : undefined;
}

/** The mqtt.js MqttClient under a ModuleClient (the path `mqttSocketOf` describes), or undefined when it is not there. */
function mqttClientOf(client: unknown): { stream?: unknown; options?: { customHandleAcks?: unknown } } | undefined {
  return (client as { _transport?: { _mqtt?: { _mqttClient?: { stream?: unknown; options?: { customHandleAcks?: unknown } } } } } | undefined)?._transport?._mqtt?._mqttClient;
}

/** The slice of the (TLS) socket that `guardWrites` needs: Node's Writable internals `_write`/`_writev`. */
interface GuardableSocket {
  cork(): void;
  uncork(): void;
  readonly writableCorked: number;
  _write(...args: unknown[]): unknown;
  _writev?(...args: unknown[]): unknown;
}

function isGuardable(s: unknown): s is GuardableSocket {
  const o = s as Partial<GuardableSocket> | null;
  return typeof o?.cork === 'function' && typeof o.uncork === 'function' && typeof o._write === 'function';
}

/** Error names after which edgeHub is considered unreachable (azure-iot-common errors). */
const UNREACHABLE_ERRORS = new Set(['NotConnectedError', 'TimeoutError', 'UnauthorizedError', 'ServiceUnavailableError', 'EdgeHubTimeoutError']);

class EdgeHubTimeoutError extends Error {
  override name = 'EdgeHubTimeoutError';
}

/** Never let a SAS token, key or connection string reach a log line (the logger's own redaction, src/metrics/logger.ts). */
function describe(err: unknown): { name: string; message: string } {
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: redactSecrets(e.message) };
}

/**
 * A module's connection to edgeHub. Implements `Sink`.
 *
 * Retry policy: the client runs with the SDK's `NoRetry`, on purpose:
 * - the outbox owns retries and order (docs/contract.md section 8): a send fails fast (`NotConnectedError`
 *   in milliseconds when the link is down, `TimeoutError` after the SDK's 30-40 s PUBACK check)
 *   and the forwarder backs off and resends the same record, so a duplicate always carries the
 *   same messageId; the SDK never re-publishes behind the forwarder's back;
 * - with the default policy each pending send retries on its own for up to 240 s and they resolve
 *   out of order after an outage (finding 3), and `disconnect` is not emitted (finding 4);
 *   with NoRetry `disconnect` fires at once, so `reachable` is accurate;
 * - this class reconnects itself on `disconnect` with capped, jittered backoff, so inputs, methods
 *   and desired patches come back without any send (the SDK would not reconnect with no call).
 */
export class EdgeHubConnection implements Sink {
  private readonly log: EdgeHubLogger;
  private readonly timers: Pick<Timers, 'setTimeout' | 'clearTimeout'>;
  private readonly random: () => number;
  private readonly productInfo: string;
  private readonly twinTimeoutMs: number;
  private readonly closeTimeoutMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };

  private client: ModuleClient | undefined;
  private twin: SdkTwin | undefined;
  private twinPromise: Promise<SdkTwin> | undefined;
  private recreating: Promise<void> | undefined;
  /** Clients whose reconnect loop runs. */
  private readonly reconnecting = new WeakSet<ModuleClient>();
  private opened = false;
  private closed = false;
  /** Settles when `close()` is called: an SDK `open()` in flight is not always settled by `client.close()`. */
  private readonly closedSignal: Promise<void>;
  private signalClosed: () => void = () => undefined;
  private connectedOnce = false;
  private suppressReconnectEvent = false;
  private _reachable = false;
  private readonly pendingSleeps = new Set<{ handle: TimerHandle | undefined; resolve: () => void }>();

  private inputHandler: InputHandler | undefined;
  private beforeWrite: (() => void) | undefined;
  /** The socket whose writes run `beforeWrite` first (the current connection's, once connected). */
  private guardedSocket: GuardableSocket | undefined;
  /** The socket corked for the rest of this event-loop turn (see `holdAcks`). */
  private heldSocket: GuardableSocket | undefined;
  private readonly releaseHeld = (): void => {
    const s = this.heldSocket;
    this.heldSocket = undefined;
    s?.uncork();
  };
  private readonly desiredHandlers: DesiredHandler[] = [];
  private readonly reconnectHandlers: Array<() => void> = [];
  private readonly sessionHandlers: Array<() => void> = [];
  private readonly linkHandlers: Array<(up: boolean) => void> = [];
  private readonly methodHandlers = new Map<string, MethodHandler>();

  private constructor(client: ModuleClient, opts: EdgeHubOptions) {
    this.closedSignal = new Promise<void>((resolve) => (this.signalClosed = resolve));
    this.client = client;
    this.log = opts.log;
    this.timers = opts.timers ?? systemTimers;
    this.random = opts.random ?? Math.random;
    this.productInfo = opts.productInfo ?? PRODUCT_INFO;
    this.twinTimeoutMs = opts.twinTimeoutMs ?? 10_000;
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 5_000;
    this.backoff = opts.backoff ?? { initialMs: 1_000, maxMs: 30_000 };
  }

  /**
   * Builds the client with `ModuleClient.fromEnvironment(Mqtt)` (workload API or
   * `EdgeHubConnectionString`). Rejects only for configuration errors (missing variables,
   * unreadable CA file, no SharedAccessKey); a workload API that does not answer yet is retried.
   */
  static async fromEnvironment(opts: EdgeHubOptions): Promise<EdgeHubConnection> {
    const conn = new EdgeHubConnection(undefined as unknown as ModuleClient, opts);
    conn.client = await conn.createClient();
    return conn;
  }

  /** True while edgeHub is believed reachable: set by connects and successful sends, cleared by disconnects and failed sends. */
  get reachable(): boolean {
    return this._reachable;
  }

  /** Registers THE input handler (synchronous; see InputHandler). Register before `open()`. */
  onInput(handler: InputHandler): void {
    this.inputHandler = handler;
  }

  /**
   * `fn` runs before any bytes are handed to the current connection's socket (the TLS socket's
   * `_write`/`_writev`, after every (re)connect), so nothing (a PUBACK above all) can reach edgeHub
   * before it has run. src/app/inputJournal.ts flushes the deferred input log there (the AckGate port, `beforeAck`) (docs/performance.md, latency). Register before
   * `open()`. While `writesGuarded` is true, the PUBACKs of the inputs handled in one event-loop
   * turn are also held (the socket is corked) until the turn's immediates run, so one log write and
   * one TLS write serve them all; sending an alert releases them at once (see `send`).
   */
  guardWrites(fn: () => void): void {
    this.beforeWrite = fn;
  }

  /** True when the current connection's socket runs the `guardWrites` function before every write. */
  get writesGuarded(): boolean {
    return this.guardedSocket !== undefined && this.guardedSocket === (mqttSocketOf(this.client) as unknown);
  }

  /** The AckGate port (src/contracts/ackGate.ts): the hook runs before any byte, a PUBACK above all, reaches the socket. */
  beforeAck(flush: () => void): void {
    this.guardWrites(flush);
  }

  /** The AckGate port: true while the current socket is guarded (see `guardWrites`). */
  get holdsAcks(): boolean {
    return this.writesGuarded;
  }

  /** Desired-property patches as they arrive (`$version` removed from the patch, passed as `version`). Not called for twin GETs. */
  onDesired(handler: DesiredHandler): void {
    this.desiredHandlers.push(handler);
  }

  /** A direct method. A handler that rejects answers 500. */
  onMethod(name: string, handler: MethodHandler): void {
    this.methodHandlers.set(name, handler);
    if (this.opened && this.client) this.attachMethod(this.client, name);
  }

  /** Called on every connect after the first: the twin may have changed meanwhile (docs/contract.md section 6). */
  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  /**
   * Called on every connect, before any input of that connection is dispatched: the first, every
   * reconnect, and the first connect of a client re-created after a twin timeout (which `onReconnect`
   * does not report when the twin GET that timed out is retried on it). edgeHub re-delivers first what it saw no PUBACK for, and closing a client
   * withholds the PUBACKs still queued (`closeClient`): the redelivery filter arms here
   * (src/ingest/redeliveryFilter.ts; test/integration/edgehub/edgeHubConnection.test.ts, "after a
   * broker restart that loses sessions").
   */
  onSession(handler: () => void): void {
    this.sessionHandlers.push(handler);
  }

  /**
   * Called with true on every connect (the first included: edgeHub then delivers what it stored for
   * this module) and with false on every disconnect: inputs can arrive only in between (main.ts
   * runs connected time from it, src/time/connectedTime.ts).
   */
  onLink(handler: (up: boolean) => void): void {
    this.linkHandlers.push(handler);
  }

  private link(up: boolean): void {
    for (const h of this.linkHandlers) {
      try {
        h(up);
      } catch (err) {
        this.log.error({ err: describe(err) }, 'link handler threw');
      }
    }
  }

  /**
   * Connects, retrying until edgeHub answers (the SDK never retries a failed first connection:
   * finding 1), then enables inputs, methods and desired-property updates.
   */
  async open(): Promise<void> {
    if (this.closed) throw new Error('EdgeHubConnection is closed');
    if (this.opened) return;
    const client = await this.current();
    await this.bringUp(client, 'first connection to edgeHub');
    // Re-created meanwhile (a twin timeout): the fresh client is brought up by `recreate`.
    while (this.recreating) await this.recreating;
    this.opened = true;
  }

  /** The whole twin, within `twinTimeoutMs`; after a timeout the client is re-created (so twin topics are re-subscribed: finding 5) and the read retried. */
  async getTwin(): Promise<TwinDocument> {
    return this.twinOperation('twin GET', async (twin) => {
      await twin.get();
      const { update: _update, ...reported } = twin.properties.reported as Record<string, unknown>;
      return { desired: structuredClone(twin.properties.desired) as Record<string, unknown>, reported: structuredClone(reported) };
    });
  }

  /** Sends a reported-properties patch, within `twinTimeoutMs` (same recovery as `getTwin`). */
  async reportProperties(patch: Record<string, unknown>): Promise<void> {
    await this.twinOperation('reported patch', (twin) =>
      new Promise<void>((resolve, reject) => twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve()))),
    );
  }

  /**
   * Sends one output message; resolves on edgeHub's PUBACK. Fails fast when edgeHub is unreachable
   * (see the class comment): the caller resends the same message, with the same messageId.
   */
  async send(message: OutputMessage): Promise<void> {
    const client = this.client;
    if (!client || this.recreating || this.closed) {
      this._reachable = false;
      throw Object.assign(new Error('edgeHub client not ready'), { name: 'NotConnectedError' });
    }
    const msg = new device.Message(JSON.stringify(message.body));
    msg.messageId = message.id;
    msg.contentType = 'application/json';
    msg.contentEncoding = 'utf-8';
    msg.properties.add('eddy-kind', message.kind);
    msg.properties.add('eddy-rule', message.rule);
    try {
      const trace = message.kind === 'alert' ? latencyTrace : undefined;
      trace?.sent(message.id, Stage.Send);
      const sent = client.sendOutputEvent(message.output, msg);
      trace?.sent(message.id, Stage.Encoded);
      // An alert does not wait for the rest of the turn (holdAcks): the SDK wrote it into the corked
      // socket synchronously, so it leaves now, with the PUBACKs before it, not after every other
      // input of the same socket read was handled. The guard still runs the input-log flush before
      // those bytes leave. One more TLS write and log commit per alert; summaries keep waiting for the
      // end of the turn (input → alert latency, docs/performance.md).
      if (message.kind === 'alert') this.flushHeld();
      trace?.sent(message.id, Stage.Written);
      await sent;
      this._reachable = true;
    } catch (err) {
      if (UNREACHABLE_ERRORS.has(describe(err).name)) this._reachable = false;
      throw err;
    }
  }

  /** Closes the client within `closeTimeoutMs`; pending backoff waits end at once. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.signalClosed();
    this._reachable = false;
    for (const s of this.pendingSleeps) {
      if (s.handle !== undefined) this.timers.clearTimeout(s.handle);
      s.resolve();
    }
    this.pendingSleeps.clear();
    const client = this.client;
    this.client = undefined;
    if (client) await this.closeClient(client);
  }

  // ---------------------------------------------------------------------------

  private async createClient(): Promise<ModuleClient> {
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await device.ModuleClient.fromEnvironment(deviceMqtt.Mqtt);
        // Same call as the CA: a setOptions without `ca` replaces the transport options and
        // the next connect fails TLS (finding 2). productInfo must precede the first connect.
        const ca = await this.trustBundle();
        await client.setOptions(ca === undefined ? { productInfo: this.productInfo } : { productInfo: this.productInfo, ca });
        client.setRetryPolicy(new common.NoRetry());
        return client;
      } catch (err) {
        const { name, message } = describe(err);
        // ReferenceError: missing variable; NotImplementedError/ArgumentError: bad connection string; ENOENT: CA file.
        const configError =
          name === 'ReferenceError' || name === 'NotImplementedError' || name === 'ArgumentError' || name === 'FormatError' ||
          (err as NodeJS.ErrnoException).syscall === 'open';
        if (configError || this.closed) throw err;
        const delay = this.delayFor(attempt);
        this.log.warn({ attempt: attempt + 1, retryInMs: delay, err: { name, message } }, 'IoT Edge workload API unavailable; retrying');
        await this.sleep(delay);
      }
    }
  }

  /** The CA edgeHub's server certificate chains to, from wherever `fromEnvironment` took it. */
  private async trustBundle(): Promise<string | undefined> {
    if (process.env.EdgeHubConnectionString || process.env.IotHubConnectionString) {
      const file = process.env.EdgeModuleCACertificateFile;
      return file ? await readFile(file, 'utf8') : undefined;
    }
    // fromEnvironment keeps its provider private; a second one reads the same workload endpoint.
    const provider = new device.IotEdgeAuthenticationProvider({
      workloadUri: process.env.IOTEDGE_WORKLOADURI!,
      deviceId: process.env.IOTEDGE_DEVICEID!,
      moduleId: process.env.IOTEDGE_MODULEID!,
      iothubHostName: process.env.IOTEDGE_IOTHUBHOSTNAME!,
      authScheme: process.env.IOTEDGE_AUTHSCHEME!,
      gatewayHostName: process.env.IOTEDGE_GATEWAYHOSTNAME,
      generationId: process.env.IOTEDGE_MODULEGENERATIONID!,
    });
    try {
      return await new Promise<string>((resolve, reject) => provider.getTrustBundle((err, ca) => (err ? reject(err) : resolve(ca!))));
    } finally {
      provider.stop();
    }
  }

  private async current(): Promise<ModuleClient> {
    while (this.recreating) await this.recreating;
    if (!this.client) throw new Error('EdgeHubConnection is closed');
    return this.client;
  }

  private delayFor(attempt: number): number {
    return equalJitter(backoffDelay(attempt, this.backoff.initialMs, this.backoff.maxMs), this.random);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry: { handle: TimerHandle | undefined; resolve: () => void } = { handle: undefined, resolve };
      entry.handle = this.timers.setTimeout(() => {
        this.pendingSleeps.delete(entry);
        resolve();
      }, ms);
      this.pendingSleeps.add(entry);
    });
  }

  /**
   * Loops `client.open()` with backoff until it succeeds, the connection is closed or `client` was
   * replaced (`recreate`); one log line per failed step. A replaced client is never opened again, and
   * one that connected while being replaced is closed: edgeHub keeps one connection per client id, so
   * it would knock the current client off (test/integration/edgehub/edgeHubConnection.test.ts, "a client
   * re-created during an outage").
   */
  private async connectUntilUp(client: ModuleClient, what: string): Promise<void> {
    this.attachConnectionEvents(client);
    for (let attempt = 0; !this.closed && client === this.client; attempt++) {
      try {
        // Race with close(): under load an open() in flight at close() was seen never to settle.
        await Promise.race([client.open(), this.closedSignal]);
        if (this.closed) return;
        if (client !== this.client) {
          this.log.info(`${what}: connected a replaced client; closing it`);
          await this.closeClient(client);
          return;
        }
        if (attempt > 0) this.log.info({ attempts: attempt + 1 }, `${what}: connected`);
        return;
      } catch (err) {
        if (this.closed || client !== this.client) return;
        const delay = this.delayFor(attempt);
        // The SDK reports a refused first connection as "Not authorized" (finding 1): log the real cause too.
        const transportError = (err as { transportError?: unknown }).transportError;
        this.log.warn(
          { attempt: attempt + 1, retryInMs: delay, err: describe(err), cause: transportError ? describe(transportError).message : undefined },
          `${what} failed; retrying`,
        );
        await this.sleep(delay);
      }
    }
  }

  /**
   * Connects, adds the feature listeners, and waits until the SUBACKs for inputs and methods are
   * back, so that `open()` resolving means messages routed from now on reach the handlers. The SDK's
   * listeners subscribe in the background with no completion signal; the private `_enable*`
   * methods (module_client.js / internal_client.js 1.18.4) give one. A second SUBSCRIBE is harmless.
   * A correctness patch: without it inputs published right after `open()` are lost (docs/sdk-patches.md,
   * row `enableSubscriptions`, names the tests that fail).
   */
  private async bringUp(client: ModuleClient, what: string): Promise<void> {
    this.attachConnectionEvents(client);
    const internals = client as unknown as { _enableInputMessages?(cb: (err?: Error) => void): void; _enableMethods?(cb: (err?: Error) => void): void };
    const enable = (fn: ((cb: (err?: Error) => void) => void) | undefined): Promise<void> =>
      fn ? new Promise((resolve, reject) => fn.call(internals, (err) => (err ? reject(err) : resolve()))) : Promise.resolve();
    for (let attempt = 0; !this.closed; attempt++) {
      await this.connectUntilUp(client, what);
      // Replaced meanwhile (`recreate`): subscribing would make the SDK connect it again.
      if (this.closed || client !== this.client) return;
      this.attachFeatures(client);
      try {
        if (this.inputHandler) await enable(internals._enableInputMessages);
        if (this.methodHandlers.size > 0) await enable(internals._enableMethods);
        return;
      } catch (err) {
        const delay = this.delayFor(attempt);
        this.log.warn({ attempt: attempt + 1, retryInMs: delay, err: describe(err) }, `${what}: subscribing failed; retrying`);
        await this.sleep(delay);
      }
    }
  }

  private readonly attached = new WeakSet<ModuleClient>();
  private readonly featured = new WeakSet<ModuleClient>();

  private attachConnectionEvents(client: ModuleClient): void {
    if (this.attached.has(client)) return;
    this.attached.add(client);
    client.on('connect', () => {
      if (client !== this.client) return;
      // The input listener is in place before the first PUBLISH of the session is handed over: a
      // broker resuming a session re-sends what it holds right after the CONNACK (MQTT 3.1.1
      // section 4.4), which the SDK dispatches in a later tick than this event but before `open()`
      // resolves; with no 'inputMessage' listener the ModuleClient drops it while mqtt.js has
      // already acknowledged it (test/integration/edgehub/redeliveryOrder.test.ts). Not before
      // `open()`: adding the listener makes the SDK connect by itself (module_client.js newListener).
      this.attachFeatures(client);
      this.disableNagle(client);
      this.guardSocket(client);
      const trace = latencyTrace;
      if (trace !== undefined) (mqttSocketOf(client) as unknown as NodeJS.EventEmitter | undefined)?.prependListener('data', () => trace.data());
      this._reachable = true;
      for (const h of this.sessionHandlers) {
        try {
          h();
        } catch (err) {
          this.log.error({ err: describe(err) }, 'session handler threw');
        }
      }
      this.link(true);
      if (!this.connectedOnce || this.suppressReconnectEvent) {
        this.connectedOnce = true;
        this.suppressReconnectEvent = false;
        return;
      }
      this.log.info('reconnected to edgeHub');
      for (const h of this.reconnectHandlers) {
        try {
          h();
        } catch (err) {
          this.log.error({ err: describe(err) }, 'reconnect handler threw');
        }
      }
    });
    client.on('disconnect', (result?: { transportObj?: unknown }) => {
      if (client !== this.client || this.closed) return;
      this._reachable = false;
      this.link(false);
      this.log.warn({ err: result?.transportObj ? describe(result.transportObj) : undefined }, 'disconnected from edgeHub');
      void this.reconnect(client);
    });
    // Without a listener, EventEmitter throws the SDK's 'error' events (the official module template even rethrows).
    client.on('error', (err: unknown) => {
      if (client === this.client && !this.closed) this.log.warn({ err: describe(err) }, 'edgeHub client error');
    });
  }

  /**
   * TCP_NODELAY on the connection's socket, after every (re)connect (each one opens a new socket).
   * Neither the SDK (MqttBase builds the mqtt.js options itself; `setOptions` passes no socket
   * options) nor mqtt.js 4 sets it, so every small packet waits for the previous one's ACK, which
   * the peer delays: 40-200 ms stalls on PUBACKs and outputs (Nagle's algorithm with delayed ACKs,
   * https://datatracker.ietf.org/doc/html/rfc1122#section-4.2.3.2; bench/endToEnd.ts measured p99 input→alert 243 ms at 5k/s with default sockets, 21 ms with TCP_NODELAY).
   * The socket is reached through SDK internals (see `mqttSocketOf`); if they move, eddy still
   * works, only slower, and says so once. Same-run figure and command: docs/sdk-patches.md, row `noDelay`.
   */
  private disableNagle(client: ModuleClient): void {
    const socket = mqttSocketOf(client);
    if (socket) {
      socket.setNoDelay(true);
      return;
    }
    if (this.nagleWarned) return;
    this.nagleWarned = true;
    this.log.warn('TCP_NODELAY not set: the SDK socket was not found (SDK internals changed); latency may suffer');
  }

  private nagleWarned = false;

  /**
   * Wraps the new socket's `_write` and `_writev` (every byte of application data passes one of
   * them, after Writable's own buffering and corking) so that `beforeWrite` runs first. If the
   * socket is not where the pinned SDK keeps it (docs/sdk-patches.md), nothing is wrapped and `writesGuarded` stays
   * false: the input journal then writes every input to the log at once (`holdsAcks` false).
   * A speed patch whose wrapper durability depends on: same-run figure, and the AckGate test that fails
   * when the wrapper lets a write out before the hook, in docs/sdk-patches.md, row `guard`.
   */
  private guardSocket(client: ModuleClient): void {
    const socket: unknown = mqttSocketOf(client);
    if (!this.beforeWrite || !isGuardable(socket)) {
      this.guardedSocket = undefined;
      return;
    }
    const before = this.beforeWrite;
    const log = this.log;
    const run = (): void => {
      try {
        before();
      } catch (err) {
        log.error({ err: describe(err) }, 'before-write hook threw');
      }
    };
    const write = socket._write;
    socket._write = function (this: unknown, ...args: unknown[]) {
      run();
      return write.apply(this, args);
    };
    const writev = socket._writev;
    if (writev) {
      socket._writev = function (this: unknown, ...args: unknown[]) {
        run();
        return writev.apply(this, args);
      };
    }
    this.guardedSocket = socket;
  }

  /**
   * Writes out everything corked on the guarded socket now: the turn's hold and mqtt-packet's own
   * per-packet corks (each packet is complete once the SDK call returned; their pending next-tick
   * uncorks then find the socket uncorked, a no-op, or end a later hold early, which only costs an
   * extra write: every write still runs the guard first).
   */
  private flushHeld(): void {
    const s = this.guardedSocket;
    const held = this.heldSocket;
    this.heldSocket = undefined;
    if (held !== undefined && held !== s) held.uncork(); // held before a reconnect replaced the socket
    if (s === undefined) return;
    for (let n = s.writableCorked; n > 0; n--) s.uncork();
  }

  /** Corks the guarded socket until this turn's immediates: the PUBACKs of this turn's inputs leave together. */
  private holdAcks(): void {
    if (this.heldSocket !== undefined || !this.writesGuarded) return;
    this.heldSocket = this.guardedSocket;
    this.heldSocket!.cork();
    setImmediate(this.releaseHeld);
  }

  private async reconnect(client: ModuleClient): Promise<void> {
    // Per client: the loop of a client replaced meanwhile (`recreate`) must not hold off the current one's.
    if (this.reconnecting.has(client)) return;
    this.reconnecting.add(client);
    try {
      // The first attempt waits one backoff step: the link just dropped, edgeHub is likely restarting.
      await this.sleep(this.delayFor(0));
      if (client === this.client && !this.closed) await this.connectUntilUp(client, 'reconnect to edgeHub');
    } finally {
      this.reconnecting.delete(client);
    }
  }

  private attachFeatures(client: ModuleClient): void {
    if (this.featured.has(client)) return;
    this.featured.add(client);
    client.on('inputMessage', (inputName: string, msg: InstanceType<typeof device.Message>) => {
      const handler = this.inputHandler;
      if (!handler) return;
      latencyTrace?.input();
      const properties: Record<string, string> = {};
      let deviceId: string | undefined;
      let moduleId: string | undefined;
      for (let i = 0; i < msg.properties.count(); i++) {
        const { key, value } = msg.properties.getItem(i);
        if (key === '$.cdid') deviceId = value;
        else if (key === '$.cmid') moduleId = value;
        else properties[key] = value;
      }
      const meta: InputMeta = { properties };
      if (deviceId !== undefined) meta.deviceId = deviceId;
      if (moduleId !== undefined) meta.moduleId = moduleId;
      // The SDK leaves messageId '' when the topic had no $.mid.
      if (msg.messageId !== undefined && msg.messageId !== null && msg.messageId !== '') meta.messageId = String(msg.messageId);
      const data = msg.getData() as Buffer | string;
      this.holdAcks();
      try {
        // Synchronous on purpose: mqtt.js queues the PUBACK behind this tick (see the PUBACK probe test).
        handler(inputName, Buffer.isBuffer(data) ? data : Buffer.from(data), meta);
      } catch (err) {
        // A throw here would escape into the SDK's nextTick and kill the process.
        this.log.error({ err: describe(err), input: inputName }, 'input handler threw');
      }
    });
    for (const name of this.methodHandlers.keys()) this.attachMethod(client, name);
  }

  private attachMethod(client: ModuleClient, name: string): void {
    client.onMethod(name, (req, res) => {
      if (!req || !res) return;
      const handler = this.methodHandlers.get(name);
      const answer = (status: number, payload: unknown): void => {
        res.send(status, payload, (err?: Error) => {
          if (err) this.log.warn({ err: describe(err), method: name }, 'method response not sent');
        });
      };
      if (!handler) return answer(404, { message: `no method ${name}` });
      handler(req.payload ?? null).then(
        (r) => answer(r.status, r.payload),
        (err: unknown) => {
          this.log.error({ err: describe(err), method: name }, 'method handler failed');
          answer(500, { message: describe(err).message });
        },
      );
    });
  }

  /** The SDK Twin of the current client, created once per client with the desired-patch listener attached. */
  private twinOf(client: ModuleClient): Promise<SdkTwin> {
    if (this.twin && this.twinPromise) return this.twinPromise;
    this.twinPromise = (async () => {
      const twin = await client.getTwin();
      // The SDK emits the whole desired document on 'properties.desired' after every GET (the object
      // in twin.properties.desired at that moment) and, one tick after a listener is added, the object
      // that was there when it was added; only other objects are patches (twin.js 1.18.4).
      const wholeDocuments = new WeakSet<object>([twin.properties.desired]);
      twin.on('properties.desired', (delta: Record<string, unknown>) => {
        if (delta === twin.properties.desired || wholeDocuments.has(delta) || client !== this.client) return;
        const { $version, ...patch } = delta;
        for (const h of this.desiredHandlers) {
          try {
            h(patch, Number($version));
          } catch (err) {
            this.log.error({ err: describe(err) }, 'desired handler threw');
          }
        }
      });
      this.twin = twin;
      return twin;
    })();
    this.twinPromise.catch(() => {
      this.twinPromise = undefined;
    });
    return this.twinPromise;
  }

  private async withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let handle: TimerHandle | undefined;
    const timeout = new Promise<never>((_, reject) => {
      handle = this.timers.setTimeout(() => reject(new EdgeHubTimeoutError(`${what} timed out after ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      if (handle !== undefined) this.timers.clearTimeout(handle);
    }
  }

  private async twinOperation<T>(what: string, op: (twin: SdkTwin) => Promise<T>): Promise<T> {
    const attempts = 3;
    for (let attempt = 1; ; attempt++) {
      const client = await this.current();
      try {
        // twinOf may do a GET itself (client.getTwin); it shares the timeout.
        return await this.withTimeout(
          this.twinOf(client).then((twin) => op(twin)),
          this.twinTimeoutMs,
          what,
        );
      } catch (err) {
        const { name } = describe(err);
        if (this.closed || attempt >= attempts) throw err;
        if (name === 'EdgeHubTimeoutError') {
          // No answer: the broker probably lost our session and the SDK will never re-subscribe
          // the twin topics (finding 5). A fresh client subscribes them again.
          this.log.warn({ attempt }, `${what} timed out; re-creating the edgeHub client`);
          await this.recreate(client, what === 'twin GET');
        } else if (UNREACHABLE_ERRORS.has(name)) {
          this._reachable = false;
          await this.sleep(this.delayFor(attempt - 1));
        } else throw err;
      }
    }
  }

  /**
   * Replaces a client whose twin operation timed out. `readingTwin`: that operation was a twin GET, which
   * is retried on the fresh client, so its first connect is not reported as a reconnect. Any other (a
   * reported patch) is: the lead reads the twin only on `onReconnect`, and a desired patch made while
   * the link was down is delivered to no one (test/integration/edgehub/edgeHubConnection.test.ts, "a
   * client re-created for a reported patch").
   */
  private recreate(old: ModuleClient, readingTwin: boolean): Promise<void> {
    if (this.recreating) return this.recreating;
    if (old !== this.client) return Promise.resolve();
    this.recreating = (async () => {
      this.client = undefined;
      this.twin = undefined;
      this.twinPromise = undefined;
      this._reachable = false;
      this.link(false);
      await this.closeClient(old);
      const fresh = await this.createClient();
      this.client = fresh;
      // After a twin GET timed out, the fresh client's first connect is not a "reconnect" for the lead: it
      // is already re-reading the twin. After anything else it is: the twin may have changed meanwhile.
      this.suppressReconnectEvent = readingTwin;
      await this.bringUp(fresh, 're-created edgeHub client');
    })().finally(() => {
      this.recreating = undefined;
    });
    return this.recreating;
  }

  /**
   * Closes `client` without acknowledging any more input. The SDK's close removes its 'message' listener
   * (azure-iot-mqtt-base 1.13.3 `_disconnectClient`) and then ends mqtt.js gracefully, which keeps
   * reading the socket and PUBACKs every input edgeHub is still streaming (mqtt.js 4.3.8
   * `_handlePublish`) although none reaches eddy: acknowledged and lost, seen as windows short of the
   * readings a SIGTERM interrupted in test/integration/blackbox/evictionRestart.test.ts. mqtt.js asks
   * `options.customHandleAcks` before each QoS 1 PUBACK; one that never answers holds that PUBACK (and
   * stops the reading), so edgeHub keeps the rest for the next connection (MQTT 3.1.1 section 4.4).
   * A correctness patch (docs/sdk-patches.md, row `holdOnClose`, names the test that fails without it).
   */
  private async closeClient(client: ModuleClient): Promise<void> {
    const options = mqttClientOf(client)?.options;
    if (options) options.customHandleAcks = (): void => undefined;
    try {
      const closing = client.close();
      // The held PUBLISH stops mqtt.js's reading, so its graceful end would wait for a close that no
      // longer comes (without the destroy, closeWhileStreaming.test.ts waits the 5 s close timeout): the socket goes now,
      // DISCONNECT or not; edgeHub keeps the session either way (CleanSession flag unset, MQTT 3.1.1 section 3.1.2.4).
      if (options) (mqttSocketOf(client) as { destroy?: () => void } | undefined)?.destroy?.();
      await this.withTimeout(closing, this.closeTimeoutMs, 'close');
    } catch (err) {
      this.log.warn({ err: describe(err) }, 'edgeHub client did not close cleanly');
    }
  }
}
