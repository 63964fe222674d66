import { describe, expect, it } from 'vitest';
import { compilePath, compileRequiredRead, MISSING } from '../../../src/util/readPath.js';

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

describe('compileRequiredRead', () => {
  // Bodies with every shape a one- or two-segment read can meet (the inline cases) and deeper ones
  // (compilePath): the throwing reader must give compilePath's answer for each, turned into a throw.
  const bodies = [
    '{"a":1,"m":{"t":2,"n":null,"s":"x","b":true,"o":{"y":3},"arr":[1]},"arr":[5,6],"__proto__":{"z":9}}',
    '{"a":"21.5","m":null}',
    '{"a":false,"m":[{"t":1}],"length":4}',
    '{"m":{"toString":7,"length":"L","constructor":{"y":1}}}',
    '{}',
  ].map((t) => JSON.parse(t) as Record<string, unknown>);
  const paths = ['a', 'b', 'length', 'toString', 'arr', '__proto__', 'm.t', 'm.n', 'm.s', 'm.b', 'm.q', 'm.arr', 'a.b', 'm.toString',
    'm.length', 'arr.length', 'arr.0', '__proto__.z', 'm.o.y', 'm.o.z', 'm.constructor.y', 'm.0.t', 'a.b.c'];
  const missing = new Error('missing');
  const nan = new Error('nan');
  const outcome = (f: () => unknown): unknown => {
    try {
      return f();
    } catch (e) {
      return e;
    }
  };
  it(`agrees with compilePath on ${paths.length} paths over ${bodies.length} bodies, as is and as a number`, () => {
    let compared = 0;
    for (const path of paths) {
      const segments = path.split('.');
      const general = compilePath(segments);
      const plain = compileRequiredRead(segments, missing);
      const numeric = compileRequiredRead(segments, missing, nan);
      for (const body of bodies) {
        const v = general(body);
        const ctx = { body };
        expect(outcome(() => plain(ctx)), `${path} in ${JSON.stringify(body)}`).toBe(v === MISSING ? missing : v);
        expect(outcome(() => numeric(ctx)), `${path} in ${JSON.stringify(body)} as a number`).toBe(v === MISSING ? missing : typeof v === 'number' ? v : nan);
        compared++;
      }
    }
    expect(compared).toBe(paths.length * bodies.length);
  });
});
