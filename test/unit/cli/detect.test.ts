import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NAB_DIR } from '../../../bench/nab/nabCorpus.js';
import { parseNabTime, runDetect, scoreSeries } from '../../../src/cli/detect.js';

function sink() {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
}

const dir = mkdtempSync(join(tmpdir(), 'eddy-detect-'));
const ruleFile = join(dir, 'rule.json');
writeFileSync(ruleFile, JSON.stringify({ kind: 'anomaly', value: 'value', detector: { type: 'zscore', window: 200, threshold: 5 }, cooldown: '1h' }));

describe('eddy detect', () => {
  // README "Quirks": these NAB files repeat a timestamp (daylight-saving change).
  it.each(['realAdExchange/exchange-2_cpc_results.csv', 'realAWSCloudwatch/ec2_network_in_5abac7.csv'])(
    'one output row per input row, in input order, on %s (repeated timestamps)',
    async (key) => {
      const csv = join(NAB_DIR, 'data', key);
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
    expect(stderr.text).toMatch(/3 bad row/);
  });

  it('usage and rule errors exit 2 with a message', async () => {
    const stderr = sink();
    expect(await runDetect(['--csv', 'x'], { stdout: sink(), stderr })).toBe(2);
    const bad = join(dir, 'badrule.json');
    writeFileSync(bad, JSON.stringify({ kind: 'anomaly', value: 'value', detector: { type: 'zscore', window: 0, threshold: 3 } }));
    expect(await runDetect(['--rule', bad, '--csv', join(dir, 'bad.csv')], { stdout: sink(), stderr })).toBe(2);
    expect(stderr.text).toMatch(/window/);
  });

  it('parses NAB timestamps as UTC', () => {
    expect(parseNabTime('2014-04-10 07:15:00')).toBe(Date.UTC(2014, 3, 10, 7, 15, 0));
    expect(parseNabTime('2014-04-10T07:15:00.500Z')).toBe(Date.UTC(2014, 3, 10, 7, 15, 0, 500));
    expect(parseNabTime('yesterday')).toBeNull();
  });

  it('scoreSeries: alert 1 only on the raising row; missing raises on the row after a gap', () => {
    const rows = ['00', '05', '10', '40', '45'].map((m) => ({ timestamp: `2015-01-01 00:${m}:00`, value: 1 }));
    const r = scoreSeries({ kind: 'anomaly', value: 'value', detector: { type: 'missing', timeout: '20m' } }, rows);
    expect(r.map((x) => x.alert)).toEqual([0, 0, 0, 1, 0]);
  });
});
