/**
 * Three methods of azure-iot-device-mqtt's `Mqtt` transport that every message passes through build
 * work for debug output that nobody reads: `_dispatchMqttMessage` stringifies each input's payload
 * (`JSON.stringify(payload.toString())`) and `sendOutputEvent` each output message (`JSON.stringify`
 * of the whole Message) as arguments to a disabled `debug` logger; the inputs topic is matched with
 * `/^devices\/.*\/modules\/.*\/inputs\/.*\/.*$/`, whose `.*` runs backtrack over the whole topic; and
 * `_extractPropertiesFromTopicPart` URI-decodes every key and value, `%`-free or not. Measured on one
 * core (`bench/endToEnd.ts` topics, azure-iot-device-mqtt 1.16.4): 0.3–0.5 µs of debug text per input,
 * 1.3 µs per output, 0.45 µs for the regex, 0.6 µs (1.5 µs with edgeHub's `$.mid`/`$.ct`/`$.ce`) for the
 * properties, against 26 µs of module CPU per input in the end-to-end bench (bench/endToEnd.ts --profile).
 *
 * `installSdkFastPaths` replaces those three methods on the transport's prototype with versions that
 * do the same thing without that work: same handler chosen for the same topic, same Message fields
 * and properties in the same order, same errors (a malformed `%` escape still throws URIError), same
 * PUBACK callback. Only while the SDK's own debug output is off (DEBUG unset: quietSdkDebug.ts), and
 * only for a method whose source still reads as the version these were written from: after an SDK
 * upgrade that changes one, that one stays the SDK's own.
 *
 * A speed patch: its same-run figure (module CPU per input with and without it) and the command that
 * measures it are the `fastPaths` row of docs/sdk-patches.md; test/unit/io/sdkFastPaths.test.ts holds
 * each replacement to the SDK's own method.
 */
import { createRequire } from 'node:module';

/** The slice of azure-iot-common's Message the properties parser writes. */
export interface TopicMessage {
  messageId?: unknown;
  to?: unknown;
  expiryTimeUtc?: unknown;
  correlationId?: unknown;
  userId?: unknown;
  contentType?: unknown;
  contentEncoding?: unknown;
  properties: { add(key: string, value: string): unknown };
}

interface TopicEntry {
  topicMatchRegex: RegExp;
  handler(topic: string, payload: unknown): void;
}

/** The transport's prototype, as far as these methods go (private in the SDK's typings). */
export interface MqttTransportPrototype {
  _dispatchMqttMessage(this: { _topics: Record<string, TopicEntry> }, topic: string, payload: unknown): void;
  _extractPropertiesFromTopicPart(properties: string, msg: TopicMessage): void;
  sendOutputEvent(
    this: { _fsm: { handle(action: string, ...args: unknown[]): void } },
    outputName: string,
    message: unknown,
    done: (err: Error | null, puback?: unknown) => void,
  ): void;
}

type MethodName = keyof MqttTransportPrototype;

/** The SDK's inputs topic pattern (`_configureEndpoints` in azure-iot-device-mqtt 1.16.4), as `RegExp.source`. */
export const INPUT_TOPIC_SOURCE = '^devices\\/.*\\/modules\\/.*\\/inputs\\/.*\\/.*$';

const LINE_TERMINATOR = /[\n\r\u2028\u2029]/;

/**
 * Exactly `/^devices\/.*\/modules\/.*\/inputs\/.*\/.*$/.test(topic)`, in one forward scan. Every
 * character of a match is a literal or a `.` (anything but a line terminator), so: no line terminator,
 * and "devices/", "/modules/", "/inputs/" and one more "/" in that order without overlapping. The
 * earliest occurrence of each is the best choice for the ones after it, so `indexOf` decides.
 */
export function isInputTopic(topic: string): boolean {
  if (!topic.startsWith('devices/')) return false;
  const m = topic.indexOf('/modules/', 8);
  if (m < 0) return false;
  const i = topic.indexOf('/inputs/', m + 9);
  if (i < 0 || topic.indexOf('/', i + 8) < 0) return false;
  return !LINE_TERMINATOR.test(topic);
}

/** `decodeURIComponent(s)` without the call when there is nothing to decode (edgeHub's keys are `%24.<name>`). */
function decode(s: string): string {
  const p = s.indexOf('%');
  if (p < 0) return s;
  if (p === 0 && s.startsWith('%24') && s.indexOf('%', 3) < 0) return '$' + s.slice(3);
  return decodeURIComponent(s);
}

/**
 * The SDK's `_extractPropertiesFromTopicPart`: `split('&')`, then per pair `split('=')`, key and value
 * URI-decoded (a pair without `=` gets the value "undefined", as `decodeURIComponent(undefined)`
 * gives; text after a second `=` is dropped), system properties onto the Message, the rest added to
 * `msg.properties` in topic order.
 */
export function extractTopicProperties(properties: string, msg: TopicMessage): void {
  const n = properties.length;
  let from = 0;
  while (from <= n) {
    let amp = properties.indexOf('&', from);
    if (amp < 0) amp = n;
    let eq = properties.indexOf('=', from);
    if (eq > amp) eq = -1;
    let k: string;
    let v: string;
    if (eq < 0) {
      k = decode(properties.slice(from, amp));
      v = 'undefined';
    } else {
      k = decode(properties.slice(from, eq));
      let end = properties.indexOf('=', eq + 1);
      if (end < 0 || end > amp) end = amp;
      v = decode(properties.slice(eq + 1, end));
    }
    switch (k) {
      case '$.mid':
        msg.messageId = v;
        break;
      case '$.to':
        msg.to = v;
        break;
      case '$.exp':
        msg.expiryTimeUtc = v;
        break;
      case '$.cid':
        msg.correlationId = v;
        break;
      case '$.uid':
        msg.userId = v;
        break;
      case '$.ct':
        msg.contentType = v;
        break;
      case '$.ce':
        msg.contentEncoding = v;
        break;
      default:
        msg.properties.add(k, v);
    }
    from = amp + 1;
  }
}

/** The SDK's `_dispatchMqttMessage` without the debug text: the first topic entry (in key order) whose pattern matches gets the message. */
function dispatchMqttMessage(this: { _topics: Record<string, TopicEntry> }, topic: string, payload: unknown): void {
  const topics = this._topics;
  for (const key of Object.keys(topics)) {
    const entry = topics[key]!;
    const re = entry.topicMatchRegex;
    let hit: boolean;
    if (re.source === INPUT_TOPIC_SOURCE && !re.ignoreCase && !re.multiline && !re.dotAll) {
      hit = isInputTopic(topic);
    } else {
      // The SDK's patterns are global (stateful): it resets them before every test, and so does this.
      re.lastIndex = 0;
      hit = re.test(topic);
    }
    if (hit) {
      entry.handler(topic, payload);
      return;
    }
  }
}

/** The SDK's `sendOutputEvent` without the debug text: the same FSM action, output name and PUBACK callback. */
function sendOutputEvent(
  this: { _fsm: { handle(action: string, ...args: unknown[]): void } },
  outputName: string,
  message: unknown,
  done: (err: Error | null, puback?: unknown) => void,
): void {
  this._fsm.handle('sendEvent', message, { '$.on': outputName }, (err: Error | null | undefined, puback: unknown) => {
    if (err) done(err);
    else done(null, puback);
  });
}

/** What each replaced method's source must still contain (azure-iot-device-mqtt 1.16.4, `dist/mqtt.js`). */
const EXPECTED: Record<MethodName, { marks: string[]; fast: (...args: never[]) => unknown }> = {
  _dispatchMqttMessage: {
    marks: ['Object.keys(this._topics).some(', 'topicMatchRegex.lastIndex = 0', 'topicMatchRegex.test(topic)', 'targetTopic.handler(topic, payload)'],
    fast: dispatchMqttMessage,
  },
  _extractPropertiesFromTopicPart: {
    marks: ["properties.split('&')", "split('=')", 'decodeURIComponent(keyValuePair[0])', 'decodeURIComponent(keyValuePair[1])', "case '$.mid':", "case '$.ce':", 'msg.properties.add(k, v)'],
    fast: extractTopicProperties,
  },
  sendOutputEvent: {
    marks: ["this._fsm.handle('sendEvent', message, { '$.on': outputName }, (err, puback) =>", 'done(err)', 'done(null, puback)'],
    fast: sendOutputEvent,
  },
};

/** The SDK's own methods that were replaced, per prototype. */
const originals = new WeakMap<object, Map<MethodName, unknown>>();

/** The SDK's own version of a method, whether or not it has been replaced (the tests compare the two). */
export function sdkOriginal<K extends MethodName>(proto: MqttTransportPrototype, name: K): MqttTransportPrototype[K] {
  return (originals.get(proto)?.get(name) as MqttTransportPrototype[K] | undefined) ?? proto[name];
}

/** Whether the SDK's `debug` logger of the transport prints (DEBUG set, or enabled by other means). */
function sdkDebugOn(env: NodeJS.ProcessEnv): boolean {
  if (env.DEBUG) return true;
  try {
    const require = createRequire(import.meta.url);
    const createDebug = require(createRequire(require.resolve('azure-iot-device-mqtt/package.json')).resolve('debug')) as (ns: string) => { enabled?: boolean };
    return createDebug('azure-iot-device-mqtt:Mqtt').enabled === true;
  } catch {
    return false;
  }
}

/**
 * Replaces the three methods on `proto` (azure-iot-device-mqtt's `Mqtt.prototype`) where their source
 * is the expected one. Returns the names replaced (none while the SDK's debug output is on). Idempotent.
 */
export function installSdkFastPaths(proto: MqttTransportPrototype, env: NodeJS.ProcessEnv = process.env): MethodName[] {
  if (sdkDebugOn(env)) return [];
  let saved = originals.get(proto);
  const done: MethodName[] = [];
  for (const name of Object.keys(EXPECTED) as MethodName[]) {
    if (saved?.has(name)) {
      done.push(name);
      continue;
    }
    const current = proto[name] as unknown;
    if (typeof current !== 'function') continue;
    const { marks, fast } = EXPECTED[name];
    const source = Function.prototype.toString.call(current);
    if (!marks.every((m) => source.includes(m))) continue;
    if (saved === undefined) originals.set(proto, (saved = new Map()));
    saved.set(name, current);
    (proto as unknown as Record<string, unknown>)[name] = fast;
    done.push(name);
  }
  return done;
}
