import type { RuleCandidate } from '../config/resolveConfig.js';
import { compileRule, type CompiledRule } from './compileRule.js';

/** A rule's line in the reported properties (docs/contract.md section 6). */
export interface RuleReport {
  readonly status: 'active' | 'rejected' | 'disabled';
  readonly source: 'file' | 'twin' | 'query';
  /** For a rule of the twin's `query`: its statement (1-based). */
  readonly statement?: number;
  readonly error?: string;
}

export interface ApplyResult {
  /** The rules to run: every valid candidate, plus the last good version of each rejected one. */
  readonly rules: CompiledRule[];
  readonly report: Record<string, RuleReport>;
  readonly rejected: number;
}

/**
 * Keeps the set of running rules across reloads: an invalid rule is rejected alone and its last good
 * version keeps running; a `null` switches a rule off; rules absent from the candidates are removed.
 */
export class RuleManager {
  private active = new Map<string, CompiledRule>();

  /**
   * Starts from rules that ran before a restart (saved by {@link lastGood}), so that a rule whose
   * current candidate is rejected falls back to its last good version across restarts too, not only
   * within one run (docs/contract.md section 6). Only for a manager that has applied nothing yet; saved
   * documents that no longer compile (say, after an upgrade narrowed the schema) are skipped and
   * returned by id, with the reason.
   */
  seed(saved: Readonly<Record<string, unknown>>): Record<string, string> {
    const skipped: Record<string, string> = {};
    if (this.active.size > 0) return skipped;
    for (const [id, doc] of Object.entries(saved)) {
      const res = compileRule(id, doc);
      if (res.ok) this.active.set(id, res.rule);
      else skipped[id] = res.error;
    }
    return skipped;
  }

  /** The documents of the running rules by id: what {@link seed} takes after a restart. */
  lastGood(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [id, r] of this.active) out[id] = r.doc;
    return out;
  }

  apply(candidates: readonly RuleCandidate[]): ApplyResult {
    const next = new Map<string, CompiledRule>();
    // Null prototype: a twin can name a rule `__proto__` (IoT Hub allows the key); on a plain `{}` its
    // line would set the report's prototype instead of listing the rejection (test/unit/hostile/hostileRules.test.ts).
    const report: Record<string, RuleReport> = Object.create(null) as Record<string, RuleReport>;
    let rejected = 0;
    for (const c of candidates) {
      const where = c.statement === undefined ? {} : { statement: c.statement };
      if (c.doc === null && c.error === undefined) {
        report[c.id] = { status: 'disabled', source: c.source };
        continue;
      }
      const res = c.error === undefined ? compileRule(c.id, c.doc) : { ok: false as const, error: c.error };
      if (res.ok) {
        next.set(c.id, res.rule);
        report[c.id] = { status: 'active', source: c.source, ...where };
      } else {
        rejected++;
        report[c.id] = { status: 'rejected', source: c.source, ...where, error: res.error };
        const prev = this.active.get(c.id);
        if (prev) next.set(c.id, prev);
      }
    }
    this.active = next;
    return { rules: [...next.values()], report, rejected };
  }

  /** Dry run for the `validateRules` method: nothing is applied. */
  static validate(rules: Record<string, unknown>): { valid: boolean; rules: Record<string, { ok: boolean; error?: string }> } {
    const out: Record<string, { ok: boolean; error?: string }> = Object.create(null) as Record<string, { ok: boolean; error?: string }>;
    let valid = true;
    for (const [id, doc] of Object.entries(rules)) {
      const res = compileRule(id, doc);
      if (res.ok) out[id] = { ok: true };
      else {
        valid = false;
        out[id] = { ok: false, error: res.error };
      }
    }
    return { valid, rules: out };
  }

  current(): CompiledRule[] {
    return [...this.active.values()];
  }
}
