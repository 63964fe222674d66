import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';
import { afterAll, describe, expect, it } from 'vitest';

/*
 * Black-box: the built `eddy detect` on a NAB-style CSV with bad rows among good ones. docs/contract.md
 * section 1: it writes `timestamp,value,anomaly_score,alert`, "one row per input row, in input order",
 * the input being RFC 4180; docs/rules.md "Anomaly detectors": "A row that cannot be used still gets its
 * output row (score 0, alert 0) and is counted by reason on stderr"; `eddy detect --help`: values are
 * JSON numbers. The rule is a threshold (docs/rules.md: raised when `value > above`, cleared when
 * `value <= above`, the alert column 1 on the raising row), so the alert column is known row by row.
 * (Before: a timestamp field holding a comma, a quote or a line break was written back unquoted, so
 * the output had 19 records, some with 6 fields, for 15 input rows; and `0x40` was scored as 64 and
 * raised the alert that the next row, 60, should raise.)
 */

const CLI = fileURLToPath(new URL('../../../dist/cli/eddy.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'eddy-detect-bb-'));

/** [the CSV record as written, its timestamp field, the alert column, bad?] */
const ROWS: Array<[string, string, number, boolean]> = [
  ['2014-04-01 00:00:00,10', '2014-04-01 00:00:00', 0, false],
  ['2014-04-01 00:05:00,60', '2014-04-01 00:05:00', 1, false],
  ['2014-04-01 00:10:00,abc', '2014-04-01 00:10:00', 0, true],
  ['2014-04-01 00:15:00,', '2014-04-01 00:15:00', 0, true],
  ['2014-04-01 00:20:00,1e400', '2014-04-01 00:20:00', 0, true],
  ['2014-13-01 00:25:00,80', '2014-13-01 00:25:00', 0, true],
  ['2014-04-01 00:30:00,20', '2014-04-01 00:30:00', 0, false],
  ['"2014-04-01 00:35:00",55', '2014-04-01 00:35:00', 1, false],
  ['"not,a,time",5', 'not,a,time', 0, true],
  ['"say ""hi""",5', 'say "hi"', 0, true],
  ['"line\r\nbreak",5', 'line\r\nbreak', 0, true],
  ['2014-04-01 00:40:00,30', '2014-04-01 00:40:00', 0, false],
  ['2014-04-01 00:45:00,10,extra', '2014-04-01 00:45:00', 0, true],
  ['2014-04-01 00:50:00,0x40', '2014-04-01 00:50:00', 0, true],
  ['2014-04-01 00:55:00,60', '2014-04-01 00:55:00', 1, false],
];

describe('black box: eddy detect on a CSV with bad rows', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('one RFC 4180 output record per input row, bad rows scored 0 and counted, good rows alert as the threshold says', () => {
    const rule = join(dir, 'rule.json');
    const csv = join(dir, 'series.csv');
    writeFileSync(rule, JSON.stringify({ t: { kind: 'anomaly', value: 'value', detector: { type: 'threshold', above: 50 } } }));
    writeFileSync(csv, ['timestamp,value', ...ROWS.map((r) => r[0])].join('\r\n') + '\r\n');
    const r = spawnSync(process.execPath, [CLI, 'detect', '--rule', rule, '--csv', csv], { encoding: 'utf8' });
    console.info(`[detect] exit ${r.status}; stderr ${JSON.stringify(r.stderr)}; stdout ${JSON.stringify(r.stdout)}`);
    expect(r.status, r.stderr).toBe(0);
    const records = parse(r.stdout, { relax_column_count: true }) as string[][];
    expect(records[0]).toEqual(['timestamp', 'value', 'anomaly_score', 'alert']);
    const out = records.slice(1);
    expect(out.map((x) => x.length)).toEqual(ROWS.map(() => 4));
    expect(out.map((x) => x[0])).toEqual(ROWS.map((x) => x[1]));
    expect(out.map((x) => Number(x[3]))).toEqual(ROWS.map((x) => x[2]));
    for (const [i, x] of out.entries()) {
      const s = Number(x[2]);
      expect(s >= 0 && s <= 1, `score of row ${i + 1}: ${x[2]}`).toBe(true);
      if (ROWS[i]![3]) expect([x[2], x[3]], `bad row ${i + 1}`).toEqual(['0', '0']);
    }
    const bad = ROWS.filter((x) => x[3]).length;
    const m = /(\d+) of (\d+) row\(s\) not scored \(written with score 0, alert 0\): (.*)\n/.exec(r.stderr);
    expect(m?.slice(1, 3)).toEqual([String(bad), String(ROWS.length)]);
    const byReason = Object.fromEntries(m![3]!.split(', ').map((p) => [p.split(' ')[0], Number(p.split(' ')[1])]));
    expect(Object.values(byReason).reduce((a, b) => a + b, 0)).toBe(bad);
    // The four records whose timestamp is not a time (one has a month 13).
    expect(byReason['bad-timestamp']).toBe(4);
  });
});
