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
  it('measures a batch element\'s depth as if it were sent alone: 32 passes, 33 is too-deep', () => {
    const nest = (n: number): string => '{"a":'.repeat(n - 1) + '{}' + '}'.repeat(n - 1);
    // Alone.
    expect(decodeMessage(nest(32), meta)).toMatchObject({ events: [{ body: JSON.parse(nest(32)) as unknown }], rejects: [] });
    expect(decodeMessage(nest(33), meta)).toEqual({ events: [], rejects: [{ reason: 'too-deep', detail: 'nested deeper than 32' }] });
    // In a batch: the array is not a level, and each element is judged on its own.
    const r = decodeMessage(`[${nest(32)},${nest(33)},{"b":1}]`, meta);
    expect(r.events.map((e) => e.body)).toEqual([JSON.parse(nest(32)), { b: 1 }]);
    expect(r.rejects).toEqual([{ reason: 'too-deep', detail: 'batch element 1' }]);
    // Depth through arrays inside an element counts as it does alone: 31 objects around one array of objects is 33.
    const viaArray = '{"a":'.repeat(31) + '[{}]' + '}'.repeat(31);
    expect(decodeMessage(viaArray, meta).rejects[0]!.reason).toBe('too-deep');
    expect(decodeMessage(`[${viaArray}]`, meta).rejects[0]!.reason).toBe('too-deep');
  });
  it.each([
    ['Buffer', (t: string): Buffer => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(t)])],
    ['string', (t: string): string => '\ufeff' + t],
  ])('ignores a leading UTF-8 BOM on a %s body (RFC 8259 section 8.1)', (_kind, withBom) => {
    expect(decodeMessage(withBom(body), meta)).toEqual(decodeMessage(body, meta));
    expect(decodeMessage(withBom(body), meta).events).toHaveLength(1);
    const batch = `[${body},{"a":1}]`;
    expect(decodeMessage(withBom(batch), meta)).toEqual(decodeMessage(batch, meta));
    expect(decodeMessage(withBom(batch), meta).events).toHaveLength(2);
  });
  it.each([
    ['a BOM alone', '', 'not-json'],
    ['a BOM and garbage', 'not json', 'not-json'],
    ['two BOMs', '\ufeff{"a":1}', 'not-json'],
    ['a BOM and a number', '42', 'not-object'],
    ['a BOM and a body too deep', '{"a":'.repeat(33) + '1' + '}'.repeat(33), 'too-deep'],
  ])('still rejects %s, with the reason the rest deserves', (_name, rest, reason) => {
    for (const b of [Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(rest)]), '\ufeff' + rest]) {
      const r = decodeMessage(b, meta);
      expect(r.events).toEqual([]);
      expect(r.rejects.map((x) => x.reason)).toEqual([reason]);
    }
  });
  it('does not take a lone EF byte or a BOM elsewhere for a leading BOM', () => {
    // EF not followed by BB BF: still checked as UTF-8 (here invalid) rather than skipped.
    expect(decodeMessage(Buffer.from([0xef, 0x7b, 0x7d]), meta).rejects[0]!.reason).toBe('not-utf8');
    // A BOM after leading whitespace is not a leading BOM.
    expect(decodeMessage(' \ufeff{"a":1}', meta).rejects[0]!.reason).toBe('not-json');
    // A BOM inside a string value is data and kept.
    expect(decodeMessage('{"s":"\ufeffx"}', meta).events[0]!.body).toEqual({ s: '\ufeffx' });
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
