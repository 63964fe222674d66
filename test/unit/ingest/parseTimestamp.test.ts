import { describe, expect, it } from 'vitest';
import { parseTimestamp } from '../../../src/ingest/parseTimestamp.js';

describe('parseTimestamp', () => {
  it('reads .NET round-trip timestamps with 7 fractional digits (SimulatedTemperatureSensor)', () => {
    expect(parseTimestamp('2026-11-26T03:00:00.1234567Z')).toBe(Date.UTC(2026, 10, 26, 3, 0, 0, 123));
    expect(parseTimestamp('2026-11-26T03:00:00.9999999Z')).toBe(Date.UTC(2026, 10, 26, 3, 0, 0, 999));
  });
  it('reads ISO 8601 with offsets, without seconds, and without a zone (UTC)', () => {
    expect(parseTimestamp('2026-11-26T05:00:00+02:00')).toBe(Date.UTC(2026, 10, 26, 3));
    expect(parseTimestamp('2026-11-26T01:30:00-0130')).toBe(Date.UTC(2026, 10, 26, 3));
    expect(parseTimestamp('2026-11-26T03:00Z')).toBe(Date.UTC(2026, 10, 26, 3));
    expect(parseTimestamp('2026-11-26 03:00:00')).toBe(Date.UTC(2026, 10, 26, 3));
    expect(parseTimestamp('2026-11-26T03:00:00.5')).toBe(Date.UTC(2026, 10, 26, 3, 0, 0, 500));
  });
  it('reads epoch milliseconds given as JSON numbers', () => {
    expect(parseTimestamp(1764126000000)).toBe(1764126000000);
    expect(parseTimestamp(1764126000000.7)).toBe(1764126000000);
  });
  it.each([
    ['not a date'],
    ['2026-13-01T00:00:00Z'],
    ['2026-02-30T00:00:00Z'],
    ['2026-11-26T24:00:00Z'],
    ['2026-11-26T03:00:00+25:00'],
    ['1764126000000'],
    [''],
    [-1],
    [Number.NaN],
    [Infinity],
    [1e20],
    [null],
    [true],
    [{}],
  ])('rejects %j', (v) => {
    expect(parseTimestamp(v)).toBeNull();
  });
  it('accepts 29 February only in leap years', () => {
    expect(parseTimestamp('2024-02-29T00:00:00Z')).not.toBeNull();
    expect(parseTimestamp('2025-02-29T00:00:00Z')).toBeNull();
    expect(parseTimestamp('2000-02-29T00:00:00Z')).not.toBeNull();
    expect(parseTimestamp('1900-02-29T00:00:00Z')).toBeNull();
  });
});
