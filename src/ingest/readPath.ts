/** Marker for "no such field" (distinct from a JSON null). */
export const MISSING: unique symbol = Symbol('missing');

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * Compiles a dotted body path (`machine.temperature`) into a reader of OWN properties only, so a body
 * with `__proto__` or `constructor` keys (JSON.parse makes them own data properties) can never reach a
 * prototype, and a missing key never resolves to an inherited one.
 */
export function compilePath(path: string): (body: Record<string, unknown>) => unknown {
  const parts = path.split('.');
  if (parts.length === 1) {
    const k = parts[0]!;
    return (b) => (hasOwn.call(b, k) ? b[k] : MISSING);
  }
  if (parts.length === 2) {
    const [a, c] = parts as [string, string];
    return (b) => {
      if (!hasOwn.call(b, a)) return MISSING;
      const o = b[a];
      return o !== null && typeof o === 'object' && hasOwn.call(o, c) ? (o as Record<string, unknown>)[c] : MISSING;
    };
  }
  return (b) => {
    let o: unknown = b;
    for (const k of parts) {
      if (o === null || typeof o !== 'object' || !hasOwn.call(o, k)) return MISSING;
      o = (o as Record<string, unknown>)[k];
    }
    return o;
  };
}
