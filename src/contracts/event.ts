/** One decoded input element: a JSON object plus who sent it and when it arrived. */
export interface IngestEvent {
  /** The decoded JSON object (an element of a batch stands alone). Own properties only are ever read. */
  readonly body: Record<string, unknown>;
  /** edgeHub's `$.cdid`, or "local". */
  readonly deviceId: string;
  /** edgeHub's `$.cmid`, or "local". */
  readonly moduleId: string;
  /** Input name the message arrived on (default `telemetry`). */
  readonly input: string;
  /** Processing time of arrival, ms since epoch, from the injected clock. */
  readonly arrival: number;
}

/**
 * Fixed rejection reasons. Every rejected input or per-rule rejection is counted under one of these
 * (docs/contract.md section 3). Never thrown into a stream.
 */
export const REJECT_REASONS = [
  'not-json',
  'not-utf8',
  'not-object',
  'too-large',
  'too-deep',
  'bad-timestamp',
  'missing-field',
  'not-a-number',
  'too-late',
  'expression-error',
  'detector-error',
  'too-many-groups',
  /** An input edgeHub delivered again because its PUBACK was lost in a crash or a dropped link (src/ingest/redeliveryFilter.ts). */
  'redelivered',
  /** Event time more than the rule's `maxClockSkew` ahead of the wall-clock arrival (a wrong device clock: docs/contract.md section 5). */
  'future-timestamp',
  /** The event lands in a window its group emitted before the group was evicted at `maxGroups` (src/windows/groupedWindowOperator.ts). */
  'evicted',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** A rejection as data: the reason, an optional rule it applies to, and a short human detail. */
export interface Reject {
  readonly reason: RejectReason;
  readonly rule?: string;
  readonly detail?: string;
}

/** Identity and body values an expression may read: `$deviceId`, `$moduleId` and dotted body paths. */
export interface EvalContext {
  readonly body: Record<string, unknown>;
  readonly deviceId: string;
  readonly moduleId: string;
}
