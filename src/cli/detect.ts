import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { AnomalyRule } from '../contracts/rule.js';
import type { AlertBody } from '../contracts/output.js';
import type { RejectReason } from '../contracts/event.js';
import { compileRule } from '../rules/compileRule.js';
import { parseTimestamp } from '../ingest/parseTimestamp.js';
import { parseCommandArgs } from './parseCommandArgs.js';
import { Replay } from './replay.js';

/** Where `runDetect` writes (the process streams by default; tests pass buffers). */
export interface DetectIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/**
 * A CSV timestamp as UTC epoch ms, or null when unparsable: the module's own event-time parser
 * (src/ingest/parseTimestamp.ts), so a row the replay counts as usable is one the engine accepts.
 * NAB's `YYYY-MM-DD HH:MM:SS` has no zone and is read as UTC; `T`, a fraction, `Z` or an offset also
 * parse. NAB's times are local wall-clock times with daylight-saving repeats (test/fixtures/nab/README.md); read as
 * UTC they simply repeat, which every detector tolerates.
 */
export function parseNabTime(s: string): number | null {
  return parseTimestamp(s.trim());
}

/** One output row of the replay: `rejected` is set when the row could not be used (score and alert are then 0). */
export interface ScoredRow {
  score: number;
  alert: 0 | 1;
  rejected?: RejectReason;
}

/**
 * The rule the replay runs: the detector (type and parameters), cooldown and alert threshold of `rule`,
 * reading the CSV's two columns. The CSV has nothing else, so the rule's own `value`, `timestamp`,
 * `where` and `groupBy` (paths into a device's message body, e.g. `machine.temperature` and
 * `timeCreated` in docs/contract.md section 5) cannot apply: kept, they matched no row and every score was
 * 0 with exit code 0. The row's time is the event time and its value the value, in one group.
 */
export function replayRule(rule: AnomalyRule): AnomalyRule {
  return {
    kind: 'anomaly',
    value: 'value',
    timestamp: 'timestamp',
    detector: rule.detector,
    ...(rule.cooldown === undefined ? {} : { cooldown: rule.cooldown }),
    ...(rule.alertThreshold === undefined ? {} : { alertThreshold: rule.alertThreshold }),
  };
}

/**
 * Scores a `timestamp,value` series with one anomaly rule (see `replayRule` for what of the rule
 * applies), one result per row in row order: `score` is the detector's score for the row, `alert` is 1
 * on the row that raised an alert. It is `eddy run` (src/cli/replay.ts) over one message per row,
 * `{"timestamp": <the row's time text>, "value": <its value>}`: the row's time is its arrival and its
 * event time, so processing time follows the rows and a `missing` alert noticed between two rows is
 * put on the row after the gap. A row with an unparsable timestamp (it arrives with the row before) or
 * a non-finite value, or one the engine rejects, gets score 0 and alert 0, changes nothing, and says
 * why in `rejected`. Throws when the rule does not compile.
 */
export function scoreSeries(rule: AnomalyRule, rows: { timestamp: string; value: number }[]): ScoredRow[] {
  // The same engine code as the module (docs/contract.md section 1): the detector, and the alert stage
  // with its cooldown and threshold.
  const compiled = compileRule('detect', replayRule(rule));
  if (!compiled.ok) throw new Error(compiled.error);
  let score = 0;
  let alert: 0 | 1 = 0;
  const replay = new Replay({
    rules: [compiled.rule],
    onOutput: (m) => {
      if (m.kind === 'alert' && (m.body as AlertBody).state === 'raised') alert = 1;
    },
    onScore: (_rule, _key, step) => {
      score = Math.min(1, Math.max(0, step.score));
    },
  });
  const out: ScoredRow[] = [];
  for (const row of rows) {
    score = 0;
    alert = 0;
    // A value that is not a finite number goes in as null (JSON has no NaN): the rule refuses it as not-a-number.
    const rejects = replay.push({ body: { timestamp: row.timestamp.trim(), value: Number.isFinite(row.value) ? row.value : null }, input: compiled.rule.input });
    // Whatever the engine refuses (a detector that throws, say) is the row's reason, not a silent 0.
    // A `missing` raise noticed on this row's arrival stays on the row even when the row itself is refused.
    out.push(rejects.length === 0 ? { score, alert } : { score: 0, alert, rejected: rejects[0]! });
  }
  replay.finish();
  return out;
}

/**
 * Picks the anomaly rule out of a rule file: a single rule object or a rule set with exactly one
 * anomaly rule. The rule must compile as written (a broken `where` is still a broken rule); an error
 * is a message naming what is wrong.
 */
export function pickAnomalyRule(doc: unknown): AnomalyRule | string {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'rule file must hold a JSON object (one anomaly rule, or a rule set with one anomaly rule)';
  const o = doc as Record<string, unknown>;
  if (o.kind === 'anomaly') return checkRule('rule', o);
  // A single rule of another kind (it has a string `kind`; a rule set's values are objects).
  if (typeof o.kind === 'string') return `the rule is kind "${o.kind}"; eddy detect needs an anomaly rule`;
  const anomaly = Object.entries(o).filter(([, r]) => r !== null && typeof r === 'object' && (r as { kind?: unknown }).kind === 'anomaly');
  if (anomaly.length !== 1) return `rule set must hold exactly one anomaly rule (found ${anomaly.length})`;
  const [id, r] = anomaly[0]!;
  return checkRule(id, r as Record<string, unknown>);
}

function checkRule(id: string, o: Record<string, unknown>): AnomalyRule | string {
  const c = compileRule(id, o);
  return c.ok ? (o as unknown as AnomalyRule) : c.error;
}

/**
 * Reads a `timestamp,value` CSV (header line first; RFC 4180 quoting, CRLF and a UTF-8 BOM
 * accepted, via csv-parse) into rows, one per record after the header. The value is NaN when it is
 * empty, not a number, or the record does not have exactly two fields, so such a row is still written
 * (and counted) rather than dropped. Throws on malformed CSV (an unclosed quote).
 */
export function parseSeriesCsv(text: string): { timestamp: string; value: number }[] {
  const records = parse(text, { bom: true, relax_column_count: true, from_line: 2, record_delimiter: ['\r\n', '\n'] }) as string[][];
  return records.map((r) => {
    const raw = r.length === 2 ? r[1]!.trim() : '';
    // Only JSON's number syntax (the --help text, and how `eddy run` reads a CSV cell: docs/cli.md):
    // Number() alone takes '' as 0 and '0x40' as 64 (test/integration/blackbox/detectBadRows.test.ts).
    return { timestamp: r[0] ?? '', value: JSON_NUMBER.test(raw) ? Number(raw) : Number.NaN };
  });
}

/** A JSON number (RFC 8259 section 6). */
const JSON_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

/**
 * One output field as RFC 4180 section 2 writes it: quoted, with its quotes doubled, when it holds a
 * comma, a quote or a line break, so a timestamp field echoed from the input stays one field of one
 * record (docs/contract.md section 1: one output row per input row).
 */
export function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Exit codes of `eddy detect` (also in its help text). */
export const EXIT_OK = 0;
export const EXIT_USAGE = 2;
export const EXIT_NOTHING_SCORED = 3;

const USAGE = `usage: eddy detect --rule FILE --csv FILE [--out FILE]

Replays a timestamp,value CSV (RFC 4180, first line a header) through one anomaly rule and writes
timestamp,value,anomaly_score,alert: one row per input row, in input order, to --out or stdout.

--rule FILE  one anomaly rule, or a rule set ({"<id>": rule, ...}) holding exactly one anomaly rule.
             Its detector (type and parameters), cooldown and alertThreshold apply. Its value,
             timestamp, where and groupBy do not: the CSV has only two columns, so the timestamp column
             is the event time, the value column is the value, and all rows are one group.
--csv FILE   timestamps as ISO 8601 or NAB's "YYYY-MM-DD HH:MM:SS" (no zone: UTC); values JSON numbers.
             Processing time follows the rows (a missing rule notices a gap at the next row).

A row that cannot be used (unparsable timestamp, value not a number, not two fields) is still written, with score 0
and alert 0; the counts by reason go to stderr at the end.

exit codes: 0 done; 2 usage error, unreadable file, or a rule that is not an anomaly rule or does
not compile; 3 no row could be scored (every row rejected, or no rows).
`;

/**
 * `eddy detect --rule FILE --csv FILE [--out FILE]` (docs/contract.md section 1): writes
 * `timestamp,value,anomaly_score,alert`, one row per input row in input order, to `--out` or stdout.
 * Returns the exit code (see USAGE): rows that cannot be used are counted by reason on stderr, and a
 * replay that scored no row at all is not a success.
 */
export async function runDetect(argv: string[], io: DetectIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const parsed = parseCommandArgs(argv, { rule: { type: 'string' }, csv: { type: 'string' }, out: { type: 'string' } }, { min: 0, max: 0, name: '' });
  if (parsed.kind === 'help') {
    io.stdout.write(USAGE);
    return EXIT_OK;
  }
  if (parsed.kind === 'error') {
    io.stderr.write(`eddy detect: ${parsed.error}\n${USAGE}`);
    return EXIT_USAGE;
  }
  const args = parsed.values as { rule?: string; csv?: string; out?: string };
  if (!args.rule || !args.csv) {
    io.stderr.write(`eddy detect: ${args.rule ? '' : "Option '--rule <value>' is required"}${!args.rule && !args.csv ? '; ' : ''}${args.csv ? '' : "Option '--csv <value>' is required"}\n${USAGE}`);
    return EXIT_USAGE;
  }
  let rule: AnomalyRule | string;
  let rows: { timestamp: string; value: number }[];
  try {
    rule = pickAnomalyRule(JSON.parse(readFileSync(args.rule, 'utf8')));
    rows = parseSeriesCsv(readFileSync(args.csv, 'utf8'));
  } catch (err) {
    io.stderr.write(`eddy detect: ${(err as Error).message}\n`);
    return EXIT_USAGE;
  }
  if (typeof rule === 'string') {
    io.stderr.write(`eddy detect: ${args.rule}: ${rule}\n`);
    return EXIT_USAGE;
  }
  let scores: ScoredRow[];
  try {
    scores = scoreSeries(rule, rows);
  } catch (err) {
    // pickAnomalyRule compiled the rule as written; this is the replay's version of it failing.
    io.stderr.write(`eddy detect: ${args.rule}: ${(err as Error).message}\n`);
    return EXIT_USAGE;
  }
  const rejected = new Map<string, number>();
  const parts: string[] = ['timestamp,value,anomaly_score,alert\n'];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const s = scores[i]!;
    if (s.rejected !== undefined) rejected.set(s.rejected, (rejected.get(s.rejected) ?? 0) + 1);
    parts.push(`${csvField(row.timestamp)},${Number.isFinite(row.value) ? row.value : ''},${s.score},${s.alert}\n`);
  }
  const text = parts.join('');
  if (args.out) writeFileSync(args.out, text);
  else io.stdout.write(text);
  let bad = 0;
  for (const n of rejected.values()) bad += n;
  if (bad > 0) {
    const byReason = [...rejected].sort(([a], [b]) => (a < b ? -1 : 1)).map(([r, n]) => `${r} ${n}`).join(', ');
    io.stderr.write(`eddy detect: ${bad} of ${rows.length} row(s) not scored (written with score 0, alert 0): ${byReason}\n`);
  }
  if (bad === rows.length) {
    io.stderr.write(`eddy detect: no row could be scored${rows.length === 0 ? ` (${args.csv} has no data rows)` : ''}\n`);
    return EXIT_NOTHING_SCORED;
  }
  return EXIT_OK;
}
