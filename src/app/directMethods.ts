import { isPlainObject } from '../config/mergeDesired.js';
import { RuleManager } from '../rules/ruleManager.js';
import { compileQueryRules, type QueryStatementError } from '../rules/queryRules.js';

/** A direct method's answer: an HTTP-like status and a JSON payload (docs/contract.md section 7). */
export interface MethodResponse {
  readonly status: number;
  readonly payload: unknown;
}

/** A direct method's handler. */
export type MethodHandler = (payload: unknown) => Promise<MethodResponse>;

/** `flush` answers 503 after this long without an acknowledged output... */
export const FLUSH_STALL_MS = 20_000;
/** ...or after this long in all (under IoT Hub's 300 s ceiling for a direct method's response). */
export const FLUSH_MAX_MS = 280_000;

/** What the methods read and drive: ports, faked in test/unit/app/directMethods.test.ts. */
export interface DirectMethodPorts {
  /** Moves the outputs emitted this turn to the outbox (they count as pending too). */
  commitOutputs(): void;
  /** Waits until the outbox is empty ('drained'), `stallMs` pass with no acknowledged send ('stalled'), or `maxMs` pass ('timeout'). */
  flushUntil(stallMs: number, maxMs: number): Promise<'drained' | 'stalled' | 'timeout'>;
  /** Outputs in the outbox, and their bytes. */
  outbox(): { pending: number; bytes: number };
  /** The counters `getStats` reports (src/metrics/metrics.ts `snapshot`). */
  counters(): { received: unknown; rejected: unknown; uptimeSeconds: number; futureTimestamps: unknown; outboxConflicts: unknown };
  /** Outputs emitted per running rule. */
  ruleStats(): Readonly<Record<string, { emitted: number }>>;
}

/** The module's direct methods by name (docs/contract.md section 7), for the edgeHub connection to register. */
export function directMethods(ports: DirectMethodPorts): Record<'validateRules' | 'flush' | 'getStats', MethodHandler> {
  return {
    validateRules: async (payload) => validateRules(payload),
    flush: async (payload) => {
      if (payload !== null && payload !== undefined && !(isPlainObject(payload) && Object.keys(payload).length === 0)) {
        return { status: 400, payload: { error: 'flush takes no payload (null, {} or nothing)' } };
      }
      ports.commitOutputs();
      // 503 "cannot be reached" only when edgeHub stops acknowledging (FLUSH_STALL_MS without a PUBACK):
      // a long backlog drained at `upstream.maxMessagesPerSecond` keeps the method waiting while it
      // moves, up to FLUSH_MAX_MS (IoT Hub's longest direct-method timeout is 300 s).
      const outcome = await ports.flushUntil(FLUSH_STALL_MS, FLUSH_MAX_MS);
      const { pending } = ports.outbox();
      if (outcome === 'drained') return { status: 200, payload: { drained: true, pending } };
      const error = outcome === 'stalled' ? `edgeHub cannot be reached: no output acknowledged for ${FLUSH_STALL_MS / 1000} s` : `still draining after ${FLUSH_MAX_MS / 1000} s (edgeHub acknowledging)`;
      return { status: 503, payload: { drained: false, pending, error } };
    },
    getStats: async () => {
      const snap = ports.counters();
      const s = ports.outbox();
      const rules: Record<string, { emitted: number }> = {};
      for (const [id, r] of Object.entries(ports.ruleStats())) rules[id] = { emitted: r.emitted };
      return {
        status: 200,
        payload: {
          received: snap.received, rejected: snap.rejected, rules, outbox: { pending: s.pending, bytes: s.bytes }, uptimeSeconds: snap.uptimeSeconds,
          futureTimestamps: snap.futureTimestamps, outboxConflicts: snap.outboxConflicts,
        },
      };
    },
  };
}

/** `validateRules`: checks the payload's shape, then a dry run. Nothing is applied. */
export function validateRules(payload: unknown): MethodResponse {
  const usage = 'payload must be {"rules": {"<ruleId>": rule, ...}}, {"query": "<ASA query>"} or both';
  if (!isPlainObject(payload) || (payload.rules === undefined && payload.query === undefined)) return { status: 400, payload: { error: usage } };
  if (payload.rules !== undefined && !isPlainObject(payload.rules)) return { status: 400, payload: { error: `${usage}; "rules" is not an object` } };
  if (payload.query !== undefined && typeof payload.query !== 'string') return { status: 400, payload: { error: `${usage}; "query" is not a string` } };
  return { status: 200, payload: validatePayload(payload.rules as Record<string, unknown> | undefined, payload.query as string | undefined) };
}

/**
 * `validateRules` (docs/contract.md section 7): a dry run of `rules`, of `query`, or of both together
 * (then an id both define is refused, as resolveConfig refuses it in the twin).
 */
function validatePayload(rules: Record<string, unknown> | undefined, query: string | undefined): Record<string, unknown> {
  const checked = RuleManager.validate(rules ?? {});
  let valid = checked.valid;
  const out: Record<string, unknown> = { valid, rules: checked.rules };
  if (query !== undefined) {
    const q = compileQueryRules(query);
    if (!q.ok) {
      valid = false;
      out.query = { valid: false, statements: null, errors: q.errors };
    } else {
      const errors: QueryStatementError[] = [];
      for (const r of q.rules) {
        if (rules === undefined || !Object.prototype.hasOwnProperty.call(rules, r.id)) continue;
        const error = `rule id "${r.id}" is defined both in rules and by query statement ${r.statement}`;
        errors.push({ statement: r.statement, line: r.line, column: r.column, error });
        checked.rules[r.id] = { ok: false, error };
      }
      if (errors.length > 0) valid = false;
      out.query = { valid: errors.length === 0, statements: q.rules.map((r) => ({ statement: r.statement, rule: r.id, line: r.line, column: r.column })), errors: errors.length > 0 ? errors : null };
    }
  }
  out.valid = valid;
  return out;
}
