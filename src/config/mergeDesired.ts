/**
 * IoT Hub twin merge semantics (docs/contract.md section 6): a desired patch merges into the current
 * document, objects recursively; `null` deletes a key; `$`-prefixed metadata (`$version`,
 * `$metadata`) is not part of the document.
 */
export function mergeDesired(current: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    if (v === null) {
      delete out[k];
    } else if (isPlainObject(v) && isPlainObject(out[k])) {
      setOwn(out, k, mergeDesired(out[k] as Record<string, unknown>, v));
    } else {
      setOwn(out, k, isPlainObject(v) ? stripMeta(v) : v);
    }
  }
  return out;
}

/** A full twin document without its `$` metadata (nested nulls from a GET are kept: they mean "off"). */
export function stripMeta(doc: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(doc)) {
    if (k.startsWith('$')) continue;
    setOwn(out, k, isPlainObject(v) ? stripMeta(v) : v);
  }
  return out;
}

/**
 * `out[k] = v` as an own data property. A plain assignment to `__proto__` (a key IoT Hub allows, and
 * JSON.parse keeps as an own key) would replace the object's prototype instead: a patch
 * `{"__proto__": {"rules": {...}}}` then made `desired.rules` an inherited value (test/unit/hostile/hostileRules.test.ts).
 * As an own key it is just a name, and a rule id `__proto__` is rejected by its pattern.
 */
function setOwn(out: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(out, k, { value: v, writable: true, enumerable: true, configurable: true });
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
