import { describe, expect, it } from 'vitest';
import { deviceIdFrom, outputTopicFor, parseDeviceFrom, readMqttSettings } from '../../../src/io/mqtt/mqttSettings.js';

/* docs/contract.md section 2, MQTT mode: the EDDY_MQTT_* variables as documented there. */

describe('readMqttSettings', () => {
  it('is null without EDDY_MQTT_URL (the simulated sensor runs)', () => {
    expect(readMqttSettings({}, 'host')).toBeNull();
    expect(readMqttSettings({ EDDY_MQTT_URL: '' }, 'host')).toBeNull();
  });

  it('documented defaults', () => {
    expect(readMqttSettings({ EDDY_MQTT_URL: 'mqtt://broker:1883' }, 'gw7')).toEqual({
      url: 'mqtt://broker:1883', topic: 'devices/+/telemetry', deviceFrom: { kind: 'topic', level: 1 }, outputTopic: 'eddy/{output}/{rule}',
      clientId: 'eddy-gw7', username: undefined, password: undefined, ca: undefined,
    });
  });

  it('a bad value is an error, never a default in its place', () => {
    const bad = (env: Record<string, string>): string[] => {
      const r = readMqttSettings({ EDDY_MQTT_URL: 'mqtt://b', ...env }, 'h');
      return r !== null && 'errors' in r ? r.errors : [];
    };
    expect(bad({ EDDY_MQTT_URL: 'http://b' })[0]).toMatch(/scheme must be mqtt/);
    expect(bad({ EDDY_MQTT_URL: 'not a url' })[0]).toMatch(/is not a URL/);
    expect(bad({ EDDY_MQTT_URL: 'mqtt://u:secret@b' })[0]).toMatch(/must not carry credentials/);
    expect(bad({ EDDY_MQTT_DEVICE_FROM: 'topic:x' })[0]).toMatch(/is not topic:<level>/);
    expect(bad({ EDDY_MQTT_DEVICE_FROM: 'header:x' })[0]).toMatch(/is not topic:<level>/);
    expect(bad({ EDDY_MQTT_TOPIC: 'a/+', EDDY_MQTT_DEVICE_FROM: 'topic:2' })[0]).toMatch(/has only 2 levels/);
    expect(bad({ EDDY_MQTT_TOPIC: 'a/#', EDDY_MQTT_DEVICE_FROM: 'topic:1' })[0]).toMatch(/# wildcard/);
    expect(bad({ EDDY_MQTT_OUTPUT_TOPIC: 'out/#' })[0]).toMatch(/wildcards/);
    expect(bad({ EDDY_MQTT_CA: '/nonexistent/ca.pem' })[0]).toMatch(/cannot be read/);
    expect(bad({ EDDY_MQTT_PASSWORD: 'x' })[0]).toMatch(/without EDDY_MQTT_USERNAME/);
  });

  it('never puts the password in an error text', () => {
    const r = readMqttSettings({ EDDY_MQTT_URL: 'mqtt://u:hunter2@b', EDDY_MQTT_PASSWORD: 'hunter3' }, 'h');
    expect(JSON.stringify(r)).not.toMatch(/hunter/);
  });
});

describe('device id', () => {
  it('topic:<level> counts levels from 0', () => {
    expect(deviceIdFrom({ kind: 'topic', level: 1 }, 'plant/press-7/telemetry', Buffer.from('{}'))).toBe('press-7');
    expect(deviceIdFrom({ kind: 'topic', level: 0 }, 'press-7', Buffer.from('{}'))).toBe('press-7');
    expect(deviceIdFrom({ kind: 'topic', level: 3 }, 'a/b', Buffer.from('{}'))).toBeNull();
    expect(deviceIdFrom({ kind: 'topic', level: 1 }, 'a//c', Buffer.from('{}'))).toBeNull();
  });

  it('body:<path> reads own properties of the object, or of a batch\'s first element', () => {
    const from = parseDeviceFrom('body:meta.device');
    expect(from).toEqual({ kind: 'body', path: 'meta.device' });
    if (typeof from === 'string') return;
    expect(deviceIdFrom(from, 't', Buffer.from('{"meta":{"device":"d1"},"v":1}'))).toBe('d1');
    expect(deviceIdFrom(from, 't', Buffer.from('[{"meta":{"device":7}},{"meta":{"device":"x"}}]'))).toBe('7');
    expect(deviceIdFrom(from, 't', Buffer.from('{"meta":{}}'))).toBeNull();
    expect(deviceIdFrom(from, 't', Buffer.from('{"meta":{"device":""}}'))).toBeNull();
    expect(deviceIdFrom(from, 't', Buffer.from('{"meta":{"device":{"a":1}}}'))).toBeNull();
    expect(deviceIdFrom(from, 't', Buffer.from('not json'))).toBeNull();
  });
});

it('output topic template', () => {
  expect(outputTopicFor('eddy/{output}/{rule}', { output: 'alerts', rule: 'hot', kind: 'alert' })).toBe('eddy/alerts/hot');
  expect(outputTopicFor('site/{kind}/{rule}/{rule}', { output: 'x', rule: 'r', kind: 'summary' })).toBe('site/summary/r/r');
  expect(outputTopicFor('fixed', { output: 'x', rule: 'r', kind: 'summary' })).toBe('fixed');
});
