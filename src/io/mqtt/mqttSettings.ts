import { readFileSync } from 'node:fs';
import { compilePath } from '../../util/readPath.js';

/**
 * MQTT mode (docs/contract.md section 2): local mode reading a plain MQTT broker
 * (Mosquitto next to real devices) instead of the simulated sensor. Read from the environment once.
 */
export interface MqttSettings {
  /** `mqtt://host:port` or `mqtts://host:port` (EDDY_MQTT_URL). */
  readonly url: string;
  /** The subscription filter, wildcards allowed (EDDY_MQTT_TOPIC). */
  readonly topic: string;
  /** Where a message's `$deviceId` comes from (EDDY_MQTT_DEVICE_FROM). */
  readonly deviceFrom: DeviceFrom;
  /** Template of the topic each output goes to: `{output}`, `{rule}`, `{kind}` (EDDY_MQTT_OUTPUT_TOPIC). */
  readonly outputTopic: string;
  /** Stable client id: the broker keeps the session (unacknowledged messages) under it (EDDY_MQTT_CLIENT_ID). */
  readonly clientId: string;
  readonly username: string | undefined;
  /** Never logged. */
  readonly password: string | undefined;
  /** PEM text of the CA that signed the broker's certificate (EDDY_MQTT_CA names the file). */
  readonly ca: string | undefined;
}

export type DeviceFrom = { readonly kind: 'topic'; readonly level: number } | { readonly kind: 'body'; readonly path: string };

export const DEFAULT_MQTT_TOPIC = 'devices/+/telemetry';
export const DEFAULT_DEVICE_FROM = 'topic:1';
export const DEFAULT_OUTPUT_TOPIC = 'eddy/{output}/{rule}';

/**
 * The MQTT settings, `null` when EDDY_MQTT_URL is unset (the simulated sensor runs), or the problems.
 * Unlike the other EDDY_* variables a bad value here is not replaced by a default: reading the wrong
 * broker, or naming devices wrongly, would hide a wrong deployment behind plausible output.
 */
export function readMqttSettings(env: NodeJS.ProcessEnv, hostname: string): MqttSettings | null | { errors: string[] } {
  const url = env.EDDY_MQTT_URL;
  if (url === undefined || url === '') return null;
  const errors: string[] = [];
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    errors.push(`EDDY_MQTT_URL "${url}" is not a URL (mqtt://host:port or mqtts://host:port)`);
  }
  if (parsed !== null && parsed.protocol !== 'mqtt:' && parsed.protocol !== 'mqtts:') errors.push(`EDDY_MQTT_URL "${url}": the scheme must be mqtt:// or mqtts://`);
  if (parsed !== null && (parsed.username !== '' || parsed.password !== '')) errors.push('EDDY_MQTT_URL must not carry credentials: use EDDY_MQTT_USERNAME and EDDY_MQTT_PASSWORD');
  const topic = env.EDDY_MQTT_TOPIC || DEFAULT_MQTT_TOPIC;
  const deviceFromText = env.EDDY_MQTT_DEVICE_FROM || DEFAULT_DEVICE_FROM;
  const deviceFrom = parseDeviceFrom(deviceFromText);
  if (typeof deviceFrom === 'string') errors.push(deviceFrom);
  else if (deviceFrom.kind === 'topic') {
    const levels = topic.split('/');
    if (deviceFrom.level >= levels.length) errors.push(`EDDY_MQTT_DEVICE_FROM "${deviceFromText}": EDDY_MQTT_TOPIC "${topic}" has only ${levels.length} levels (counted from 0)`);
    else if (levels.slice(0, deviceFrom.level + 1).includes('#')) errors.push(`EDDY_MQTT_DEVICE_FROM "${deviceFromText}": level ${deviceFrom.level} of "${topic}" is at or after a # wildcard`);
  }
  const outputTopic = env.EDDY_MQTT_OUTPUT_TOPIC || DEFAULT_OUTPUT_TOPIC;
  if (/[#+]/.test(outputTopic)) errors.push(`EDDY_MQTT_OUTPUT_TOPIC "${outputTopic}" must not contain the wildcards + or #`);
  let ca: string | undefined;
  if (env.EDDY_MQTT_CA) {
    try {
      ca = readFileSync(env.EDDY_MQTT_CA, 'utf8');
    } catch (err) {
      errors.push(`EDDY_MQTT_CA "${env.EDDY_MQTT_CA}" cannot be read: ${(err as Error).message}`);
    }
  }
  const username = env.EDDY_MQTT_USERNAME || undefined;
  const password = env.EDDY_MQTT_PASSWORD || undefined;
  if (password !== undefined && username === undefined) errors.push('EDDY_MQTT_PASSWORD is set without EDDY_MQTT_USERNAME');
  if (errors.length > 0 || typeof deviceFrom === 'string') return { errors };
  return { url, topic, deviceFrom, outputTopic, clientId: env.EDDY_MQTT_CLIENT_ID || `eddy-${hostname}`, username, password, ca };
}

/** `topic:<level>` (0-based level of the message's topic) or `body:<dotted path>`; an error text otherwise. */
export function parseDeviceFrom(text: string): DeviceFrom | string {
  const m = /^(topic|body):(.+)$/.exec(text);
  if (m?.[1] === 'topic' && /^\d+$/.test(m[2]!)) return { kind: 'topic', level: Number(m[2]) };
  if (m?.[1] === 'body') return { kind: 'body', path: m[2]! };
  return `EDDY_MQTT_DEVICE_FROM "${text}" is not topic:<level> (0-based, e.g. topic:1) or body:<path> (e.g. body:device.id)`;
}

/**
 * A message's device id from its topic or body, or `null` when it has none (the message is
 * rejected: reason `no-device-id`). A body path is read from the JSON object, or from the first
 * element of a JSON array (a batch comes from one device).
 */
export function deviceIdFrom(from: DeviceFrom, topic: string, body: Buffer): string | null {
  if (from.kind === 'topic') {
    const level = topic.split('/')[from.level];
    return level === undefined || level === '' ? null : level;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  if (Array.isArray(doc)) doc = doc[0];
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return null;
  // Own properties only, as rule paths are read (no `__proto__` walk).
  const v = compilePath(from.path)(doc);
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

/** The topic of one output: the template with `{output}`, `{rule}` and `{kind}` filled in. */
export function outputTopicFor(template: string, m: { readonly output: string; readonly rule: string; readonly kind: string }): string {
  return template.replace(/\{(output|rule|kind)\}/g, (_all, k: 'output' | 'rule' | 'kind') => m[k]);
}
