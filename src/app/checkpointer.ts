import type { Clock } from '../contracts/clock.js';
import type { Logger } from '../contracts/logger.js';
import type { Timers, TimerHandle } from '../contracts/timers.js';
import type { Checkpoint, CheckpointStore, InputLog, StoredInput } from '../contracts/store.js';
import { isPlainObject } from '../config/mergeDesired.js';
import { decodeMessage } from '../ingest/decodeMessage.js';
import { decodeRecent, type Fingerprint } from '../ingest/redeliveryFilter.js';
import { snapshotFits, type Engine, type RuleSnapshot } from '../rules/engine.js';
import { compileRule, type CompiledRule } from '../rules/compileRule.js';
import { ReplaySchedule } from '../rules/replaySchedule.js';
import { SteppedCheckpoint } from '../store/steppedCheckpoint.js';
import { WALL_STEP_MS, type ConnectedTimeState } from '../time/connectedTime.js';

/** Checkpoint cadence: the input log holds at most this much to replay after a crash. */
export const CHECKPOINT_MS = 5_000;

/** Keys of the checkpoint that are not rules (rule ids cannot start with `$`). */
export const STATE_KEYS = {
  /** The merged desired document. */
  desired: '$desired',
  /** The local simulator's position. */
  sensor: '$sensor',
  /** The redelivery filter's recent fingerprints (src/ingest/redeliveryFilter.ts). */
  recent: '$recent',
  /** Where connected time stood (src/time/connectedTime.ts): downtime does not count as silence. */
  clock: '$clock',
  /** The documents of the rules that ran at the checkpoint: the last good versions after a restart. */
  lastGood: '$lastGood',
  /** The text of the last desired `query` that compiled (null: none). */
  lastGoodQuery: '$lastGoodQuery',
  /** The generations of removed rule ids (src/rules/engine.ts `removedGenerations`): a rule added back after a restart gets new window ids. */
  removedGens: '$removedGens',
} as const;

/** The last checkpoint, decoded: what a start resumes from. */
export interface SavedModule {
  readonly checkpoint: Checkpoint;
  readonly desired: Record<string, unknown>;
  readonly sensor: unknown;
  readonly recent: Array<[Fingerprint, number]> | null;
  readonly clock: ConnectedTimeState | null;
  readonly lastGood: Record<string, unknown>;
  readonly lastGoodQuery: string | null;
  /** What `Engine.removedGenerations` returned (unchecked JSON: `Engine.restoreRemovedGenerations` checks it); null: none saved. */
  readonly removedGens: unknown;
  /** Rule states by rule id. */
  readonly rules: Map<string, RuleSnapshot>;
}

/** Decodes a checkpoint's entries; an unreadable one is logged and skipped (the rest still resume). */
export function readCheckpoint(checkpoint: Checkpoint, log: Logger): SavedModule {
  let desired: Record<string, unknown> = {};
  let sensor: unknown = null;
  let recent: Array<[Fingerprint, number]> | null = null;
  let clock: ConnectedTimeState | null = null;
  let lastGood: Record<string, unknown> = {};
  let lastGoodQuery: string | null = null;
  let removedGens: unknown = null;
  const rules = new Map<string, RuleSnapshot>();
  for (const [key, json] of checkpoint.states) {
    try {
      if (key === STATE_KEYS.desired) desired = JSON.parse(json) as Record<string, unknown>;
      else if (key === STATE_KEYS.sensor) sensor = JSON.parse(json);
      else if (key === STATE_KEYS.recent) recent = decodeRecent(JSON.parse(json));
      else if (key === STATE_KEYS.clock) clock = JSON.parse(json) as ConnectedTimeState;
      else if (key === STATE_KEYS.removedGens) removedGens = JSON.parse(json);
      else if (key === STATE_KEYS.lastGood) lastGood = JSON.parse(json) as Record<string, unknown>;
      else if (key === STATE_KEYS.lastGoodQuery) {
        const q = JSON.parse(json) as unknown;
        lastGoodQuery = typeof q === 'string' ? q : null;
      } else if (key.startsWith('$')) {
        // Not a rule (rule ids cannot start with `$`): a key of another version's, read by none here.
        continue;
      } else {
        const { snap, dropped } = decodeRuleSnapshot(JSON.parse(json));
        if (dropped > 0) log.error({ key, dropped }, 'checkpoint: unreadable group states skipped (those groups start afresh)');
        rules.set(key, snap);
      }
    } catch (err) {
      log.error({ key, err: (err as Error).message }, 'checkpoint: unreadable entry skipped');
    }
  }
  return { checkpoint, desired, sensor, recent, clock, lastGood, lastGoodQuery, removedGens, rules };
}

/**
 * A rule's saved state checked for the shape the engine reads: the engine builds Maps of `groups` and
 * `tombstones` and reads `hash` at once, so a damaged or hand-edited entry there stopped every start
 * (test/unit/app/checkpointer.test.ts, "a damaged rule state"). Not an object or no string `hash`:
 * thrown (the entry is skipped as unreadable). Entries of `groups` and `tombstones` that are not
 * [string, value] pairs are left out and counted; a `gen` or `stateHash` of the wrong type is left out.
 * What a group's value holds is the stage's to judge (src/anomaly/anomalyStage.ts `checkRestored`).
 */
export function decodeRuleSnapshot(v: unknown): { snap: RuleSnapshot; dropped: number } {
  if (!isPlainObject(v) || typeof v.hash !== 'string') throw new Error('not a rule state');
  let dropped = 0;
  const pairs = (x: unknown): Array<[string, unknown]> => {
    if (!Array.isArray(x)) {
      if (x !== undefined) dropped++;
      return [];
    }
    const out: Array<[string, unknown]> = [];
    for (const p of x as unknown[]) {
      if (Array.isArray(p) && p.length === 2 && typeof p[0] === 'string') out.push(p as [string, unknown]);
      else dropped++;
    }
    return out;
  };
  const snap: Record<string, unknown> = { ...v, groups: pairs(v.groups) };
  if (v.tombstones !== undefined) snap.tombstones = pairs(v.tombstones);
  if (v.stateHash !== undefined && typeof v.stateHash !== 'string') delete snap.stateHash;
  if (v.gen !== undefined && !(Number.isInteger(v.gen) && (v.gen as number) >= 0)) delete snap.gen;
  return { snap: snap as unknown as RuleSnapshot, dropped };
}

/** The engine as the replay and the checkpoint use it. */
export type CheckpointedEngine = Pick<Engine, 'restore' | 'setRules' | 'process' | 'snapshot' | 'snapshotRule'>;

export interface ReplayOptions {
  readonly saved: SavedModule;
  readonly inputs: Pick<InputLog, 'readInputsAfter'>;
  readonly engine: CheckpointedEngine;
  /** The rules of this start (Reconciler.reconcile at start-up). */
  readonly startRules: readonly CompiledRule[];
  /** Processing time (connected time): read for an input when the checkpoint says nothing of it, advanced to the last replayed input. */
  readonly time: { now(): number; advanceTo(t: number): void; reanchor?(at: number, wall: number): void };
  /** The wall clock. */
  readonly wall: Clock;
  /** Each logged input, before the engine gets it (the redelivery filter and the simulator record it). */
  readonly onLogged?: (rec: StoredInput) => void;
  /** Hands this start's rules over once the tail is replayed (the engine and the lag probe). */
  readonly handOver: (rules: readonly CompiledRule[]) => void;
  readonly log: Logger;
}

/** What a replay did. */
export interface ReplayResult {
  /** The last input seq the engine's state reflects. */
  readonly lastSeq: number;
  readonly replayed: number;
  /** The rules that processed the tail. */
  readonly tailRules: readonly CompiledRule[];
  /**
   * True when the log from here on is processed by rules other than the checkpoint's (a first start,
   * or rules changed across the restart): the checkpoint must then be saved at once, so that the next
   * replay rebuilds a tail's rules from it.
   */
  readonly mustSave: boolean;
}

/**
 * The inputs logged after the checkpoint, replayed into the rules that processed them live: those the
 * checkpoint saved, rebuilt from the definition saved with each state (`RuleSnapshot.def`, else the
 * `$lastGood` document). The rule set is constant over one tail: a checkpoint is saved at every twin
 * change and at a start whose rules differ from the checkpoint's. Replaying the tail into the rules of
 * THIS start instead would put events a changed rule's old definition took into the new one. The
 * rules of this start are applied after the replay, like a live change there (docs/rules.md "Changing
 * a rule through the twin"; test/oracle/moduleDifferential.test.ts,
 * test/integration/module/restartRuleChange.test.ts). A state
 * whose definition cannot be rebuilt (an older checkpoint, a rule that no longer compiles) is
 * replayed into this start's rule of the same id when it fits it, and otherwise finished under its own
 * definition at the first `setRules`. With no checkpoint at all (a first start), nothing ran before:
 * this start's rules take the log.
 */
export function replayTail(opts: ReplayOptions): ReplayResult {
  const { saved, engine, startRules, time, log } = opts;
  const { checkpoint } = saved;
  const restored = new Map(saved.rules);
  const tailRules = tailRulesOf(saved, startRules);
  // A rule saved by a stepped checkpoint after the truncation point skips the inputs its state reflects.
  const schedule = new ReplaySchedule(tailRules, (r) => (snapshotFits(restored.get(r.id), r) ? (checkpoint.aheadTo.get(r.id) ?? 0) : 0));
  // The saved states of rules that join the replay later (saved ahead of the checkpoint): handed to the
  // engine when they join, so that every state the engine holds at its first `setRules` is either used
  // or belongs to a rule that is gone or changed (Engine.restore: those finish under their old definition).
  const aheadSnapshots = new Map<string, RuleSnapshot>();
  for (const r of tailRules) {
    if ((checkpoint.aheadTo.get(r.id) ?? 0) > 0 && snapshotFits(restored.get(r.id), r)) {
      aheadSnapshots.set(r.id, restored.get(r.id)!);
      restored.delete(r.id);
    }
  }
  engine.restore(restored);

  // The connected time of an input logged after the checkpoint: the checkpoint's connected time plus
  // the time since it, when connected time was running then (a pause after the checkpoint is not
  // known: the replayed time is then later than it was, never earlier). So a replayed group's last
  // arrival is (nearly) what a crash-free run had, and so is the time of a `missing` it raises.
  // Live, connected time runs on `steadyClock`: the wall clock's advance, but where it differs from the
  // monotonic clock's by more than WALL_STEP_MS (a step: NTP's first sync on a device without a
  // real-time clock), the monotonic one. The replay does the same from one input to the next with the
  // input clock each was logged with (`elapsed`, src/ingest/redeliveryFilter.ts) and the checkpoint's
  // reading of it: by the wall clock alone, a step between the checkpoint and a crash moved the inputs
  // after it by the step, and the silence that never was flushed windows and raised `missing` at the
  // restart (test/unit/app/replayClockStep.test.ts). Checkpoints and input logs of earlier versions have
  // no `elapsed`: the wall clock since the checkpoint, clamped to the present (local mode's simulated
  // sensor stamps arrivals on its own, faster clock), as before.
  const cs = saved.clock;
  const timed = cs !== null && cs.running && Number.isFinite(cs.wall) && Number.isFinite(cs.now);
  const wallNow = opts.wall.now();
  let from = { wall: timed ? cs.wall : 0, at: timed ? cs.now : 0 };
  let prev = { arrival: from.wall, elapsed: timed ? cs.elapsed : undefined, at: from.at };
  const replayTime = (rec: StoredInput): number => {
    if (!timed) return time.now();
    const { arrival, elapsed } = rec;
    let at: number;
    if (Number.isFinite(elapsed) && Number.isFinite(prev.elapsed)) {
      const dm = elapsed! - prev.elapsed!;
      const dw = arrival - prev.arrival;
      const stepped = Math.abs(dw - dm) > WALL_STEP_MS;
      at = prev.at + Math.max(0, stepped ? Math.round(dm) : dw);
      from = { wall: arrival, at };
      // Live, an alert's wall-clock instant is read on the clock of the moment it is decided
      // (ConnectedTime.wallAt of the running stretch), the stepped one after a step; the replay moves
      // the stretch's resume point with it, so a `missing` due inside the replayed inputs and raised at
      // the restart carries the time (and messageId) the run that never crashed gave it
      // (test/unit/app/replayClockStep.test.ts, "the deadline inside the replayed inputs").
      if (stepped) time.reanchor?.(at, arrival);
    } else at = from.at + Math.max(0, Math.min(arrival, wallNow) - from.wall);
    prev = { arrival, elapsed, at };
    return at;
  };
  let lastSeq = checkpoint.uptoInputSeq;
  let replayed = 0;
  let replayedTo = time.now();
  for (const rec of opts.inputs.readInputsAfter(checkpoint.uptoInputSeq)) {
    opts.onLogged?.(rec);
    const taking = schedule.before(rec.seq);
    if (taking) {
      // A rule saved ahead of the checkpoint gets its saved state when it joins the replay.
      for (const r of taking) {
        const snap = aheadSnapshots.get(r.id);
        if (snap !== undefined) engine.restore(new Map([[r.id, snap]]));
        aheadSnapshots.delete(r.id);
      }
      engine.setRules(taking);
    }
    const { events } = decodeMessage(rec.body, rec);
    const at = replayTime(rec);
    if (at > replayedTo) replayedTo = at;
    engine.process(events, at);
    lastSeq = rec.seq;
    replayed++;
  }
  for (const [id, snap] of aheadSnapshots) engine.restore(new Map([[id, snap]]));
  engine.setRules(schedule.all());
  time.advanceTo(replayedTo);
  // Now the rules of this start, as a live change after the tail: a changed or removed rule emits its
  // open windows and clears its alerts under its old definition.
  opts.handOver(startRules);
  for (const r of tailRules) {
    const now = startRules.find((x) => x.id === r.id);
    if (now !== undefined && now.stateHash === r.stateHash) continue;
    log.warn({ rule: r.id, reason: now === undefined ? 'rule-removed' : 'rule-changed' }, 'checkpoint: the saved state of a rule no longer fits its definition; its open windows were emitted and its alerts cleared under the old definition');
  }
  if (replayed > 0) log.info({ replayed, fromSeq: checkpoint.uptoInputSeq }, 'replayed inputs logged after the last checkpoint');
  return { lastSeq, replayed, tailRules, mustSave: checkpoint.states.size === 0 || !sameRules(tailRules, startRules) };
}

/** The rules that processed the logged tail live (see replayTail). */
function tailRulesOf(saved: SavedModule, startRules: readonly CompiledRule[]): readonly CompiledRule[] {
  if (saved.checkpoint.states.size === 0) return startRules;
  const out: CompiledRule[] = [];
  for (const [id, snap] of saved.rules) {
    const doc = snap.def ?? (isPlainObject(saved.lastGood) ? saved.lastGood[id] : undefined);
    const compiled = doc === undefined ? null : compileRule(id, doc);
    if (compiled !== null && compiled.ok && snapshotFits(snap, compiled.rule)) {
      out.push(compiled.rule);
      continue;
    }
    const now = startRules.find((r) => r.id === id);
    if (now !== undefined && snapshotFits(snap, now)) out.push(now);
  }
  return out;
}

const sameRules = (a: readonly CompiledRule[], b: readonly CompiledRule[]): boolean => a.length === b.length && a.every((r) => b.some((x) => x.id === r.id && x.hash === r.hash));

export interface CheckpointerOptions {
  readonly store: CheckpointStore;
  readonly engine: Pick<Engine, 'snapshot' | 'snapshotRule'>;
  /** The ids of the running rules, saved one per step. */
  readonly ruleIds: () => readonly string[];
  /** The states that are not rules (STATE_KEYS), saved with every commit. */
  readonly otherStates: () => Map<string, string>;
  /**
   * Makes the outbox whole for the engine's state: the outputs of every input a checkpoint covers must
   * be in the outbox before the log is cut (src/forward/outputBatcher.ts).
   */
  readonly commitOutputs: () => void;
  /** The last input seq the engine's state reflects at start (ReplayResult.lastSeq). */
  readonly position: number;
  readonly timers: Timers;
  readonly log: Logger;
  /** Default CHECKPOINT_MS. */
  readonly intervalMs?: number;
}

/**
 * Saves the engine's state and the module's small states with the input-log position they reflect
 * (docs/contract.md section 8): every `intervalMs` one rule per event-loop turn (SteppedCheckpoint),
 * and whole in one turn on a rules change and at shutdown (`saveNow`).
 */
export class Checkpointer {
  private seq: number;
  private readonly stepped: SteppedCheckpoint;
  private timer: TimerHandle | null = null;

  constructor(private readonly opts: CheckpointerOptions) {
    this.seq = opts.position;
    this.stepped = new SteppedCheckpoint(
      opts.store,
      {
        position: () => {
          opts.commitOutputs();
          return this.seq;
        },
        keys: opts.ruleIds,
        serialise: (id) => {
          const snap = opts.engine.snapshotRule(id);
          return snap === undefined ? undefined : JSON.stringify(snap);
        },
        commitStates: opts.otherStates,
      },
      { log: opts.log, defer: (fn) => opts.timers.setImmediate(fn) },
    );
  }

  /** The last input seq the engine's state reflects: set by the input path after each input is logged. */
  get position(): number {
    return this.seq;
  }

  set position(seq: number) {
    this.seq = seq;
  }

  /** True while a stepped round is in progress. */
  get stepping(): boolean {
    return this.stepped.running;
  }

  /** The whole checkpoint in this turn: on a rules change (the new set starts here) and at shutdown. */
  saveNow(): void {
    this.stepped.cancel();
    this.opts.commitOutputs();
    const states = this.opts.otherStates();
    for (const [id, snap] of this.opts.engine.snapshot()) states.set(id, JSON.stringify(snap));
    if (!this.opts.store.saveCheckpoint(states, this.seq)) this.opts.log.warn('checkpoint not saved: the store is degraded');
  }

  /** Starts the periodic stepped checkpoint. */
  start(): void {
    if (this.timer !== null) return;
    this.timer = this.opts.timers.setInterval(() => this.stepped.start(), this.opts.intervalMs ?? CHECKPOINT_MS);
    this.timer.unref();
  }

  /** Stops the periodic checkpoint; a round in progress is abandoned (saveNow writes a whole one). */
  stop(): void {
    if (this.timer !== null) this.opts.timers.clearInterval(this.timer);
    this.timer = null;
  }
}
