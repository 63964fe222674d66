import { isPlainObject } from './mergeDesired.js';

/**
 * What a rule document's `enabled` says (docs/contract.md section 6, docs/rules.md "Switching a rule
 * off"): `on` with the document to compile (`enabled` taken out, so a rule with `"enabled": true` and
 * the same rule without it are one rule, and keep their windows), `off` for `"enabled": false`, `bad`
 * for any other value of `enabled`.
 *
 * Why a field and not only `null`: IoT Hub deletes a key patched to `null`, so a `null` switch-off
 * patched while the module is not connected is in no twin document it can read afterwards, and the file
 * rule comes back. `{"enabled": false}` is an object, kept by the twin and by every full GET
 * (test/oracle/moduleTwinDifferential.test.ts patches it during outages and while the process is dead).
 */
export type RuleSwitch = { readonly state: 'on'; readonly doc: unknown } | { readonly state: 'off' } | { readonly state: 'bad'; readonly error: string };

export function ruleSwitch(id: string, doc: unknown): RuleSwitch {
  if (!isPlainObject(doc) || !Object.prototype.hasOwnProperty.call(doc, 'enabled')) return { state: 'on', doc };
  const { enabled, ...rest } = doc;
  if (enabled === false) return { state: 'off' };
  if (enabled === true) return { state: 'on', doc: rest };
  return { state: 'bad', error: `${id}.enabled: must be true or false, got ${describe(enabled)}` };
}

/**
 * True for a document that holds no definition and is not off: `{"enabled": true}`, or `{}` (what a
 * patch `{"enabled": null}` leaves of `{"enabled": false}`). For a file rule's id it means the file's
 * definition, switched on.
 */
export function isSwitchOnly(doc: unknown): boolean {
  return isPlainObject(doc) && Object.keys(doc).every((k) => k === 'enabled') && (doc.enabled === undefined || doc.enabled === true);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return String(v);
}
