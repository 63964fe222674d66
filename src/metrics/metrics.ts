import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, type Clock } from '../contracts/clock.js';
import { REJECT_REASONS } from '../contracts/event.js';
import type { DropCounts, DropReason } from '../contracts/store.js';

/**
 * Every metric name eddy exposes, defined once (docs/contract.md section 10). Integration tests and dashboards refer to
 * these constants, never to string literals of their own.
 */
export const METRIC_NAMES = {
  received: 'eddy_messages_received_total',
  rejected: 'eddy_messages_rejected_total',
  buildInfo: 'eddy_build_info',
  outboxDropped: 'eddy_outbox_dropped_total',
  outboxOldestAge: 'eddy_outbox_oldest_age_seconds',
  windowResults: 'eddy_window_results_total',
  alerts: 'eddy_alerts_total',
  outboxPending: 'eddy_outbox_pending',
  outboxBytes: 'eddy_outbox_bytes',
  upstreamSent: 'eddy_upstream_sent_total',
  upstreamFailures: 'eddy_upstream_failures_total',
  ruleGroups: 'eddy_rule_groups',
  groupsEvicted: 'eddy_groups_evicted_total',
  detectorResets: 'eddy_detector_resets_total',
  eventLag: 'eddy_event_lag_seconds',
  outboxCommits: 'eddy_outbox_commits_total',
  outboxRows: 'eddy_outbox_rows_written_total',
  outboxConflicts: 'eddy_outbox_conflicts_total',
  futureTimestamps: 'eddy_future_timestamps_total',
} as const;

/**
 * Most devices `getStats` and `eddy_future_timestamps_total{device}` count `future-timestamp`
 * rejections for by name; the rest share {@link OTHER_DEVICES}. A wrong clock is a fault of a few
 * devices, so the label stays small; the bound keeps a fleet of wrong clocks from making the series
 * count unbounded (the reason's total is `eddy_messages_rejected_total{reason="future-timestamp"}`).
 */
export const MAX_FUTURE_TIMESTAMP_DEVICES = 1_000;
/** The getStats key of the devices past {@link MAX_FUTURE_TIMESTAMP_DEVICES}. */
export const OTHER_DEVICES = '(other devices)';

/** The outbox's write totals since it opened, read at scrape time (see {@link Metrics.outboxWrites}). */
export interface OutboxWriteTotals {
  /** Commits by what they wrote: appended rows (the outputs of an event-loop turn), removed rows (a forwarder pass's PUBACKs). */
  readonly commits: { readonly append: number; readonly remove: number };
  readonly appended: number;
  readonly removed: number;
}

const NO_WRITES: OutboxWriteTotals = { commits: { append: 0, remove: 0 }, appended: 0, removed: 0 };

/** What the outbox reports at scrape time for the drop counter and the oldest-age gauge (the store's `stats()`). */
export interface OutboxState {
  /** createdAt of the oldest pending record (ISO), or null when the outbox is empty. */
  readonly oldest: string | null;
  /** Cumulative drops by reason and kind. */
  readonly drops: DropCounts;
}

const DROP_REASONS: readonly DropReason[] = ['budget', 'ttl'];
const DROP_KINDS = ['summary', 'alert'] as const;

/**
 * Buckets of `eddy_event_lag_seconds` (arrival time minus event time). Edge devices batch, buffer
 * while offline and replay, so the range runs from 10 ms to a day.
 */
export const EVENT_LAG_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 21600, 86400];

/** An alert state as counted in `eddy_alerts_total{state}` (docs/contract.md section 4). */
export type AlertState = 'raised' | 'cleared';

/** The counters part of the `getStats` direct method's answer (docs/contract.md section 7). */
export interface StatsSnapshot {
  readonly received: number;
  readonly rejected: Record<string, number>;
  /** `emitted` counts every output message of the rule: window results and alerts. */
  readonly rules: Record<string, { emitted: number }>;
  readonly outbox: { pending: number; bytes: number };
  readonly uptimeSeconds: number;
  /** `future-timestamp` rejections by device (docs/contract.md section 5; bounded: {@link MAX_FUTURE_TIMESTAMP_DEVICES}). */
  readonly futureTimestamps: Record<string, number>;
  /** Appends whose messageId the outbox held with a different body (must stay 0). */
  readonly outboxConflicts: number;
}

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /**
   * Adds prom-client's default process and Node.js metrics (CPU, RSS, heap, event loop lag, GC) under
   * their standard names (`process_cpu_user_seconds_total`, `nodejs_heap_size_used_bytes`, ...), which
   * stock Node.js dashboards expect. Default true.
   */
  readonly processMetrics?: boolean;
  /** eddy's version, the `version` label of `eddy_build_info` (package.json's). Default "unknown". */
  readonly version?: string;
  /** Start of uptime. Default: the system clock. */
  readonly clock?: Clock;
}

interface Inc {
  inc(n?: number): void;
}

/**
 * One prom-client label child per label value: the child keeps its labels object, so the hot path
 * does one Map lookup and allocates nothing. Entries go when a rule is forgotten.
 */
class ChildCache<C> {
  private readonly cache = new Map<string, C>();
  constructor(private readonly make: (label: string) => C) {}
  get(label: string): C {
    let child = this.cache.get(label);
    if (child === undefined) {
      child = this.make(label);
      this.cache.set(label, child);
    }
    return child;
  }
  delete(label: string): void {
    this.cache.delete(label);
  }
}

/** prom-client throws on a negative or non-finite increment; a count from a bug must not end a stream. */
function countable(n: number): boolean {
  return Number.isFinite(n) && n > 0;
}

/** Adds `n` under `key` in a plain record (own keys only: rule ids and reasons are data). */
function bump(map: Map<string, number>, key: string, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

/**
 * eddy's metrics: one registry, the fixed names above, and typed methods the stages call.
 * Methods are cheap enough for the per-event path (cached label children, no allocation).
 * Each instance owns its registry, so tests can create several.
 */
export class Metrics {
  /** The registry `/metrics` serialises. */
  readonly registry: Registry;

  private readonly receivedC: Counter<'input'>;
  private readonly rejectedC: Counter<'reason'>;
  private readonly windowResultsC: Counter<'rule'>;
  private readonly alertsC: Counter<'rule' | 'state'>;
  private readonly outboxPendingG: Gauge;
  private readonly outboxBytesG: Gauge;
  private readonly upstreamSentC: Counter;
  private readonly upstreamFailuresC: Counter;
  private readonly ruleGroupsG: Gauge<'rule'>;
  private readonly groupsEvictedC: Counter<'rule'>;
  private readonly detectorResetsC: Counter<'rule'>;
  private readonly eventLagH: Histogram;
  private readonly outboxCommitsC: Counter<'op'>;
  private readonly outboxRowsC: Counter<'op'>;
  private readonly outboxConflictsC: Counter;
  private readonly futureC: Counter<'device'>;
  private readonly futureByDevice = new Map<string, number>();
  private outboxConflictTotal = 0;
  private outboxWriteSource: (() => OutboxWriteTotals) | null = null;
  private readonly outboxDroppedC: Counter<'reason' | 'kind'>;
  private outboxStateSource: (() => OutboxState) | null = null;
  /** The drop totals the counter shows so far (a scrape adds what the source gained since). */
  private dropsShown: DropCounts | null = null;
  /** What the outbox counters show so far: a scrape adds what the source gained since. */
  private outboxWritesShown = NO_WRITES;

  /** Per input name: [received so far, already added to the counter]. */
  private readonly receivedByInput = new Map<string, [number, number]>();
  private readonly rejectedChild: ChildCache<Inc>;
  private readonly windowChild: ChildCache<Inc>;
  /** Keyed by `${rule}\u0000${state}`: rule ids cannot hold a NUL (docs/contract.md section 5). */
  private readonly alertChild: ChildCache<Inc>;

  // Plain numbers for getStats: prom-client's own getters are async and allocate.
  private receivedTotal = 0;
  private readonly rejectedByReason = new Map<string, number>();
  private readonly emittedByRule = new Map<string, number>();
  private readonly outboxNow = { pending: 0, bytes: 0 };
  private readonly clock: Clock;
  private readonly startedAt: number;

  constructor(options: MetricsOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.startedAt = this.clock.now();
    const registers = [(this.registry = new Registry())];
    // Counted in plain numbers per input name and added to the counter at scrape time (collect):
    // prom-client hashes the labels on every `inc`, even through a `labels()` child (bench/profileEngine.ts).
    const collectReceived = (): void => this.collectReceived();
    this.receivedC = new Counter({ name: METRIC_NAMES.received, help: 'Input messages received (a batch counts each element), by input name.', labelNames: ['input'], registers, collect: collectReceived });
    this.rejectedC = new Counter({ name: METRIC_NAMES.rejected, help: 'Input messages or elements rejected, by fixed reason (docs/contract.md section 3).', labelNames: ['reason'], registers });
    this.windowResultsC = new Counter({ name: METRIC_NAMES.windowResults, help: 'Window results (summaries) emitted, by rule.', labelNames: ['rule'], registers });
    this.alertsC = new Counter({ name: METRIC_NAMES.alerts, help: 'Alerts emitted, by rule and state (raised, cleared).', labelNames: ['rule', 'state'], registers });
    this.outboxPendingG = new Gauge({ name: METRIC_NAMES.outboxPending, help: 'Output messages waiting in the outbox.', registers });
    this.outboxBytesG = new Gauge({ name: METRIC_NAMES.outboxBytes, help: 'Bytes of output waiting in the outbox.', registers });
    this.upstreamSentC = new Counter({ name: METRIC_NAMES.upstreamSent, help: 'Output messages acknowledged by edgeHub (PUBACK).', registers });
    this.upstreamFailuresC = new Counter({ name: METRIC_NAMES.upstreamFailures, help: 'Failed attempts to send output to edgeHub.', registers });
    this.ruleGroupsG = new Gauge({ name: METRIC_NAMES.ruleGroups, help: 'Live groups (open windows or detector state), by rule.', labelNames: ['rule'], registers });
    this.groupsEvictedC = new Counter({ name: METRIC_NAMES.groupsEvicted, help: 'Idle groups closed early because a rule reached its group limit, by rule.', labelNames: ['rule'], registers });
    this.detectorResetsC = new Counter({ name: METRIC_NAMES.detectorResets, help: 'Anomaly groups whose detector state was unusable (a damaged checkpoint) and started afresh, by rule.', labelNames: ['rule'], registers });
    this.eventLagH = new Histogram({ name: METRIC_NAMES.eventLag, help: 'Arrival time minus event time of accepted events, in seconds.', buckets: EVENT_LAG_BUCKETS, registers });
    // Read from the store at scrape time; both collect (a scrape of either alone is current too).
    const collect = (): void => this.collectOutboxWrites();
    this.outboxCommitsC = new Counter({ name: METRIC_NAMES.outboxCommits, help: 'SQLite transactions that wrote the outbox, by op: append (the outputs of an event-loop turn), remove (PUBACKed records).', labelNames: ['op'], registers, collect });
    this.outboxRowsC = new Counter({ name: METRIC_NAMES.outboxRows, help: 'Outbox rows written, by op (append, remove); over the commits: rows per commit.', labelNames: ['op'], registers, collect });
    // Outbox drops and the oldest record's age are read from the store at scrape time (outboxState).
    this.outboxDroppedC = new Counter({ name: METRIC_NAMES.outboxDropped, help: 'Output messages dropped from the outbox unsent, by reason (budget: over EDDY_STORE_MAX_MB / store.maxMB; ttl: older than store.ttlHours) and kind (summary, alert).', labelNames: ['reason', 'kind'], registers, collect: () => this.collectDrops() });
    const oldestAge = (): number => this.oldestAgeSeconds();
    new Gauge({ name: METRIC_NAMES.outboxOldestAge, help: 'Age in seconds of the oldest output message waiting in the outbox; 0 when it is empty.', registers, collect() { this.set(oldestAge()); } });
    new Gauge({ name: METRIC_NAMES.buildInfo, help: 'Always 1; the labels name the eddy version and the Node.js version running it.', labelNames: ['version', 'node'], registers }).set({ version: options.version ?? 'unknown', node: process.version }, 1);
    for (const reason of DROP_REASONS) for (const kind of DROP_KINDS) this.outboxDroppedC.inc({ reason, kind }, 0);
    // Every rejection reason's series exists from the start at 0, so rate() and alerts see a 0 -> 1 step.
    for (const reason of REJECT_REASONS) this.rejectedC.inc({ reason }, 0);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.outboxConflictsC = new Counter({ name: METRIC_NAMES.outboxConflicts, help: 'Output messages whose messageId the outbox already held with a different body (kept out and logged at error; must stay 0).', registers });
    this.futureC = new Counter({ name: METRIC_NAMES.futureTimestamps, help: 'Events a rule rejected as future-timestamp (stamped more than its maxClockSkew ahead of their arrival), by device (the first 1,000 devices by name, the rest as "(other devices)").', labelNames: ['device'], registers });

    this.rejectedChild = new ChildCache((reason) => this.rejectedC.labels(reason));
    this.windowChild = new ChildCache((rule) => this.windowResultsC.labels(rule));
    this.alertChild = new ChildCache((key) => {
      const [rule, state] = key.split('\u0000') as [string, string];
      return this.alertsC.labels(rule, state);
    });
  }

  /** `n` input messages (or batch elements) arrived on `input`. */
  received(input: string, n = 1): void {
    if (!countable(n)) return;
    const c = this.receivedByInput.get(input);
    if (c === undefined) this.receivedByInput.set(input, [n, 0]);
    else c[0] += n;
    this.receivedTotal += n;
  }

  /** Received totals by input name (the live page's input rates). */
  receivedByInputTotals(): Map<string, number> {
    return new Map([...this.receivedByInput].map(([input, c]) => [input, c[0]]));
  }

  /** Output messages by rule, the totals of getStats `rules.*.emitted` (the live page's output rates). */
  emittedByRuleTotals(): Map<string, number> {
    return new Map(this.emittedByRule);
  }

  /** At scrape time: what each input received since the last scrape goes into the counter. */
  private collectReceived(): void {
    for (const [input, c] of this.receivedByInput) {
      if (c[0] === c[1]) continue;
      this.receivedC.inc({ input }, c[0] - c[1]);
      c[1] = c[0];
    }
  }

  /** `n` inputs were rejected for `reason` (a fixed reason, never free text: it is a label). */
  rejected(reason: string, n = 1): void {
    if (!countable(n)) return;
    this.rejectedChild.get(reason).inc(n);
    bump(this.rejectedByReason, reason, n);
  }

  /**
   * One event of `deviceId` was rejected as `future-timestamp` by a rule (the reason's total is counted
   * by {@link rejected}); getStats shows it per device.
   */
  futureTimestamp(deviceId: string): void {
    const m = this.futureByDevice;
    const key = m.has(deviceId) || m.size < MAX_FUTURE_TIMESTAMP_DEVICES ? deviceId : OTHER_DEVICES;
    m.set(key, (m.get(key) ?? 0) + 1);
    this.futureC.inc({ device: key });
  }

  /** `n` outputs carried a messageId the outbox held with a different body. */
  outboxConflicts(n = 1): void {
    if (!countable(n)) return;
    this.outboxConflictsC.inc(n);
    this.outboxConflictTotal += n;
  }

  /** Rule `rule` emitted `n` window results. */
  windowResults(rule: string, n = 1): void {
    if (!countable(n)) return;
    this.windowChild.get(rule).inc(n);
    bump(this.emittedByRule, rule, n);
  }

  /** Rule `rule` emitted an alert in `state`. */
  alert(rule: string, state: AlertState): void {
    this.alertChild.get(`${rule}\u0000${state}`).inc();
    bump(this.emittedByRule, rule, 1);
  }

  /** The outbox now holds `pending` messages of `bytes` bytes. */
  outbox(stats: { readonly pending: number; readonly bytes: number }): void {
    if (!Number.isFinite(stats.pending) || !Number.isFinite(stats.bytes)) return;
    this.outboxPendingG.set(stats.pending);
    this.outboxBytesG.set(stats.bytes);
    this.outboxNow.pending = stats.pending;
    this.outboxNow.bytes = stats.bytes;
  }

  /** edgeHub acknowledged `n` output messages. */
  upstreamSent(n = 1): void {
    if (countable(n)) this.upstreamSentC.inc(n);
  }

  /** A send to edgeHub failed (counted per attempt). */
  upstreamFailure(n = 1): void {
    if (countable(n)) this.upstreamFailuresC.inc(n);
  }

  /** Rule `rule` now holds `groups` live groups. */
  ruleGroups(rule: string, groups: number): void {
    if (Number.isFinite(groups)) this.ruleGroupsG.set({ rule }, groups);
  }

  /** Rule `rule` closed `n` idle groups early at its group limit. */
  groupsEvicted(rule: string, n = 1): void {
    if (countable(n)) this.groupsEvictedC.inc({ rule }, n);
  }

  /** A group of anomaly rule `rule` started afresh because its detector could not use its state (src/anomaly/anomalyStage.ts `retryFresh`). */
  detectorReset(rule: string): void {
    this.detectorResetsC.inc({ rule });
  }

  /**
   * Where the outbox write counters come from: the store counts its own commits (a counter call per
   * transaction would cost more than reading totals once per scrape).
   */
  outboxWrites(source: () => OutboxWriteTotals): void {
    this.outboxWriteSource = source;
    this.outboxWritesShown = NO_WRITES;
  }

  private collectOutboxWrites(): void {
    if (!this.outboxWriteSource) return;
    const now = this.outboxWriteSource();
    const shown = this.outboxWritesShown;
    for (const op of ['append', 'remove'] as const) {
      const gain = now.commits[op] - shown.commits[op];
      if (countable(gain)) this.outboxCommitsC.inc({ op }, gain);
    }
    if (countable(now.appended - shown.appended)) this.outboxRowsC.inc({ op: 'append' }, now.appended - shown.appended);
    if (countable(now.removed - shown.removed)) this.outboxRowsC.inc({ op: 'remove' }, now.removed - shown.removed);
    this.outboxWritesShown = { commits: { ...now.commits }, appended: now.appended, removed: now.removed };
  }

  /**
   * Where the outbox drop counter and the oldest-age gauge come from, read at each scrape (the
   * store's `stats()`), so the age is current at the moment of the scrape.
   */
  outboxState(source: () => OutboxState): void {
    this.outboxStateSource = source;
    this.dropsShown = null;
  }

  private collectDrops(): void {
    if (!this.outboxStateSource) return;
    const now = this.outboxStateSource().drops;
    const shown = this.dropsShown;
    for (const reason of DROP_REASONS) {
      for (const kind of DROP_KINDS) {
        // A total below the one shown (a store reopened after damage) starts a new baseline.
        const gain = now[reason][kind] - (shown ? shown[reason][kind] : 0);
        if (countable(gain)) this.outboxDroppedC.inc({ reason, kind }, gain);
      }
    }
    this.dropsShown = { budget: { ...now.budget }, ttl: { ...now.ttl } };
  }

  private oldestAgeSeconds(): number {
    const oldest = this.outboxStateSource?.().oldest ?? null;
    const t = oldest === null ? Number.NaN : Date.parse(oldest);
    return Number.isFinite(t) ? Math.max(0, (this.clock.now() - t) / 1000) : 0;
  }

  /**
   * An accepted event arrived `seconds` after its event time (negative values, clock skew, count as
   * 0). Fed by src/rules/eventLagProbe.ts for every decoded input event with a parsable timestamp.
   */
  eventLag(seconds: number): void {
    if (Number.isFinite(seconds)) this.eventLagH.observe(seconds > 0 ? seconds : 0);
  }

  /**
   * Drops the series of a rule that no longer exists (deleted through the twin), so label
   * cardinality follows the live rule set. Its getStats entry goes too.
   */
  forgetRule(rule: string): void {
    this.windowResultsC.remove(rule);
    for (const state of ['raised', 'cleared'] as const) this.alertsC.remove(rule, state);
    this.ruleGroupsG.remove(rule);
    this.groupsEvictedC.remove(rule);
    this.detectorResetsC.remove(rule);
    this.emittedByRule.delete(rule);
    this.windowChild.delete(rule);
    for (const state of ['raised', 'cleared']) this.alertChild.delete(`${rule}\u0000${state}`);
  }

  /** The counters of the `getStats` direct method (docs/contract.md section 7). */
  snapshot(): StatsSnapshot {
    return {
      received: this.receivedTotal,
      rejected: Object.fromEntries(this.rejectedByReason),
      rules: Object.fromEntries([...this.emittedByRule].map(([id, emitted]) => [id, { emitted }])),
      outbox: { ...this.outboxNow },
      uptimeSeconds: Math.max(0, Math.floor((this.clock.now() - this.startedAt) / 1000)),
      futureTimestamps: Object.fromEntries(this.futureByDevice),
      outboxConflicts: this.outboxConflictTotal,
    };
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A new {@link Metrics} with its own registry. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  return new Metrics(options);
}
