import { describe, expect, it } from 'vitest';
import { compilePath, MISSING } from '../../../src/util/readPath.js';

describe('compilePath', () => {
  const body = JSON.parse('{"a":1,"m":{"t":2,"n":null,"deep":{"x":{"y":3}}},"__proto__":{"z":9}}') as Record<string, unknown>;
  it('reads top-level, two-level and deeper paths', () => {
    expect(compilePath('a')(body)).toBe(1);
    expect(compilePath('m.t')(body)).toBe(2);
    expect(compilePath('m.n')(body)).toBeNull();
    expect(compilePath('m.deep.x.y')(body)).toBe(3);
  });
  it('returns MISSING for absent keys and never reads inherited properties', () => {
    expect(compilePath('b')(body)).toBe(MISSING);
    expect(compilePath('m.q')(body)).toBe(MISSING);
    expect(compilePath('a.b')(body)).toBe(MISSING);
    expect(compilePath('m.deep.x.y.z')(body)).toBe(MISSING);
    expect(compilePath('toString')(body)).toBe(MISSING);
    expect(compilePath('m.constructor')(body)).toBe(MISSING);
    expect(compilePath('m.deep.hasOwnProperty')(body)).toBe(MISSING);
  });
  it('reads an own __proto__ key as data', () => {
    expect(compilePath('__proto__.z')(body)).toBe(9);
  });
});
