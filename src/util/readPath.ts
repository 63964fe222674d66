/** Marker for "no such field" (distinct from a JSON null). */
export const MISSING: unique symbol = Symbol('missing');

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * Names an inherited property could answer to in decoded JSON, whose only prototypes are
 * Object.prototype and Array.prototype (`__proto__`, `constructor`, `toString`, `length`, ...). Only
 * for these is `hasOwnProperty` checked on every read: any other name can only be found as an own
 * property of JSON data, so a plain read is an own read, at a third of the cost of
 * `hasOwnProperty.call` (bench/expressions.bench.ts).
 */
export function inheritable(k: string): boolean {
  return k in Object.prototype || k in Array.prototype;
}

/** Reads one key of an object: own properties only; MISSING when absent. */
function stepFor(k: string): (o: object) => unknown {
  if (inheritable(k)) return (o) => (hasOwn.call(o, k) ? (o as Record<string, unknown>)[k] : MISSING);
  return (o) => {
    const v = (o as Record<string, unknown>)[k];
    return v === undefined ? MISSING : v;
  };
}

/**
 * Compiles a dotted body path (`machine.temperature`) or its segments into a reader of OWN
 * properties only, so a body with `__proto__` or `constructor` keys (JSON.parse makes them own data
 * properties) can never reach a prototype, and a missing key never resolves to an inherited one
 * (test/unit/util/readPath.test.ts). Bodies are decoded JSON, which has no `undefined`: a key whose
 * value is `undefined` reads as MISSING.
 */
export function compilePath(path: string | readonly string[]): (body: object) => unknown {
  const parts = typeof path === 'string' ? path.split('.') : path;
  const steps = parts.map(stepFor);
  if (steps.length === 1) return steps[0]!;
  if (steps.length === 2) {
    const [s0, s1] = steps as [(o: object) => unknown, (o: object) => unknown];
    return (b) => {
      const o = s0(b);
      return o !== null && typeof o === 'object' ? s1(o) : MISSING;
    };
  }
  return (b) => {
    let o: unknown = b;
    for (const step of steps) {
      if (o === null || typeof o !== 'object') return MISSING;
      o = step(o);
    }
    return o;
  };
}

/**
 * A reader of a body path for callers that fail instead of testing for MISSING (the expression
 * sandbox, src/aggregate/expression/fieldPaths.ts): it reads `c.body` along `segments` with the same
 * own-property rule as compilePath and throws `missing` when the path is absent. With `notNumber`, it
 * also throws `notNumber` for a value that is not a number (JSON types are strict: a string or a
 * boolean is not one), so that arithmetic reads and checks in one closure. The thrown values are made
 * once by the caller, so a failing read allocates nothing. Paths of one or two segments that no
 * prototype could answer to are read inline, the hot case of bench/expressions.bench.ts; the rest
 * through compilePath.
 */
export function compileRequiredRead<C extends { readonly body: Record<string, unknown> }>(
  segments: readonly string[],
  missing: unknown,
  notNumber?: unknown,
): (c: C) => unknown {
  const n = segments.length;
  const fast = segments.every((k) => !inheritable(k));
  const hasNan = notNumber !== undefined;
  const nan = notNumber;
  if (fast && n === 2) {
    const k0 = segments[0]!;
    const k1 = segments[1]!;
    if (hasNan) {
      return (c) => {
        const o = c.body[k0];
        if (typeof o === 'object' && o !== null) {
          const v = (o as Record<string, unknown>)[k1];
          if (typeof v === 'number') return v;
          if (v !== undefined) throw nan;
        }
        throw missing;
      };
    }
    return (c) => {
      const o = c.body[k0];
      if (typeof o === 'object' && o !== null) {
        const v = (o as Record<string, unknown>)[k1];
        if (v !== undefined) return v;
      }
      throw missing;
    };
  }
  if (fast && n === 1) {
    const k0 = segments[0]!;
    if (hasNan) {
      return (c) => {
        const v = c.body[k0];
        if (typeof v === 'number') return v;
        if (v !== undefined) throw nan;
        throw missing;
      };
    }
    return (c) => {
      const v = c.body[k0];
      if (v !== undefined) return v;
      throw missing;
    };
  }
  const readBody = compilePath(segments);
  const read = (c: C): unknown => {
    const v = readBody(c.body);
    if (v === MISSING) throw missing;
    return v;
  };
  if (!hasNan) return read;
  return (c) => {
    const v = read(c);
    if (typeof v === 'number') return v;
    throw nan;
  };
}
