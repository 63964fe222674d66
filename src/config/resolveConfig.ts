import type { RuleSet } from '../contracts/rule.js';
import { isPlainObject } from './mergeDesired.js';

/** One rule the module should run (or switch off), before compilation. */
export interface RuleCandidate {
  readonly id: string;
  readonly source: 'file' | 'twin';
  /** The rule document, or null when the twin switched a file rule off. */
  readonly doc: unknown;
}

/** Module settings from the twin's desired `store` and `upstream` (docs/contract.md section 6). */
export interface ModuleSettings {
  readonly store: { readonly maxMB?: number; readonly ttlHours?: number };
  readonly upstream: { readonly maxMessagesPerSecond?: number };
}

export type ResolvedConfig =
  | { readonly ok: true; readonly candidates: readonly RuleCandidate[]; readonly settings: ModuleSettings; readonly settingErrors: Readonly<Record<string, string>> }
  | { readonly ok: false; readonly error: string };

/**
 * Combines the file rules with the twin's desired document. Twin rules override file rules of the
 * same id; `null` for a file rule's id (kept by a full GET) switches it off. A malformed document
 * (`rules` not an object, say) is rejected whole: nothing is applied (status `rejected`).
 */
export function resolveConfig(fileRules: RuleSet, desired: Record<string, unknown>): ResolvedConfig {
  const twinRules = desired.rules ?? {};
  if (!isPlainObject(twinRules)) return { ok: false, error: `desired.rules must be an object of rules, got ${describeType(twinRules)}` };
  if (desired.store !== undefined && !isPlainObject(desired.store)) return { ok: false, error: `desired.store must be an object, got ${describeType(desired.store)}` };
  if (desired.upstream !== undefined && !isPlainObject(desired.upstream)) return { ok: false, error: `desired.upstream must be an object, got ${describeType(desired.upstream)}` };

  const candidates: RuleCandidate[] = [];
  for (const [id, doc] of Object.entries(fileRules)) {
    if (Object.prototype.hasOwnProperty.call(twinRules, id)) continue;
    candidates.push({ id, source: 'file', doc });
  }
  for (const [id, doc] of Object.entries(twinRules)) {
    if (id.startsWith('$')) continue;
    if (doc === null && !Object.prototype.hasOwnProperty.call(fileRules, id)) continue;
    candidates.push({ id, source: 'twin', doc });
  }

  const settingErrors: Record<string, string> = {};
  const store: { maxMB?: number; ttlHours?: number } = {};
  const s = (desired.store ?? {}) as Record<string, unknown>;
  if (s.maxMB !== undefined && s.maxMB !== null) {
    if (typeof s.maxMB === 'number' && s.maxMB > 0 && s.maxMB <= 1_000_000) store.maxMB = s.maxMB;
    else settingErrors['store.maxMB'] = 'store.maxMB must be a number of megabytes > 0';
  }
  if (s.ttlHours !== undefined && s.ttlHours !== null) {
    if (typeof s.ttlHours === 'number' && s.ttlHours > 0 && s.ttlHours <= 24 * 365) store.ttlHours = s.ttlHours;
    else settingErrors['store.ttlHours'] = 'store.ttlHours must be a number of hours > 0 and <= 8760';
  }
  const upstream: { maxMessagesPerSecond?: number } = {};
  const u = (desired.upstream ?? {}) as Record<string, unknown>;
  if (u.maxMessagesPerSecond !== undefined && u.maxMessagesPerSecond !== null) {
    if (typeof u.maxMessagesPerSecond === 'number' && u.maxMessagesPerSecond >= 0 && Number.isFinite(u.maxMessagesPerSecond)) upstream.maxMessagesPerSecond = u.maxMessagesPerSecond;
    else settingErrors['upstream.maxMessagesPerSecond'] = 'upstream.maxMessagesPerSecond must be a number >= 0 (0 = unlimited)';
  }
  return { ok: true, candidates, settings: { store, upstream }, settingErrors };
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}
