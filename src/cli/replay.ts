import { VirtualAction, VirtualTimeScheduler } from 'rxjs';
import { parse as parseCsv } from 'csv-parse/sync';
import type { IngestEvent, RejectReason } from '../contracts/event.js';
import type { OutputMessage } from '../contracts/output.js';
import type { DetectorStep } from '../contracts/anomaly.js';
import { decodeMessage } from '../ingest/decodeMessage.js';
import { parseTimestamp } from '../ingest/parseTimestamp.js';
import { compilePath, MISSING } from '../util/readPath.js';
import type { CompiledRule } from '../rules/compileRule.js';
import { Engine } from '../rules/engine.js';

/**
 * One recorded input message. `body` is the message body as edgeHub would deliver it (its JSON
 * text, or a value that is serialised first); the rest is what edgeHub adds around a body
 * (`$.cdid`, `$.cmid`, the input name) and when it arrived, each optional.
 */
export interface RecordedMessage {
  readonly body: string | unknown;
  readonly deviceId?: string | undefined;
  readonly moduleId?: string | undefined;
  readonly input?: string | undefined;
  /** Arrival as recorded (ISO 8601 text or epoch ms); absent: the event time (see `Replay`). */
  readonly arrival?: unknown;
  /** `body` already parsed, when it is text that was (read for the arrival; the decoder still reads the text). */
  readonly parsed?: unknown;
}

/** Field names that carry a recorded message's envelope in `eddy run`'s inputs; removed from the body. */
export const META_FIELDS = { deviceId: '$deviceId', moduleId: '$moduleId', input: '$input', arrival: '$arrival' } as const;

export type InputFormat = 'ndjson' | 'json' | 'csv';

/** What a recorded file could not give as a message: its line (1-based) and why. */
export interface FormatError {
  readonly line: number;
  readonly error: string;
}

/**
 * Splits a recording into messages. `ndjson`: one message body per line (blank lines skipped; a line
 * that is not JSON is still a message, which the decoder rejects as `not-json`, as the module would).
 * `json`: one JSON array, each element a message body. `csv`: a header line, then one message per row:
 * a column named `a.b` becomes the nested field `{"a": {"b": ...}}` (rule paths are dotted), a cell
 * that is a JSON number becomes a number, an empty cell is left out. In every format the fields
 * `$deviceId`, `$moduleId`, `$input` and `$arrival` of an object body are its envelope, not its data.
 * A csv row with more cells than the header is left out and given to `onBadRow` with its line.
 * Throws (with the line) when the document as a whole cannot be read: a json file that is not an
 * array, a csv quote that is not closed where it should be.
 */
export function readRecording(text: string, format: InputFormat, onBadRow: (e: FormatError) => void = () => undefined): RecordedMessage[] {
  if (format === 'ndjson') {
    const out: RecordedMessage[] = [];
    for (const line of text.split(/\r?\n/)) {
      if (line.trim() === '') continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        out.push({ body: line });
        continue;
      }
      out.push(envelope(v, line));
    }
    return out;
  }
  if (format === 'json') {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new Error(`not JSON: ${(err as Error).message}`);
    }
    if (!Array.isArray(doc)) throw new Error('a json recording must be one JSON array of message bodies (use --format ndjson for one body per line)');
    return doc.map((v) => envelope(v, null));
  }
  // A row with more cells than the header is skipped alone and reported (`onBadRow`): csv-parse resumes
  // at the next record. A broken quote is not: where the quoted field ends is then unknown and the
  // parser swallows the rows after it (a `"x"y` cell hides every later row), so the document fails.
  const quoteErrors: Array<{ message: string }> = [];
  // The line where a skipped row ends, from the bytes read through its record delimiter. Not csv-parse's
  // own `lines`: it counts a CRLF inside a quoted cell as two lines (test/unit/cli/run.test.ts, "csv: a row").
  let bytes: Buffer | null = null;
  const lineAt = (end: number): number => {
    bytes ??= Buffer.from(text, 'utf8');
    let line = 1;
    for (let i = 0; i < end - 1 && i < bytes.length; i++) if (bytes[i] === 0x0a) line++;
    return line;
  };
  const rows = parseCsv(text, {
    columns: true,
    skip_empty_lines: true,
    bom: true,
    relax_column_count_less: true,
    skip_records_with_error: true,
    on_skip: (err) => {
      if (err === undefined) return;
      if (err.code === 'CSV_RECORD_INCONSISTENT_COLUMNS') onBadRow({ line: lineAt(typeof err.bytes === 'number' ? err.bytes : 0), error: err.message.replace(/ on line \d+$/, '') });
      else quoteErrors.push(err);
    },
  }) as Array<Record<string, string>>;
  if (quoteErrors.length > 0) throw new Error(quoteErrors[0]!.message);
  return rows.map((row) => {
    const body: Record<string, unknown> = {};
    for (const [col, cell] of Object.entries(row)) {
      if (cell === '') continue;
      const value = JSON_NUMBER.test(cell.trim()) ? Number(cell) : cell;
      if (col.startsWith('$')) body[col] = value;
      else setPath(body, col.split('.'), value);
    }
    return envelope(body, null);
  });
}

const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

function setPath(target: Record<string, unknown>, parts: string[], value: unknown): void {
  let o = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i]!;
    const next = o[k];
    if (next === null || typeof next !== 'object') o[k] = {};
    o = o[k] as Record<string, unknown>;
  }
  o[parts[parts.length - 1]!] = value;
}

/** Takes the envelope fields out of an object body; `text` is the body's own JSON when nothing was taken out. */
function envelope(v: unknown, text: string | null): RecordedMessage {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return text === null ? { body: v } : { body: text, parsed: v };
  const o = v as Record<string, unknown>;
  if (!Object.values(META_FIELDS).some((k) => Object.prototype.hasOwnProperty.call(o, k))) return text === null ? { body: v } : { body: text, parsed: v };
  const body: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(o)) if (!(Object.values(META_FIELDS) as string[]).includes(k)) body[k] = x;
  const str = (x: unknown): string | undefined => (typeof x === 'number' ? String(x) : typeof x === 'string' && x !== '' ? x : undefined);
  return { body, deviceId: str(o[META_FIELDS.deviceId]), moduleId: str(o[META_FIELDS.moduleId]), input: str(o[META_FIELDS.input]), arrival: o[META_FIELDS.arrival] };
}

/** Counts of one replay, for the closing summary. */
export interface ReplayStats {
  messages: number;
  events: number;
  /** Messages (or batch elements) the decoder refused, by reason (module metric `eddy_messages_rejected_total`). */
  readonly rejected: Map<RejectReason, number>;
  /** Events a rule refused, by rule then reason. */
  readonly rejectedByRule: Map<string, Map<RejectReason, number>>;
  /** Outputs by rule and kind. */
  readonly outputs: Map<string, { summary: number; alert: number }>;
  /** Messages with no arrival of their own and no event time: they arrived when the one before did. */
  noArrival: number;
}

export interface ReplayOptions {
  readonly rules: readonly CompiledRule[];
  /** Every output message, in the order the engine emits it. */
  readonly onOutput: (m: OutputMessage) => void;
  /** Called for every event an anomaly rule scores (`eddy detect`). */
  readonly onScore?: (rule: string, groupKey: string, step: DetectorStep, event: IngestEvent) => void;
  /**
   * Body paths read as a message's arrival when it has no `$arrival`; the first that holds a timestamp
   * wins. Default: the `timestamp` paths of the rules, in rule order (event time is then arrival time).
   */
  readonly arrivalPaths?: readonly string[];
}

/**
 * Replays recorded messages through the module's engine, with the module's decoder, on a virtual
 * processing clock that follows the data. A message's arrival is its `$arrival`, else the first
 * `arrivalPaths` field holding a timestamp, else the previous message's (the clock stands still);
 * the clock never goes back. Before each message the clock moves to its arrival: the window idle
 * flushes due by then run at their own times (an RxJS VirtualTimeScheduler), then the `missing`
 * detectors are ticked, as the module's one-second tick would have done by then. `finish` emits every
 * open window (the module keeps them open across a stop instead: docs/contract.md section 8) and stops.
 */
export class Replay {
  readonly stats: ReplayStats = { messages: 0, events: 0, rejected: new Map(), rejectedByRule: new Map(), outputs: new Map(), noArrival: 0 };
  private readonly scheduler = new VirtualTimeScheduler(VirtualAction, 0);
  private readonly engine: Engine;
  private readonly arrivalReaders: Array<(body: Record<string, unknown>) => unknown>;
  private now = Number.NaN;
  /** Reasons the engine gave during the current `push`. */
  private pushRejects: RejectReason[] = [];

  constructor(opts: ReplayOptions) {
    const paths = opts.arrivalPaths ?? [...new Set(opts.rules.map((r) => (r.doc as { timestamp?: string }).timestamp).filter((p): p is string => typeof p === 'string'))];
    this.arrivalReaders = paths.map(compilePath);
    const stats = this.stats;
    this.engine = new Engine({
      scheduler: this.scheduler,
      // Ticks are driven by `advance`, on the replay's clock (the module ticks every second).
      tickIntervalMs: 0,
      emit: (messages) => {
        for (const m of messages) {
          const o = stats.outputs.get(m.rule) ?? { summary: 0, alert: 0 };
          o[m.kind]++;
          stats.outputs.set(m.rule, o);
          opts.onOutput(m);
        }
      },
      observer: {
        rejected: (reason, rule) => {
          this.pushRejects.push(reason);
          if (rule === undefined) return void stats.rejected.set(reason, (stats.rejected.get(reason) ?? 0) + 1);
          const byRule = stats.rejectedByRule.get(rule) ?? new Map<RejectReason, number>();
          byRule.set(reason, (byRule.get(reason) ?? 0) + 1);
          stats.rejectedByRule.set(rule, byRule);
        },
        windowResult: () => undefined,
        alert: () => undefined,
      },
      ...(opts.onScore === undefined ? {} : { onScore: opts.onScore }),
    });
    this.engine.setRules(opts.rules);
  }

  /** Feeds one message; returns the reasons it (or one of its events, for some rule) was refused. */
  push(msg: RecordedMessage): RejectReason[] {
    this.pushRejects = [];
    this.stats.messages++;
    const text = typeof msg.body === 'string' ? msg.body : JSON.stringify(msg.body) ?? 'undefined';
    let arrival = msg.arrival === undefined ? null : parseTimestamp(msg.arrival);
    // The event time of the message (of a batch: its first element) stands in for a missing arrival.
    const value = typeof msg.body === 'string' ? msg.parsed : msg.body;
    const first: unknown = Array.isArray(value) ? value[0] : value;
    if (arrival === null && first !== null && typeof first === 'object' && !Array.isArray(first)) {
      for (const read of this.arrivalReaders) {
        const raw = read(first as Record<string, unknown>);
        arrival = raw === MISSING ? null : parseTimestamp(raw);
        if (arrival !== null) break;
      }
    }
    if (arrival === null) this.stats.noArrival++;
    else this.advance(arrival);
    const now = this.now === this.now ? this.now : 0;
    const { events, rejects } = decodeMessage(text, { input: msg.input ?? 'telemetry', deviceId: msg.deviceId, moduleId: msg.moduleId, arrival: now });
    for (const r of rejects) {
      this.pushRejects.push(r.reason);
      this.stats.rejected.set(r.reason, (this.stats.rejected.get(r.reason) ?? 0) + 1);
    }
    this.stats.events += events.length;
    this.engine.process(events, now);
    return this.pushRejects;
  }

  /** Emits every open window and stops the engine. */
  finish(): void {
    this.engine.flushWindows();
    this.engine.close();
  }

  /** Moves processing time forward to `t` (never back), running what falls due on the way. */
  private advance(t: number): void {
    if (this.now === this.now && t <= this.now) return;
    this.now = t;
    this.scheduler.maxFrames = t;
    this.scheduler.flush();
    this.scheduler.frame = t;
    this.engine.tick(t);
  }
}
