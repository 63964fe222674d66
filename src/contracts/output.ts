import type { GroupValues } from './window.js';
import type { WindowType } from './rule.js';

/** Body of a `summaries` message (docs/contract.md section 4). */
export interface SummaryBody {
  rule: string;
  group: GroupValues;
  window: { type: WindowType; start: string; end: string; size?: number };
  count: number;
  values: Record<string, number | null>;
  revision: number;
}

/** Body of an `alerts` message (docs/contract.md section 4). */
export interface AlertBody {
  rule: string;
  group: GroupValues;
  state: 'raised' | 'cleared';
  time: string;
  value: number | null;
  score: number;
  detector: string;
  kind: string;
}

/** Body of a row-shaped summary (a rule with `row`: docs/contract.md section 4): the flat row, column by column. */
export type RowBody = Record<string, string | number | boolean | null>;

/**
 * Body of a select rule's output (docs/rules.md "Select rules"): its row, column by column, or the
 * event's own body passed through (ASA's `SELECT *`), so any JSON value.
 */
export type EventRowBody = Record<string, unknown>;

/** One output message as the engine creates it, before it is stored and sent. */
export interface OutputMessage {
  /** Deterministic messageId: the same window (or alert) always gets the same id. */
  readonly id: string;
  /** edgeHub output name (`summaries`, `alerts`, or the rule's `output`). */
  readonly output: string;
  readonly kind: 'summary' | 'alert';
  readonly rule: string;
  /** Canonical group key: ordering is guaranteed per rule and group. */
  readonly groupKey: string;
  readonly body: SummaryBody | AlertBody | RowBody | EventRowBody;
  /** Processing time of creation (ms). */
  readonly createdAt: number;
}

/** Where output goes: the edgeHub output, or stdout in local mode. `send` resolves on delivery (PUBACK). */
export interface Sink {
  send(message: OutputMessage): Promise<void>;
}
