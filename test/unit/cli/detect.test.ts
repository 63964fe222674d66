import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { csvField, parseNabTime, parseSeriesCsv, runDetect, scoreSeries } from '../../../src/cli/detect.js';
import type { AnomalyRule } from '../../../src/contracts/rule.js';
import { FULL_NAB_DIR, NAB_FIXTURES, noteFullNabSkipped } from '../../helpers/nabDirs.js';

function sink() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

const dir = mkdtempSync(join(tmpdir(), 'eddy-detect-'));
const ruleFile = join(dir, 'rule.json');
writeFileSync(ruleFile, JSON.stringify({ kind: 'anomaly', value: 'value', detector: { type: 'zscore', window: 200, threshold: 5 }, cooldown: '1h' }));

noteFullNabSkipped('eddy detect on the AWS files of a full NAB checkout that repeat a timestamp');

// These NAB files repeat a timestamp (a daylight-saving change): the replay must still give one
// row per input row. The first two are in test/fixtures/nab; the others only in a full checkout.
const repeatedTimestampFiles: Array<[string, string]> = [
  ['realAdExchange/exchange-2_cpc_results.csv', NAB_FIXTURES],
  ['realAdExchange/exchange-2_cpm_results.csv', NAB_FIXTURES],
  ...(FULL_NAB_DIR === undefined
    ? []
    : (['realAWSCloudwatch/ec2_network_in_5abac7.csv', 'realAWSCloudwatch/ec2_disk_write_bytes_1ef3de.csv'] as const).map(
        (k): [string, string] => [k, FULL_NAB_DIR!],
      )),
];

describe('eddy detect', () => {
  it.each(repeatedTimestampFiles)(
    'one output row per input row, in input order, on %s (repeated timestamps)',
    async (key, nabDir) => {
      const csv = join(nabDir, 'data', key);
      const out = join(dir, 'out.csv');
      const stderr = sink();
      expect(await runDetect(['--rule', ruleFile, '--csv', csv, '--out', out], { stdout: sink(), stderr })).toBe(0);
      const input = readFileSync(csv, 'utf8').trim().split('\n');
      const output = readFileSync(out, 'utf8').trim().split('\n');
      expect(output[0]).toBe('timestamp,value,anomaly_score,alert');
      expect(output.length).toBe(input.length);
      const ts = input.slice(1).map((l) => l.split(',')[0]);
      expect(new Set(ts).size).toBeLessThan(ts.length); // the file really has a repeat
      for (let i = 1; i < input.length; i++) {
        const [t, v] = input[i]!.split(',');
        const [ot, ov, score, alert] = output[i]!.split(',');
        expect(ot).toBe(t);
        expect(Number(ov)).toBe(Number(v));
        expect(Number(score)).toBeGreaterThanOrEqual(0);
        expect(Number(score)).toBeLessThanOrEqual(1);
        expect(['0', '1']).toContain(alert);
      }
      expect(stderr.text).toBe('');
    },
  );

  it('bad rows still get a row (score 0, alert 0) and a stderr count; rule set with one anomaly rule', async () => {
    const csv = join(dir, 'bad.csv');
    writeFileSync(csv, 'timestamp,value\n2015-01-01 00:00:00,1\n2015-01-01 00:05:00,abc\nnot-a-time,3\n2015-01-01 00:10:00,\n2015-01-01 00:15:00,4\n');
    const rs = join(dir, 'ruleset.json');
    writeFileSync(rs, JSON.stringify({
      agg: { kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' } },
      jump: { kind: 'anomaly', value: 'value', detector: { type: 'threshold', above: 2 } },
    }));
    const stdout = sink();
    const stderr = sink();
    expect(await runDetect(['--rule', rs, '--csv', csv], { stdout, stderr })).toBe(0);
    const lines = stdout.text.trim().split('\n');
    expect(lines.slice(1).map((l) => l.split(',').slice(2).join(','))).toEqual(['0,0', '0,0', '0,0', '0,0', '1,1']);
    // The value column keeps a usable value even when the row's timestamp is not.
    expect(lines.slice(1).map((l) => l.split(',')[1])).toEqual(['1', '', '3', '', '4']);
    expect(stderr.text).toBe('eddy detect: 3 of 5 row(s) not scored (written with score 0, alert 0): bad-timestamp 1, not-a-number 2\n');
  });

  it('reads the CSV as RFC 4180 (csv-parse): BOM, CRLF, quoted fields; a record without exactly two fields is a bad row', async () => {
    const csv = join(dir, 'rfc.csv');
    writeFileSync(csv, '\ufefftimestamp,value\r\n"2015-01-01 00:00:00",1\r\n2015-01-01 00:05:00,"2"\r\n2015-01-01 00:10:00,3,extra\r\n\r\n2015-01-01 00:15:00,4\r\n');
    const rf = join(dir, 'thr.json');
    writeFileSync(rf, JSON.stringify({ kind: 'anomaly', value: 'value', detector: { type: 'threshold', above: 1.5 } }));
    const stdout = sink();
    const stderr = sink();
    expect(await runDetect(['--rule', rf, '--csv', csv], { stdout, stderr })).toBe(0);
    expect(stdout.text.split('\n')).toEqual([
      'timestamp,value,anomaly_score,alert',
      '2015-01-01 00:00:00,1,0,0',
      '2015-01-01 00:05:00,2,1,1',
      '2015-01-01 00:10:00,,0,0',
      ',,0,0',
      '2015-01-01 00:15:00,4,1,0',
      '',
    ]);
    expect(stderr.text).toBe('eddy detect: 2 of 5 row(s) not scored (written with score 0, alert 0): bad-timestamp 1, not-a-number 1\n');
    // An unclosed quote is not a CSV: a usage error, nothing written.
    writeFileSync(csv, 'timestamp,value\n"2015-01-01 00:00:00,1\n');
    const out = sink();
    const err = sink();
    expect(await runDetect(['--rule', rf, '--csv', csv], { stdout: out, stderr: err })).toBe(2);
    expect(out.text).toBe('');
    expect(err.text).toMatch(/^eddy detect: .*[Qq]uote/);
  });

  it('usage and rule errors exit 2 with a message', async () => {
    const stderr = sink();
    expect(await runDetect(['--csv', 'x'], { stdout: sink(), stderr })).toBe(2);
    const bad = join(dir, 'badrule.json');
    writeFileSync(bad, JSON.stringify({ kind: 'anomaly', value: 'value', detector: { type: 'zscore', window: 0, threshold: 3 } }));
    expect(await runDetect(['--rule', bad, '--csv', join(dir, 'bad.csv')], { stdout: sink(), stderr })).toBe(2);
    expect(stderr.text).toMatch(/window/);
  });

  describe('a rule written for device messages (docs/contract.md section 5 shape)', () => {
    // value/timestamp/where/groupBy name paths of a SimulatedTemperatureSensor body, not CSV columns.
    const contractRule = (detector: Record<string, unknown>, cooldown = '1m') => ({
      kind: 'anomaly', where: 'machine.temperature > 0', groupBy: ['$deviceId'], timestamp: 'timeCreated',
      value: 'machine.temperature', detector, cooldown, output: 'alerts',
    });
    const values = [20, 95, 30, 90, 91, -5, 100, 89.5, 90.5, 40];
    const csvText = ['timestamp,value', ...values.map((v, i) => `2026-11-26 03:${String(i * 5).padStart(2, '0')}:00,${v}`)].join('\n') + '\n';

    it('threshold: alert is 1 exactly on the rows above the threshold, scores follow the level, exit 0, nothing on stderr', async () => {
      const rf = join(dir, 'contract-threshold.json');
      writeFileSync(rf, JSON.stringify(contractRule({ type: 'threshold', above: 90 })));
      const csv = join(dir, 'contract.csv');
      writeFileSync(csv, csvText);
      const stdout = sink();
      const stderr = sink();
      expect(await runDetect(['--rule', rf, '--csv', csv], { stdout, stderr })).toBe(0);
      expect(stderr.text).toBe('');
      const rows = stdout.text.trim().split('\n').slice(1).map((l) => l.split(','));
      expect(rows.map((r) => Number(r[1]))).toEqual(values);
      // Every row above 90 follows one at or below it, so each is a raise; 90 itself is not above.
      expect(rows.map((r) => Number(r[3]))).toEqual(values.map((v) => (v > 90 ? 1 : 0)));
      expect(rows.map((r) => Number(r[2]))).toEqual(values.map((v) => (v > 90 ? 1 : 0)));
    });

    it('the rule\'s paths and where do not change the replay: same rows as the same detector on value/timestamp', () => {
      const rows = values.map((v, i) => ({ timestamp: `2026-11-26 03:${String(i * 5).padStart(2, '0')}:00`, value: v }));
      const detector = { type: 'zscore', window: 4, threshold: 1.5 };
      const asContract = scoreSeries(contractRule(detector, '10m') as AnomalyRule, rows);
      const asCsv = scoreSeries({ kind: 'anomaly', value: 'value', timestamp: 'timestamp', detector, cooldown: '10m' }, rows);
      expect(asContract).toEqual(asCsv);
      expect(asContract.some((r) => r.score > 0)).toBe(true);
      // -5 is scored although the rule's where would drop it on the device.
      expect(asContract[5]!.rejected).toBeUndefined();
    });

    it('every row rejected: each still gets its row, counts by reason on stderr, exit 3', async () => {
      const rf = join(dir, 'contract-threshold.json');
      const csv = join(dir, 'allbad.csv');
      writeFileSync(csv, 'timestamp,value\nyesterday,1\n2026-11-26 03:00:00,21.5 °C\n2026-02-30 00:00:00,3\n2026-11-26 03:10:00,\n');
      const stdout = sink();
      const stderr = sink();
      expect(await runDetect(['--rule', rf, '--csv', csv], { stdout, stderr })).toBe(3);
      expect(stdout.text.trim().split('\n').slice(1).map((l) => l.split(',').slice(2).join(','))).toEqual(['0,0', '0,0', '0,0', '0,0']);
      expect(stderr.text).toMatch(/^eddy detect: 4 of 4 row\(s\) not scored \(written with score 0, alert 0\): bad-timestamp 2, not-a-number 2\neddy detect: no row could be scored\n$/);
      // A CSV with a header and no rows scored nothing either.
      writeFileSync(csv, 'timestamp,value\n');
      const empty = sink();
      expect(await runDetect(['--rule', rf, '--csv', csv], { stdout: sink(), stderr: empty })).toBe(3);
      expect(empty.text).toMatch(/no data rows/);
    });

    it('missing: processing time follows the rows, so a gap raises on the next row whatever the rule\'s timestamp path', () => {
      const rows = ['00', '05', '10', '40', '45'].map((m) => ({ timestamp: `2015-01-01 00:${m}:00`, value: 1 }));
      const r = scoreSeries(contractRule({ type: 'missing', timeout: '20m' }, '0ms') as AnomalyRule, rows);
      expect(r.map((x) => x.alert)).toEqual([0, 0, 0, 1, 0]);
    });
  });

  it.each([
    ['a single aggregate rule', { kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' } }, /kind "aggregate"; eddy detect needs an anomaly rule/],
    ['a rule set without an anomaly rule', { agg: { kind: 'aggregate', window: { type: 'tumbling', size: '1m' }, select: { n: 'count()' } } }, /exactly one anomaly rule \(found 0\)/],
    ['a rule set with two anomaly rules', { a: { kind: 'anomaly', value: 'value', detector: { type: 'threshold', above: 1 } }, b: { kind: 'anomaly', value: 'value', detector: { type: 'threshold', above: 2 } } }, /exactly one anomaly rule \(found 2\)/],
    ['an anomaly rule whose where does not compile', { kind: 'anomaly', value: 'x', where: 'import("fs")', detector: { type: 'threshold', above: 1 } }, /rule\.where/],
    ['a rule set whose anomaly rule has an unknown detector', { hot: { kind: 'anomaly', value: 'x', detector: { type: 'nope' } } }, /hot\.detector/],
    ['an array', [], /JSON object/],
  ])('%s is an error on stderr with exit 2 and no output', async (_name, doc, message) => {
    const rf = join(dir, 'wrong.json');
    writeFileSync(rf, JSON.stringify(doc));
    const csv = join(dir, 'one.csv');
    writeFileSync(csv, 'timestamp,value\n2015-01-01 00:00:00,1\n');
    const stdout = sink();
    const stderr = sink();
    expect(await runDetect(['--rule', rf, '--csv', csv], { stdout, stderr })).toBe(2);
    expect(stdout.text).toBe('');
    expect(stderr.text).toMatch(message);
  });

  it('--help documents the columns the replay reads and the exit codes', async () => {
    const stdout = sink();
    expect(await runDetect(['--help'], { stdout, stderr: sink() })).toBe(0);
    expect(stdout.text).toMatch(/value,\s+timestamp, where and groupBy do not/);
    expect(stdout.text).toMatch(/3 no row could be scored/);
  });

  it('values are JSON numbers only; an output field with a comma, quote or line break is quoted (RFC 4180)', () => {
    const rows = parseSeriesCsv('timestamp,value\na,1.5e3\nb,0x40\nc, -2 \nd,1_0\ne,Infinity\nf,.5\n');
    expect(rows.map((r) => r.value)).toEqual([1500, Number.NaN, -2, Number.NaN, Number.NaN, Number.NaN]);
    expect(['plain', 'a,b', 'say "hi"', 'x\r\ny'].map(csvField)).toEqual(['plain', '"a,b"', '"say ""hi"""', '"x\r\ny"']);
  });

  it('parses NAB timestamps as UTC', () => {
    expect(parseNabTime('2014-04-10 07:15:00')).toBe(Date.UTC(2014, 3, 10, 7, 15, 0));
    expect(parseNabTime('2014-04-10T07:15:00.500Z')).toBe(Date.UTC(2014, 3, 10, 7, 15, 0, 500));
    expect(parseNabTime('yesterday')).toBeNull();
    // The module's own parser: an impossible date is not a time (Date.UTC would roll it into March).
    expect(parseNabTime('2015-02-30 00:00:00')).toBeNull();
    expect(parseNabTime('2014-04-10T09:15:00+02:00')).toBe(Date.UTC(2014, 3, 10, 7, 15, 0));
  });

  it('scoreSeries: alert 1 only on the raising row; missing raises on the row after a gap', () => {
    const rows = ['00', '05', '10', '40', '45'].map((m) => ({ timestamp: `2015-01-01 00:${m}:00`, value: 1 }));
    const r = scoreSeries({ kind: 'anomaly', value: 'value', detector: { type: 'missing', timeout: '20m' } }, rows);
    expect(r.map((x) => x.alert)).toEqual([0, 0, 0, 1, 0]);
  });
});
