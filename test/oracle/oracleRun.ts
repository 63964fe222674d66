/**
 * The shape of one run, shared by the oracle (test/oracle/oracle.ts), the engine driver
 * (test/oracle/engineDriver.ts) and the schedule generator (test/oracle/scheduleArbitrary.ts).
 * Plain data only: a run written into a regression test is a JSON literal.
 *
 * Two clocks (docs/contract.md section 5):
 *  - `wall` is the wall clock: what an event's arrival is stamped with, and what `maxClockSkew` is
 *    measured against;
 *  - `connected` is the time during which inputs could arrive (the module connected to edgeHub): the
 *    only clock processing-time decisions about silence (idle flush, `missing`) may use. A link outage
 *    moves `wall` and not `connected`.
 */

/** One input element as edgeHub delivers it: the sending device and the JSON object body. */
export interface RunEvent {
  readonly deviceId: string;
  readonly body: Record<string, unknown>;
}

/** A rule set as the twin or the rules file holds it: `{ ruleId: ruleDocument }`. */
export type RunRules = Readonly<Record<string, Record<string, unknown>>>;

export type RunStep =
  /** One input message (a batch when it holds more than one element) arrives at `wall` / `connected`. */
  | { readonly kind: 'deliver'; readonly wall: number; readonly connected: number; readonly events: readonly RunEvent[] }
  /** Connected time passes (idle timers may fire); the clocks read `wall` / `connected` afterwards. */
  | { readonly kind: 'advance'; readonly wall: number; readonly connected: number }
  /** The link is down: wall time passes, connected time does not. */
  | { readonly kind: 'outage'; readonly wall: number; readonly connected: number }
  /** A twin patch replaces the rule set without a restart. */
  | { readonly kind: 'setRules'; readonly rules: RunRules }
  /** The module stops (state checkpointed) and starts again, with `rules` from then on. */
  | { readonly kind: 'restart'; readonly rules: RunRules };

export interface Run {
  readonly startWall: number;
  readonly startConnected: number;
  readonly rules: RunRules;
  readonly steps: readonly RunStep[];
}
