import { describe, expect, it } from 'vitest';
import { decodeMessage, MAX_BODY_BYTES } from '../../../src/ingest/decodeMessage.js';

const meta = { input: 'telemetry', deviceId: 'dev1', moduleId: 'sensor', arrival: 1000 };
const body = '{"machine":{"temperature":21.7,"pressure":1.08},"ambient":{"temperature":20.9,"humidity":25},"timeCreated":"2026-11-26T03:00:00.1234567Z"}';

describe('decodeMessage', () => {
  it('decodes a JSON object and stamps identity and arrival', () => {
    const r = decodeMessage(Buffer.from(body), meta);
    expect(r.rejects).toEqual([]);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ deviceId: 'dev1', moduleId: 'sensor', input: 'telemetry', arrival: 1000 });
    expect((r.events[0]!.body.machine as { temperature: number }).temperature).toBe(21.7);
  });
  it('falls back to "local" identity when $.cdid/$.cmid are absent', () => {
    const r = decodeMessage(body, { input: 'telemetry', arrival: 1 });
    expect(r.events[0]).toMatchObject({ deviceId: 'local', moduleId: 'local' });
  });
  it('treats an array as a batch whose elements stand alone', () => {
    const r = decodeMessage('[{"a":1}, 2, {"b":2}, [1], null, "x"]', meta);
    expect(r.events.map((e) => e.body)).toEqual([{ a: 1 }, { b: 2 }]);
    expect(r.rejects.map((x) => x.reason)).toEqual(['not-object', 'not-object', 'not-object', 'not-object']);
  });
  it.each([
    ['not json', 'not-json'],
    ['{"a":', 'not-json'],
    ['42', 'not-object'],
    ['"text"', 'not-object'],
    ['null', 'not-object'],
    ['', 'not-json'],
  ])('rejects %j as %s', (text, reason) => {
    const r = decodeMessage(Buffer.from(text), meta);
    expect(r.events).toEqual([]);
    expect(r.rejects.map((x) => x.reason)).toEqual([reason]);
  });
  it('rejects bodies over 256 KiB as too-large without parsing them', () => {
    const big = Buffer.from(`{"s":"${'x'.repeat(MAX_BODY_BYTES)}"}`);
    expect(decodeMessage(big, meta).rejects[0]!.reason).toBe('too-large');
    const ok = Buffer.from(`{"s":"${'x'.repeat(MAX_BODY_BYTES - 10)}"}`);
    expect(decodeMessage(ok, meta).events).toHaveLength(1);
  });
  it('rejects nesting deeper than 32 and accepts 32', () => {
    const nest = (n: number): string => '{"a":'.repeat(n - 1) + '{}' + '}'.repeat(n - 1);
    expect(decodeMessage(nest(32), meta).events).toHaveLength(1);
    expect(decodeMessage(nest(33), meta).rejects[0]!.reason).toBe('too-deep');
    // Hostile: 100k levels of arrays must not blow the stack.
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const r = decodeMessage(`{"x":${deep}}`, meta);
    expect(r.rejects[0]!.reason).toBe('too-deep');
  });
  it('rejects invalid UTF-8 instead of silently replacing it', () => {
    const bad = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expect(decodeMessage(bad, meta).rejects[0]!.reason).toBe('not-utf8');
  });
  it('keeps __proto__ keys as plain data without polluting prototypes', () => {
    const r = decodeMessage('{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}}}', meta);
    expect(r.events).toHaveLength(1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(r.events[0]!.body)).toBe(Object.prototype);
  });
});
