import { readFileSync, writeFileSync } from 'node:fs';
import type { AnomalyRule } from '../contracts/rule.js';
import { parseDuration } from '../contracts/duration.js';
import { AnomalyStage } from '../anomaly/anomalyStage.js';
import { validateDetector } from '../anomaly/detectorRegistry.js';

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
  const v = validateDetector(rule.detector);
  if (!v.ok) throw new Error(v.error);
  const cooldownMs = rule.cooldown === undefined ? 0 : parseDuration(rule.cooldown);
  if (cooldownMs === null) throw new Error('cooldown must be a duration');
  const stage = new AnomalyStage({
    detector: v.detector,
    config: v.config,
    cooldownMs,
    detectorName: rule.detector.type,
    ...(rule.alertThreshold === undefined ? {} : { alertThreshold: rule.alertThreshold }),
  });
  const out: { score: number; alert: 0 | 1 }[] = [];
  for (const row of rows) {
    const time = parseNabTime(row.timestamp);
    if (time === null || !Number.isFinite(row.value)) {
      out.push({ score: 0, alert: 0 });
      continue;
    }
    let alert: 0 | 1 = stage.tick(time).some((a) => a.state === 'raised') ? 1 : 0;
    const r = stage.process({ time, key: '', group: {}, value: row.value });
    if (r.alert?.state === 'raised') alert = 1;
    out.push({ score: Math.min(1, Math.max(0, r.step.score)), alert });
  }
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
  const det = o.detector as AnomalyRule['detector'];
  const v = validateDetector(det);
  if (!v.ok) return v.error;
  if (o.cooldown !== undefined && parseDuration(o.cooldown) === null) return 'cooldown must be a duration';
  if (o.alertThreshold !== undefined && (typeof o.alertThreshold !== 'number' || !(o.alertThreshold >= 0 && o.alertThreshold <= 1))) {
    return 'alertThreshold must be a number in [0, 1]';
  }
  return o as unknown as AnomalyRule;
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
