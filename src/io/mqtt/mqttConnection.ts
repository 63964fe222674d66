import { connect, type IClientOptions, type MqttClient, type Packet } from 'mqtt';
import type { Logger } from '../../contracts/logger.js';
import type { AckGate } from '../../contracts/ackGate.js';
import type { OutputMessage, Sink } from '../../contracts/output.js';
import { outputTopicFor, type MqttSettings } from './mqttSettings.js';

/** The broker keeps the session (subscription, unacknowledged messages) this long after a disconnect: the outbox TTL. */
const SESSION_EXPIRY_S = 7 * 24 * 3600;

/**
 * Takes one message. Returns true once the input is in the durable input log (or rejected for good):
 * the PUBACK leaves only then. False (shutting down) withholds the PUBACK, so the broker delivers
 * the message again to the next session.
 */
export type MqttInputHandler = (topic: string, body: Buffer) => boolean;

/**
 * A plain MQTT broker as eddy's input and output (docs/contract.md section 2).
 * Inputs: QoS 1 subscription in a persistent MQTT 5 session (`clean: false`, a stable client id, a
 * session expiry), acknowledged only after the handler has logged them. mqtt.js sends the PUBACK of an
 * incoming QoS 1 PUBLISH when `client.handleMessage(packet, callback)` calls back
 * (https://github.com/mqttjs/MQTT.js#handleMessage, lib/handlers/publish.ts), and reads no further
 * packet before, so overriding it holds the acknowledgement until the input is durable; a crash before
 * leaves the message unacknowledged and the broker delivers it again. Outputs: QoS 1 publishes whose
 * promise settles on the broker's PUBACK (the Sink contract).
 */
export class MqttConnection implements Sink, AckGate {
  private client: MqttClient | null = null;
  private input: MqttInputHandler = () => false;
  private ackHook: () => void = () => undefined;
  private linkHandler: (up: boolean) => void = () => undefined;
  private sessionHandler: () => void = () => undefined;
  private lastError = '';
  private up = false;
  private connectedBefore = false;

  constructor(
    private readonly settings: MqttSettings,
    private readonly log: Logger,
  ) {}

  get reachable(): boolean {
    return this.up;
  }

  onInput(handler: MqttInputHandler): void {
    this.input = handler;
  }

  /** The AckGate port (src/contracts/ackGate.ts): `flush` runs right before each PUBACK is handed to mqtt.js. */
  beforeAck(flush: () => void): void {
    this.ackHook = flush;
  }

  /** The AckGate port: every PUBACK waits for the hook (it goes out through `handleMessage`'s callback). */
  readonly holdsAcks = true;

  /** Up on every CONNACK, down on every close. */
  onLink(handler: (up: boolean) => void): void {
    this.linkHandler = handler;
  }

  /** Each accepted CONNACK, before any PUBLISH of that connection: the broker re-delivers first what it holds unacknowledged. */
  onSession(handler: () => void): void {
    this.sessionHandler = handler;
  }

  /** Connects; mqtt.js reconnects by itself (every `reconnectPeriod`) for as long as the module runs. */
  open(): void {
    const s = this.settings;
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId: s.clientId,
      clean: false,
      properties: { sessionExpiryInterval: SESSION_EXPIRY_S },
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      ...(s.username === undefined ? {} : { username: s.username }),
      ...(s.password === undefined ? {} : { password: s.password }),
      ...(s.ca === undefined ? {} : { ca: s.ca }),
      rejectUnauthorized: true,
    };
    const client = connect(s.url, options);
    this.client = client;
    client.handleMessage = (packet: Packet, callback: (error?: Error) => void): void => {
      if (packet.cmd !== 'publish') return callback();
      let done: boolean;
      try {
        done = this.input(packet.topic, Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload));
      } catch (err) {
        // No PUBACK (mqtt.js sends none when the callback gets an error, lib/handlers/publish.ts, and
        // reads on): the broker delivers the message again on the next connection. Calling back keeps
        // the client reading (mqtt.js README: handleMessage must always call back, or the client hangs).
        this.log.error({ err: (err as Error).message, topic: packet.topic }, 'mqtt: input not stored; not acknowledged');
        callback(err as Error);
        return;
      }
      // Not taken (eddy is stopping): no PUBACK and no further message; the connection closes next
      // and the broker keeps the message for the next session.
      if (!done) return;
      try {
        this.ackHook();
      } catch (err) {
        // The input is not known to be durable: no PUBACK, as for a handler that threw.
        this.log.error({ err: (err as Error).message, topic: packet.topic }, 'mqtt: input log not written; not acknowledged');
        callback(err as Error);
        return;
      }
      callback();
    };
    // The session starts at the CONNACK itself, not at 'connect': mqtt.js emits 'connect' only once
    // every publish it queued while offline (the outbox backlog after a restart) has its PUBACK
    // (lib/client.ts, _onConnect), and hands over the PUBLISHes the broker re-delivers right after
    // the CONNACK (MQTT 5.0 section 4.4) before that. 'packetreceive' comes for each packet before it
    // is handled, in order, so the redelivery filter is armed before the first re-delivery
    // (test/unit/io/mqttConnection.test.ts; mqttMode.test.ts "SIGKILL mid-run" counted them twice).
    client.on('packetreceive', (packet) => {
      if (packet.cmd === 'connack' && (packet.reasonCode ?? packet.returnCode ?? 0) === 0) this.sessionHandler();
    });
    client.on('connect', (connack) => {
      this.up = true;
      this.lastError = '';
      this.log.info({ url: s.url, clientId: s.clientId, sessionPresent: connack.sessionPresent }, 'mqtt: connected');
      // A reconnect without the session this process had: the broker lost it (restarted without
      // persistence, or it expired), and with it what was queued for eddy. Nothing can get it back, but
      // the loss must not be silent (docs/contract.md section 2, MQTT mode;
      // test/integration/mqtt/mqttKillsBrokerRestart.test.ts loses readings with `persistence false`).
      if (this.connectedBefore && !connack.sessionPresent) {
        this.log.warn({ url: s.url, clientId: s.clientId }, "mqtt: the broker did not keep eddy's session (restarted without persistence, or the session expired): messages published while eddy was disconnected are lost");
      }
      this.connectedBefore = true;
      this.linkHandler(true);
      // Subscribing again is harmless on a kept session, and needed on a new one.
      client.subscribe(s.topic, { qos: 1 }, (err, granted) => {
        if (err) this.log.error({ topic: s.topic, err: err.message }, 'mqtt: subscription failed');
        else if (granted?.some((g) => g.qos > 2)) this.log.error({ topic: s.topic, granted }, 'mqtt: the broker refused the subscription');
        // On a first connection the broker routes nothing to eddy before this SUBACK (MQTT 5.0 section
        // 3.8.4): a reading published earlier is not kept for it. Said in the log so a start-up script or
        // test/integration/mqtt/mqttMode.test.ts can wait for it.
        else this.log.info({ topic: s.topic }, 'mqtt: subscribed');
      });
    });
    client.on('close', () => {
      if (this.up) this.log.warn({ url: s.url }, 'mqtt: connection closed; reconnecting');
      if (this.up) this.linkHandler(false);
      this.up = false;
    });
    client.on('error', (err) => {
      // Once per distinct error: a broker down for an hour must not fill the log.
      if (err.message !== this.lastError) this.log.warn({ url: s.url, err: err.message }, 'mqtt: connection error');
      this.lastError = err.message;
    });
  }

  async send(m: OutputMessage): Promise<void> {
    if (this.client === null) throw new Error('mqtt: not open');
    await this.client.publishAsync(outputTopicFor(this.settings.outputTopic, m), JSON.stringify(m.body), {
      qos: 1,
      properties: {
        contentType: 'application/json',
        payloadFormatIndicator: true,
        userProperties: { messageId: m.id, 'eddy-kind': m.kind, 'eddy-rule': m.rule },
      },
    });
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = null;
    if (c !== null) await c.endAsync();
  }
}
