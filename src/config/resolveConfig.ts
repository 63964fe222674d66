import type { RuleSet } from '../contracts/rule.js';
import { isPlainObject } from './mergeDesired.js';
import { isSwitchOnly, ruleSwitch } from './ruleSwitch.js';

/** One rule the module should run (or switch off), before compilation. */
export interface RuleCandidate {
  readonly id: string;
  readonly source: 'file' | 'twin' | 'query';
  /** The rule document, or null when the rule is switched off (`null` for a file rule's id, `"enabled": false`). */
  readonly doc: unknown;
  /** The statement of the twin's `query` that made this rule (1-based). */
  readonly statement?: number;
  /** Set when the candidate is refused before compilation (an id both `rules` and `query` define). */
  readonly error?: string;
}

/** One rule compiled from the twin's desired `query`: the statement it comes from and where it starts. */
export interface QueryRule {
  readonly id: string;
  readonly statement: number;
  readonly line: number;
  readonly column: number;
  readonly doc: unknown;
}

/** Module settings from the twin's desired `store` and `upstream` (docs/contract.md section 6). */
export interface ModuleSettings {
  readonly store: { readonly maxMB?: number; readonly ttlHours?: number };
  readonly upstream: { readonly maxMessagesPerSecond?: number };
}

export type ResolvedConfig =
  | {
      readonly ok: true;
      readonly candidates: readonly RuleCandidate[];
      readonly settings: ModuleSettings;
      readonly settingErrors: Readonly<Record<string, string>>;
      /** Ids defined both by desired `rules` and by the query, with the error reported for each. */
      readonly collisions: Readonly<Record<string, string>>;
    }
  | { readonly ok: false; readonly error: string };

/**
 * Combines the file rules with the twin's desired document. Twin rules override file rules of the
 * same id; `null` for a file rule's id (kept by a full GET) switches it off, as does `"enabled": false`
 * in any rule's document (src/config/ruleSwitch.ts). A malformed document
 * (`rules` not an object, `query` not a string, say) is rejected whole: nothing is applied (status
 * `rejected`).
 *
 * `queryRules` are the rules of the desired `query` to run (compiled by the caller, src/rules/queryRules.ts;
 * the last good query's when the current one does not compile). They sit beside the twin's `rules`,
 * above the file's: a query rule overrides a file rule of the same id, as a twin rule does. An id that
 * both `rules` and the query define is an error, never resolved by a precedence a user must guess: that
 * id is rejected (its last good version keeps running) and reported on both sides; the rest applies.
 */
export function resolveConfig(fileRules: RuleSet, desired: Record<string, unknown>, queryRules: readonly QueryRule[] = []): ResolvedConfig {
  const twinRules = desired.rules ?? {};
  if (!isPlainObject(twinRules)) return { ok: false, error: `desired.rules must be an object of rules, got ${describeType(twinRules)}` };
  if (desired.query !== undefined && desired.query !== null && typeof desired.query !== 'string') return { ok: false, error: `desired.query must be a string holding an Azure Stream Analytics query, got ${describeType(desired.query)}` };
  if (desired.store !== undefined && !isPlainObject(desired.store)) return { ok: false, error: `desired.store must be an object, got ${describeType(desired.store)}` };
  if (desired.upstream !== undefined && !isPlainObject(desired.upstream)) return { ok: false, error: `desired.upstream must be an object, got ${describeType(desired.upstream)}` };

  const has = (o: object, id: string): boolean => Object.prototype.hasOwnProperty.call(o, id);
  const byQuery = new Map(queryRules.map((q) => [q.id, q]));
  const candidates: RuleCandidate[] = [];
  const collisions: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [id, doc] of Object.entries(fileRules)) {
    if (has(twinRules, id) || byQuery.has(id)) continue;
    candidates.push(switched(id, 'file', doc));
  }
  for (const [id, doc] of Object.entries(twinRules)) {
    if (id.startsWith('$')) continue;
    const q = byQuery.get(id);
    if (q !== undefined) {
      const error = `rule id "${id}" is defined both in desired.rules and by desired.query statement ${q.statement} (line ${q.line}, column ${q.column}); neither definition is applied: rename one (a query rule is named after its INTO output)`;
      collisions[id] = error;
      candidates.push({ id, source: 'twin', doc, statement: q.statement, error });
      continue;
    }
    if (doc === null && !has(fileRules, id)) continue;
    // `{"enabled": true}` alone (or `{}`) switches a file rule back on: the file's definition runs
    // (docs/rules.md "Switching a rule off"). With no file rule of that id there is nothing to run.
    if (isSwitchOnly(doc)) {
      if (has(fileRules, id)) candidates.push(switched(id, 'file', fileRules[id]));
      else candidates.push({ id, source: 'twin', doc, error: `${id}: the document holds no definition (only "enabled"), and the rules file has no rule "${id}" to switch on` });
      continue;
    }
    candidates.push(switched(id, 'twin', doc));
  }
  for (const q of queryRules) if (!has(collisions, q.id)) candidates.push({ id: q.id, source: 'query', doc: q.doc, statement: q.statement });

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
  return { ok: true, candidates, settings: { store, upstream }, settingErrors, collisions };
}

/**
 * A rule's candidate after its `enabled` (src/config/ruleSwitch.ts): off is a null document (reported
 * `disabled`); any other document goes to compileRule, which takes `"enabled": true` out and rejects
 * an `enabled` that is not a boolean.
 */
function switched(id: string, source: 'file' | 'twin', doc: unknown): RuleCandidate {
  return { id, source, doc: doc !== null && ruleSwitch(id, doc).state === 'off' ? null : doc };
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}
