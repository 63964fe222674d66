/**
 * src/io/edgehub/sdkFastPaths.ts: the transport methods eddy replaces behave exactly as the SDK's own,
 * compared with the SDK's originals (azure-iot-device-mqtt in node_modules) on generated topics.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import common from 'azure-iot-common';
import deviceMqtt from 'azure-iot-device-mqtt';
import { INPUT_TOPIC_SOURCE, extractTopicProperties, installSdkFastPaths, isInputTopic, sdkOriginal, type MqttTransportPrototype, type TopicMessage } from '../../../src/io/edgehub/sdkFastPaths.js';

const proto = deviceMqtt.Mqtt.prototype as unknown as MqttTransportPrototype & Record<string, unknown>;
const INPUT_RE = new RegExp(INPUT_TOPIC_SOURCE, 'g');

/** Topic text from the pieces that matter to the parsers (separators, escapes, line terminators), plus anything. */
const piece = fc.oneof(
  fc.constantFrom('devices', 'modules', 'inputs', 'messages', 'devicebound', '$iothub', 'methods', 'POST', '/', '//', '&', '=', '%', '%24', '%24.', '%2F', '%C3%A9', '%E0%A4', '%zz', '$.', 'mid', 'cid', 'ct', 'ce', 'to', 'uid', 'exp', 'cdid', 'a', 'é', '\n', '\r', '\u2028', '\u2029', ' ', '?', '$rid=1'),
  fc.string({ maxLength: 4 }),
);
const text = fc.array(piece, { maxLength: 24 }).map((a) => a.join(''));
const inputTopic = fc.tuple(fc.array(piece, { maxLength: 4 }), fc.array(piece, { maxLength: 4 }), fc.array(piece, { maxLength: 4 }), text).map(([d, m, i, props]) => `devices/${d.join('')}/modules/${m.join('')}/inputs/${i.join('')}/${props}`);
const anyTopic = fc.oneof(text, inputTopic, text.map((t) => `$iothub/methods/POST/${t}`));

/** What a parser left on a Message (or the error it threw). */
function parsed(fn: (properties: string, msg: TopicMessage) => void, properties: string): unknown {
  const msg = new common.Message('x') as unknown as TopicMessage & { properties: { propertyList: unknown[] } };
  try {
    fn.call(proto, properties, msg);
  } catch (err) {
    return { threw: (err as Error).constructor.name, message: (err as Error).message };
  }
  const { messageId, to, expiryTimeUtc, correlationId, userId, contentType, contentEncoding } = msg;
  return { messageId, to, expiryTimeUtc, correlationId, userId, contentType, contentEncoding, properties: msg.properties.propertyList };
}

/** A transport object with the SDK's own topic table (its `_configureEndpoints`), recording what it emits. */
function transport(): { self: Record<string, unknown>; events: unknown[] } {
  const events: unknown[] = [];
  const self = Object.create(deviceMqtt.Mqtt.prototype) as Record<string, unknown> & { _configureEndpoints(c: object): void };
  self.emit = (name: string, ...args: unknown[]): boolean => {
    const shown = args.map((a) =>
      a instanceof common.Message
        ? { data: String(a.data), messageId: a.messageId, contentType: a.contentType, contentEncoding: a.contentEncoding, properties: (a.properties as unknown as { propertyList: unknown[] }).propertyList }
        : a,
    );
    events.push([name, ...shown]);
    return true;
  };
  self._configureEndpoints({ deviceId: 'edge-1', moduleId: 'eddy', host: 'h' });
  return { self, events };
}

describe('sdkFastPaths', () => {
  it('replaces all three methods of the SDK in node_modules (their source is the expected one), and none while DEBUG is set', () => {
    expect(installSdkFastPaths(proto, { DEBUG: 'azure-iot-device-mqtt:*' })).toEqual([]);
    expect(installSdkFastPaths(proto, {}).sort()).toEqual(['_dispatchMqttMessage', '_extractPropertiesFromTopicPart', 'sendOutputEvent']);
    for (const name of ['_dispatchMqttMessage', '_extractPropertiesFromTopicPart', 'sendOutputEvent'] as const) {
      expect(proto[name]).not.toBe(sdkOriginal(proto, name));
    }
    // Idempotent: a second install keeps the SDK's originals, not the replacements.
    installSdkFastPaths(proto, {});
    expect(Function.prototype.toString.call(sdkOriginal(proto, 'sendOutputEvent'))).toContain("debug('sendOutputEvent '");
  });

  it('leaves a method alone when its source is not the one the replacement was written from', () => {
    const fake = {
      _dispatchMqttMessage: function (): void {},
      _extractPropertiesFromTopicPart: sdkOriginal(proto, '_extractPropertiesFromTopicPart'),
      sendOutputEvent: function (): void {},
    } as unknown as MqttTransportPrototype;
    expect(installSdkFastPaths(fake, {})).toEqual(['_extractPropertiesFromTopicPart']);
    expect(fake._extractPropertiesFromTopicPart).toBe(extractTopicProperties);
  });

  it('decides an inputs topic exactly as the SDK pattern does', () => {
    // The pattern the replacement stands in for is the one the SDK's topic table holds.
    const table = transport().self._topics as Record<string, { topicMatchRegex: RegExp }>;
    expect(table.inputMessage!.topicMatchRegex.source).toBe(INPUT_TOPIC_SOURCE);
    for (const t of ['devices/d/modules/m/inputs/in/', 'devices/d/modules/m/inputs/in', 'devices//modules//inputs//', 'devices/modules/inputs/a/b', 'devices/modules/x/inputs/a/b', 'devices/d/modules/m/inputs/in/\n', 'devices/d/x/modules/y/inputs/z/w', 'devices/d/modules/inputs/', 'devices/d/modules/m/inputs/in/a%20b']) {
      INPUT_RE.lastIndex = 0;
      expect(isInputTopic(t), t).toBe(INPUT_RE.test(t));
    }
    fc.assert(
      fc.property(anyTopic, (t) => {
        INPUT_RE.lastIndex = 0;
        return isInputTopic(t) === INPUT_RE.test(t);
      }),
      { numRuns: 5_000 },
    );
  });

  it('parses topic properties into the same Message fields, properties (in order) and errors as the SDK', () => {
    const original = sdkOriginal(proto, '_extractPropertiesFromTopicPart');
    for (const p of ['', '&', '=', 'a', 'a=', '=b', 'a=b=c', '%24.mid=m1&%24.ct=application%2Fjson&%24.ce=utf-8&%24.cdid=dev%201&sp%20ace=a%2Fb%26c', '%24.to=x&%24.exp=e&%24.cid=c&%24.uid=u', '%zz=1', 'a=%E0%A4', '%2524.mid=x', '$.mid=raw&%24%2Emid=enc']) {
      expect(parsed(extractTopicProperties, p), p).toEqual(parsed(original, p));
    }
    fc.assert(
      fc.property(text, (p) => {
        expect(parsed(extractTopicProperties, p)).toEqual(parsed(original, p));
      }),
      { numRuns: 5_000 },
    );
  });

  it("dispatches every topic to the same handler, with the same Message, as the SDK's dispatcher", () => {
    const original = sdkOriginal(proto, '_dispatchMqttMessage');
    const fast = proto._dispatchMqttMessage === original ? undefined : proto._dispatchMqttMessage;
    expect(fast).toBeDefined();
    const check = (topic: string): void => {
      const a = transport();
      const b = transport();
      const payload = Buffer.from(`{"t":${JSON.stringify(topic)}}`);
      // A handler may throw (a method topic without a method name): the same error from both.
      const run = (fn: typeof original, t: { events: unknown[]; self: unknown }): void => {
        try {
          fn.call(t.self as never, topic, payload);
        } catch (err) {
          t.events.push({ threw: (err as Error).message });
        }
      };
      run(original, a);
      run(fast!, b);
      expect(b.events, topic).toEqual(a.events);
    };
    check('devices/edge-1/modules/eddy/inputs/telemetry/%24.cdid=sensor-1&%24.cmid=SimulatedTemperatureSensor&%24.mid=m-1');
    check('$iothub/methods/POST/flush/?$rid=7');
    check('devices/edge-1/modules/eddy/inputs/telemetry');
    fc.assert(fc.property(anyTopic, (t) => check(t)), { numRuns: 2_000 });
  });

  it('sends through the same FSM action and hands the PUBACK or the error to the callback as the SDK does', () => {
    const fast = proto.sendOutputEvent;
    expect(fast).not.toBe(sdkOriginal(proto, 'sendOutputEvent'));
    for (const original of [sdkOriginal(proto, 'sendOutputEvent'), fast]) {
      const calls: unknown[] = [];
      const results: unknown[] = [];
      const self = { _fsm: { handle: (...args: unknown[]) => calls.push(args) } };
      const msg = new common.Message('{"a":1}');
      original.call(self, 'summaries', msg, (err, puback) => results.push([err, puback]));
      original.call(self, 'alerts', msg, (err, puback) => results.push([err, puback]));
      expect(calls.map((c) => (c as unknown[]).slice(0, 3))).toEqual([
        ['sendEvent', msg, { '$.on': 'summaries' }],
        ['sendEvent', msg, { '$.on': 'alerts' }],
      ]);
      const err = new Error('boom');
      ((calls[0] as unknown[])[3] as (e: unknown, p?: unknown) => void)(null, { messageId: 1 });
      ((calls[1] as unknown[])[3] as (e: unknown, p?: unknown) => void)(err);
      expect(results).toEqual([
        [null, { messageId: 1 }],
        [err, undefined],
      ]);
    }
  });
});
