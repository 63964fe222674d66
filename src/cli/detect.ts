import { readFileSync, writeFileSync } from 'node:fs';
import type { AnomalyRule } from '../contracts/rule.js';
import type { AlertBody } from '../contracts/output.js';
import type { SchedulerLike } from 'rxjs';
import { compileRule } from '../rules/compileRule.js';
import { Engine } from '../rules/engine.js';

/** Where `runDetect` writes (the process streams by default; tests pass buffers). */
export interface DetectIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

const NAB_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?Z?$/;

/**
 * NAB timestamps (`YYYY-MM-DD HH:MM:SS`, no zone) as UTC epoch ms, also with `T`, a fraction or `Z`;
 * null when unparsable. NAB's times are local wall-clock times with daylight-saving repeats (README
 * "Quirks"); read as UTC they simply repeat, which every detector tolerates.
 */
export function parseNabTime(s: string): number | null {
  const m = NAB_TIME.exec(s.trim());
  if (!m) return null;
  const ms = m[7] === undefined ? 0 : Math.floor(Number('0.' + m[7]) * 1000);
  const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, m[6] === undefined ? 0 : +m[6], ms);
  return Number.isFinite(t) ? t : null;
}

/**
 * Scores a `timestamp,value` series with one anomaly rule, one result per row in row order: `score` is
 * the detector's score for the row, `alert` is 1 on the row that raised an alert. A `missing` alert
 * noticed between two rows (the clock follows event time here: `tick(row time)` before each row) is
 * put on the row after the gap. Rows with an unparsable timestamp or a non-finite value get 0/0 and
 * change nothing. Single group, `value` read from the row.
 */
export function scoreSeries(rule: AnomalyRule, rows: { timestamp: string; value: number }[]): { score: number; alert: 0 | 1 }[] {
  // The same engine code as the module (CONTRACT.md section 1): where/value expressions, event time
  // from the `timestamp` path, groups, the detector and the alert stage with its cooldown.
  const compiled = compileRule('detect', { ...rule, timestamp: rule.timestamp ?? 'timestamp', groupBy: rule.groupBy ?? [] });
  if (!compiled.ok) throw new Error(compiled.error);
  let now = 0;
  // Replay: processing time follows event time, so a `missing` gap is noticed at the next row.
  const scheduler = { now: () => now, schedule: () => { throw new Error('replay has no timers'); } } as unknown as SchedulerLike;
  let score = 0;
  let alert: 0 | 1 = 0;
  const engine = new Engine({
    scheduler,
    tickIntervalMs: 0,
    emit: (messages) => {
      for (const m of messages) if (m.kind === 'alert' && (m.body as AlertBody).state === 'raised') alert = 1;
    },
    observer: { rejected: () => undefined, windowResult: () => undefined, alert: () => undefined },
    onScore: (_rule, _key, step) => {
      score = Math.min(1, Math.max(0, step.score));
    },
  });
  engine.setRules([compiled.rule]);
  const input = compiled.rule.input;
  const out: { score: number; alert: 0 | 1 }[] = [];
  for (const row of rows) {
    score = 0;
    alert = 0;
    const time = parseNabTime(row.timestamp);
    if (time !== null) {
      now = Math.max(now, time);
      engine.tick(now);
      engine.process([{ body: { timestamp: row.timestamp, value: row.value }, deviceId: 'local', moduleId: 'local', input, arrival: now }]);
    }
    out.push({ score, alert });
  }
  engine.close();
  return out;
}

/** Picks the anomaly rule out of a rule file: a single rule object or a rule set with exactly one anomaly rule. */
export function pickAnomalyRule(doc: unknown): AnomalyRule | string {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return 'rule file must hold a JSON object';
  const o = doc as Record<string, unknown>;
  if (o.kind === 'anomaly') return checkRule(o);
  const anomaly = Object.values(o).filter((r) => r !== null && typeof r === 'object' && (r as { kind?: unknown }).kind === 'anomaly');
  if (anomaly.length !== 1) return `rule set must hold exactly one anomaly rule (found ${anomaly.length})`;
  return checkRule(anomaly[0] as Record<string, unknown>);
}

function checkRule(o: Record<string, unknown>): AnomalyRule | string {
  const c = compileRule('detect', { ...o, timestamp: o.timestamp ?? 'timestamp' });
  return c.ok ? (o as unknown as AnomalyRule) : c.error;
}

/** Splits a `timestamp,value` CSV (header line first) into rows; the value is NaN when unparsable. */
export function parseSeriesCsv(text: string): { timestamp: string; value: number }[] {
  const lines = text.split(/\r?\n/);
  const rows: { timestamp: string; value: number }[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '' && i === lines.length - 1) break;
    const comma = line.indexOf(',');
    const timestamp = comma < 0 ? line : line.slice(0, comma);
    const raw = comma < 0 ? '' : line.slice(comma + 1).trim();
    // Number('') is 0: an empty field is a bad value, not zero.
    rows.push({ timestamp, value: raw === '' ? Number.NaN : Number(raw) });
  }
  return rows;
}

const USAGE = 'usage: eddy detect --rule FILE --csv FILE [--out FILE]\n';

/**
 * `eddy detect --rule FILE --csv FILE [--out FILE]` (CONTRACT.md §1): writes
 * `timestamp,value,anomaly_score,alert`, one row per input row in input order, to `--out` or stdout.
 * Returns the exit code: 0 on success (bad rows are counted on stderr), 2 on usage or input errors.
 */
export async function runDetect(argv: string[], io: DetectIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const args: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '--rule' || a === '--csv' || a === '--out') && argv[i + 1] !== undefined) args[a.slice(2)] = argv[++i]!;
    else if (a === '-h' || a === '--help') {
      io.stdout.write(USAGE);
      return 0;
    } else {
      io.stderr.write(`eddy detect: unexpected argument ${a}\n${USAGE}`);
      return 2;
    }
  }
  if (!args.rule || !args.csv) {
    io.stderr.write(USAGE);
    return 2;
  }
  let rule: AnomalyRule | string;
  let rows: { timestamp: string; value: number }[];
  try {
    rule = pickAnomalyRule(JSON.parse(readFileSync(args.rule, 'utf8')));
    rows = parseSeriesCsv(readFileSync(args.csv, 'utf8'));
  } catch (err) {
    io.stderr.write(`eddy detect: ${(err as Error).message}\n`);
    return 2;
  }
  if (typeof rule === 'string') {
    io.stderr.write(`eddy detect: ${args.rule}: ${rule}\n`);
    return 2;
  }
  const scores = scoreSeries(rule, rows);
  let bad = 0;
  const parts: string[] = ['timestamp,value,anomaly_score,alert\n'];
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    const ok = Number.isFinite(row.value) && parseNabTime(row.timestamp) !== null;
    if (!ok) bad++;
    parts.push(`${row.timestamp},${ok ? row.value : ''},${scores[i]!.score},${scores[i]!.alert}\n`);
  }
  const text = parts.join('');
  if (args.out) writeFileSync(args.out, text);
  else io.stdout.write(text);
  if (bad > 0) io.stderr.write(`eddy detect: ${bad} bad row(s) (unparsable timestamp or value) scored 0\n`);
  return 0;
}
