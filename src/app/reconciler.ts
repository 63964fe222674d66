import type { RuleSet } from '../contracts/rule.js';
import type { Logger } from '../contracts/logger.js';
import { mergeDesired, stripMeta, isPlainObject } from '../config/mergeDesired.js';
import { resolveConfig, type QueryRule } from '../config/resolveConfig.js';
import { RuleManager, type RuleReport } from '../rules/ruleManager.js';
import { compileQueryRules, type QueryStatementError } from '../rules/queryRules.js';
import type { CompiledRule } from '../rules/compileRule.js';

const MB = 1024 * 1024;
/** The outbox TTL when neither the twin nor the environment sets one (docs/contract.md section 6, `store.ttlHours`). */
export const DEFAULT_TTL_HOURS = 168;

/** One statement's line under the reported `query.statements` (docs/contract.md section 6). */
export interface StatementReport {
  readonly rule?: string;
  readonly line: number;
  readonly column: number;
  readonly status: string;
  readonly error?: string;
}

/**
 * The `query` line of the reported properties. Statements are keyed by their number ("1", "2", ...),
 * not listed in an array: IoT Hub has documented twin values as "boolean, number, string, object.
 * Arrays are not allowed" (https://learn.microsoft.com/azure/iot-hub/iot-hub-devguide-device-twins).
 */
export interface QueryReport {
  readonly status: 'none' | 'applied' | 'partial' | 'rejected';
  readonly statements: Readonly<Record<string, StatementReport>>;
}

/** The `config` line of the reported properties, less its version. */
export interface ConfigReport {
  readonly status: 'applied' | 'partial' | 'rejected';
  readonly errors: string[];
}

/** Store and upstream limits of the applied settings (docs/contract.md section 6, `store` and `upstream`). */
export interface AppliedLimits {
  readonly maxBytes: number;
  readonly ttlMs: number;
  /** 0: no pacing. */
  readonly maxMessagesPerSecond: number;
}

/** What an applied configuration changes outside the rules: ports of the reconciler. */
export interface ReconcilerEffects {
  /** Hands the running rules over (the engine and the event-lag probe). */
  setRules(rules: readonly CompiledRule[]): void;
  /** A rule that stopped running: its per-rule metrics go (`eddy_rule_*` series of a removed rule). */
  forgetRule(id: string): void;
  /** The ids of the running rules: the live page keeps only theirs. */
  keepOnly(ids: readonly string[]): void;
  /** The store and forwarder limits of an applied document. */
  limits(limits: AppliedLimits): void;
}

/** What a checkpoint keeps of the reconciler, so that a restart picks up where it stood. */
export interface ReconcilerState {
  /** The merged desired document, switch-offs included. */
  readonly desired: Record<string, unknown>;
  /** The documents of the rules that ran: the last good versions after a restart. */
  readonly lastGood: Record<string, unknown>;
  /** The text of the last desired `query` that compiled (null: none). */
  readonly lastGoodQuery: string | null;
}

export interface ReconcilerOptions {
  /** The rules file's rules, beneath the twin's. */
  readonly fileRules: RuleSet;
  /** Problems of the rules file as a whole (a repeated id), reported with every reconcile. */
  readonly fileErrors?: readonly string[];
  /** Problems of the environment, reported with every reconcile. */
  readonly configErrors?: readonly string[];
  /** EDDY_STORE_MAX_MB: the outbox limit when the twin sets none. */
  readonly storeMaxMB: number;
  /** Restored from the checkpoint; nothing on a first start. */
  readonly saved?: Partial<ReconcilerState>;
  readonly effects: ReconcilerEffects;
  readonly log: Logger;
}

/**
 * Turns the rules file and the twin's desired properties (rules, `query`, settings) into the rules to
 * run and the reported properties that describe them (docs/contract.md section 6): a bad rule is
 * rejected alone and its last good version keeps running, a bad `query` is rejected whole and the last
 * good query keeps running, a malformed document changes nothing. Never throws.
 */
export class Reconciler {
  private fileRules: RuleSet;
  private fileErrors: readonly string[];
  private readonly configErrors: readonly string[];
  private readonly manager = new RuleManager();
  private desiredDoc: Record<string, unknown>;
  private version = 0;
  private config: ConfigReport = { status: 'applied', errors: [] };
  private ruleReports: Record<string, RuleReport> = {};
  private query: QueryReport = { status: 'none', statements: {} };
  private goodQuery: string | null;
  /** JSON of `manager.lastGood()`, refreshed when the rules change (saved with every checkpoint). */
  private lastGoodJson: string;
  private maxRate = 0;
  /** The rule ids and statement keys last reported: one gone is patched to null (IoT Hub deletes it). */
  private reportedRuleIds = new Set<string>();
  private reportedStatements = new Set<string>();

  constructor(private readonly opts: ReconcilerOptions) {
    this.fileRules = opts.fileRules;
    this.fileErrors = opts.fileErrors ?? [];
    this.configErrors = opts.configErrors ?? [];
    this.desiredDoc = isPlainObject(opts.saved?.desired) ? opts.saved.desired : {};
    this.goodQuery = typeof opts.saved?.lastGoodQuery === 'string' ? opts.saved.lastGoodQuery : null;
    const lastGood = opts.saved?.lastGood;
    // A rule rejected now falls back to the version that ran before the restart (docs/contract.md section 6).
    for (const [id, error] of Object.entries(this.manager.seed(isPlainObject(lastGood) ? lastGood : {}))) {
      opts.log.warn({ rule: id, error }, 'checkpoint: the last good version of a rule no longer compiles; it cannot stand in for a rejected one');
    }
    this.lastGoodJson = JSON.stringify(this.manager.lastGood());
  }

  /** The running rules. */
  current(): CompiledRule[] {
    return this.manager.current();
  }

  /** The merged desired document. */
  get desired(): Readonly<Record<string, unknown>> {
    return this.desiredDoc;
  }

  get desiredVersion(): number {
    return this.version;
  }

  /** The `config` line last reported. */
  get lastConfig(): ConfigReport {
    return this.config;
  }

  /** Each rule's line of the last reconcile. */
  get lastRules(): Readonly<Record<string, RuleReport>> {
    return this.ruleReports;
  }

  get lastQuery(): QueryReport {
    return this.query;
  }

  /** `upstream.maxMessagesPerSecond` of the applied document (0: no pacing). */
  get maxMessagesPerSecond(): number {
    return this.maxRate;
  }

  /** What the checkpoint saves, as JSON per key. */
  stateJson(): { desired: string; lastGood: string; lastGoodQuery: string } {
    return { desired: JSON.stringify(this.desiredDoc), lastGood: this.lastGoodJson, lastGoodQuery: JSON.stringify(this.goodQuery) };
  }

  /** A reloaded rules file (local mode); the caller reconciles. */
  setFileRules(rules: RuleSet, fileErrors: readonly string[]): void {
    this.fileRules = rules;
    this.fileErrors = fileErrors;
  }

  /** A desired-properties patch (`$version` stripped by the caller), merged and applied. */
  desiredPatch(patch: Record<string, unknown>, version: number): void {
    // `rules: null` drops every twin rule, switch-offs included; otherwise they persist (see keepSwitchOffs).
    const offs = patch.rules === null ? [] : [...this.switchedOff(this.desiredDoc), ...this.switchedOff(patch)];
    this.desiredDoc = keepSwitchOffs(mergeDesired(this.desiredDoc, patch), offs);
    this.version = version;
    this.reconcile();
  }

  /**
   * The whole twin, read at connect and after every reconnect (docs/contract.md section 6: desired
   * patches may have been missed). Its reported rule ids and statement keys are remembered, so that
   * one no longer running is patched to null in the next report.
   */
  twinRead(twin: { desired: Record<string, unknown>; reported: Record<string, unknown> }): void {
    this.desiredDoc = keepSwitchOffs(stripMeta(twin.desired), this.switchedOff(this.desiredDoc));
    if (typeof twin.desired.$version === 'number') this.version = twin.desired.$version;
    const rep = twin.reported.rules;
    if (isPlainObject(rep)) for (const id of Object.keys(rep)) if (!id.startsWith('$')) this.reportedRuleIds.add(id);
    const repQuery = twin.reported.query;
    if (isPlainObject(repQuery) && isPlainObject(repQuery.statements)) for (const k of Object.keys(repQuery.statements)) if (!k.startsWith('$')) this.reportedStatements.add(k);
    this.reconcile();
  }

  /**
   * The `config`, `query` and `rules` lines of the next reported patch. A rule or statement reported
   * before and gone now is patched to null: a twin patch merges, and only null deletes a key.
   */
  reportedPatch(): { config: Record<string, unknown>; query: Record<string, unknown>; rules: Record<string, unknown> } {
    const rules: Record<string, unknown> = { ...this.ruleReports };
    for (const id of this.reportedRuleIds) if (!(id in rules)) rules[id] = null;
    this.reportedRuleIds = new Set(Object.keys(this.ruleReports));
    const keys = Object.keys(this.query.statements);
    const statements: Record<string, unknown> | null = keys.length === 0 ? null : { ...this.query.statements };
    if (statements !== null) for (const k of this.reportedStatements) if (!(k in statements)) statements[k] = null;
    this.reportedStatements = new Set(keys);
    return {
      config: { desiredVersion: this.version, status: this.config.status, errors: this.config.errors.length > 0 ? this.config.errors : null },
      query: { status: this.query.status, statements },
      rules,
    };
  }

  /**
   * Applies file rules + desired document. `setRules` hands the rules over: by default the effects'
   * (at start-up the replay takes them instead, rule by rule: src/app/checkpointer.ts).
   */
  reconcile(setRules: (rules: readonly CompiledRule[]) => void = (rules) => this.opts.effects.setRules(rules)): void {
    const { log, effects } = this.opts;
    const query = this.queryRulesOf(this.desiredDoc);
    const res = resolveConfig(this.fileRules, this.desiredDoc, query.rules);
    const errors = [...this.configErrors, ...this.fileErrors];
    if (!res.ok) {
      errors.push(res.error);
      this.config = { status: 'rejected', errors };
      log.warn({ error: res.error }, 'desired properties rejected; nothing applied');
      // The rules running before keep running. At start-up those are the ones saved before the
      // restart, or, on a first start, the file rules: a malformed twin must not leave the module idle.
      if (this.manager.current().length === 0) {
        const files = resolveConfig(this.fileRules, {});
        if (files.ok) this.ruleReports = this.manager.apply(files.candidates).report;
      }
      setRules(this.manager.current());
      this.lastGoodJson = JSON.stringify(this.manager.lastGood());
      return;
    }
    const before = new Set(this.manager.current().map((r) => r.id));
    const applied = this.manager.apply(res.candidates);
    setRules(applied.rules);
    for (const id of before) if (!applied.rules.some((r) => r.id === id)) effects.forgetRule(id);
    effects.keepOnly(applied.rules.map((r) => r.id));
    this.ruleReports = applied.report;
    this.lastGoodJson = JSON.stringify(this.manager.lastGood());
    this.goodQuery = query.good;
    this.query = this.queryReport(query, applied.report);
    for (const [id, r] of Object.entries(applied.report)) if (r.status === 'rejected') log.warn({ rule: id, error: r.error }, 'rule rejected');
    for (const [k, e] of Object.entries(res.settingErrors)) errors.push(`${k}: ${e}`);
    const maxMB = res.settings.store.maxMB ?? this.opts.storeMaxMB;
    const ttlHours = res.settings.store.ttlHours ?? DEFAULT_TTL_HOURS;
    this.maxRate = res.settings.upstream.maxMessagesPerSecond ?? 0;
    effects.limits({ maxBytes: maxMB * MB, ttlMs: ttlHours * 3_600_000, maxMessagesPerSecond: this.maxRate });
    // docs/contract.md section 6: the status is about rules alone (`applied` when no rule was rejected);
    // setting and environment problems are listed in `config.errors`.
    if (applied.rules.length === 0) {
      // Not an error of the twin, but a module reading inputs and producing nothing must say so loudly
      // (log, twin `config.errors`, `/healthz` detail): every rule was rejected, switched off, or none given.
      const msg = 'no rule is active: inputs are received and logged but produce no output';
      errors.push(msg);
      log.warn({ report: applied.report }, msg);
    }
    this.config = { status: applied.rejected > 0 || this.query.status === 'rejected' ? 'partial' : 'applied', errors };
    log.info({ rules: applied.rules.map((r) => r.id), status: this.config.status }, 'rules applied');
  }

  /** File-rule ids that a desired document (or patch) switches off with `null` (docs/contract.md section 6). */
  private switchedOff(doc: Record<string, unknown>): string[] {
    const rules = doc.rules;
    if (!isPlainObject(rules)) return [];
    return Object.keys(rules).filter((id) => rules[id] === null && Object.prototype.hasOwnProperty.call(this.fileRules, id));
  }

  /**
   * The rules of the desired `query` to run, and what to report about it. A query that does not compile
   * is rejected whole (an ASA job with an error does not start either; src/rules/queryRules.ts) and the
   * last good query's rules keep running, as the last good version of a rejected rule does: a typo in
   * one statement must not stop the others' windows, nor run a job made of a subset of the statements.
   */
  private queryRulesOf(doc: Record<string, unknown>): QueryRules {
    const { log } = this.opts;
    if (typeof doc.query !== 'string') return { rules: [], good: null, errors: null };
    const q = compileQueryRules(doc.query);
    if (q.ok) return { rules: q.rules, good: doc.query, errors: null };
    for (const e of q.errors) log.warn({ statement: e.statement, line: e.line, column: e.column, error: e.error }, `desired query rejected: statement ${e.statement} line ${e.line} column ${e.column}: ${e.error}`);
    const prev = this.goodQuery === null ? null : compileQueryRules(this.goodQuery);
    log.warn({ errors: q.errors.length, running: prev?.ok ? prev.rules.map((r) => r.id) : [] }, prev?.ok ? 'desired query rejected; the last good query keeps running' : 'desired query rejected; no earlier query to keep running');
    return { rules: prev?.ok ? prev.rules : [], good: this.goodQuery, errors: q.errors };
  }

  /**
   * The reported `query` line: each statement with its rule and that rule's status, or, for a rejected
   * query, each statement that has an error (at its first error; more errors of one statement are joined).
   */
  private queryReport(query: QueryRules, report: Readonly<Record<string, RuleReport>>): QueryReport {
    if (typeof this.desiredDoc.query !== 'string') return { status: 'none', statements: {} };
    const statements: Record<string, StatementReport> = {};
    if (query.errors !== null) {
      for (const e of query.errors) {
        const prev = statements[e.statement];
        statements[e.statement] = prev === undefined ? { line: e.line, column: e.column, status: 'rejected', error: e.error } : { ...prev, error: `${prev.error}; line ${e.line} column ${e.column}: ${e.error}` };
      }
      return { status: 'rejected', statements };
    }
    for (const r of query.rules) {
      const rep = report[r.id];
      statements[r.statement] = { rule: r.id, line: r.line, column: r.column, status: rep?.status ?? 'rejected', ...(rep?.error === undefined ? {} : { error: rep.error }) };
    }
    return { status: Object.values(statements).every((s) => s.status === 'active') ? 'applied' : 'partial', statements };
  }
}

interface QueryRules {
  readonly rules: readonly QueryRule[];
  readonly good: string | null;
  readonly errors: readonly QueryStatementError[] | null;
}

/**
 * Puts back the `null`s that switch file rules off. IoT Hub deletes a key patched to `null`, so
 * neither the merged document (once `rules` exists) nor any later twin GET keeps them, and the file
 * rule would silently come back. A switched-off file rule therefore stays off until the twin gives
 * that id a definition, or sets `rules` to `null`. A malformed `rules` is left as is (rejected whole).
 */
function keepSwitchOffs(doc: Record<string, unknown>, offs: readonly string[]): Record<string, unknown> {
  if (offs.length === 0 || (doc.rules !== undefined && !isPlainObject(doc.rules))) return doc;
  const rules: Record<string, unknown> = { ...((doc.rules as Record<string, unknown> | undefined) ?? {}) };
  for (const id of offs) if (!Object.prototype.hasOwnProperty.call(rules, id)) rules[id] = null;
  return { ...doc, rules };
}
