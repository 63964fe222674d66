import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDetect } from '../../../src/cli/detect.js';

/* `eddy detect` parses its flags with node:util parseArgs, like every eddy command. */

const sink = (): { text: string; write(s: string): boolean } => ({ text: '', write(s: string) { this.text += s; return true; } });

describe('eddy detect flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'eddy-detect-flags-'));
  const rule = join(dir, 'rule.json');
  const csv = join(dir, 'in.csv');
  writeFileSync(rule, JSON.stringify({ kind: 'anomaly', value: 'v', detector: { type: 'threshold', above: 5 } }));
  writeFileSync(csv, 'timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:05:00,9\n');

  it('--rule=FILE --csv=FILE works like --rule FILE --csv FILE', async () => {
    const a = sink();
    const b = sink();
    expect(await runDetect([`--rule=${rule}`, `--csv=${csv}`], { stdout: a, stderr: sink() })).toBe(0);
    expect(await runDetect(['--rule', rule, '--csv', csv], { stdout: b, stderr: sink() })).toBe(0);
    expect(a.text).toBe('timestamp,value,anomaly_score,alert\n2026-01-01 00:00:00,1,0,0\n2026-01-01 00:05:00,9,1,1\n');
    expect(b.text).toBe(a.text);
  });

  it('errors name the flag: unknown, without its value, missing', async () => {
    const e1 = sink();
    expect(await runDetect(['--rules', rule, '--csv', csv], { stdout: sink(), stderr: e1 })).toBe(2);
    expect(e1.text).toMatch(/Unknown option '--rules'/);
    const e2 = sink();
    expect(await runDetect(['--csv', csv, '--rule'], { stdout: sink(), stderr: e2 })).toBe(2);
    expect(e2.text).toMatch(/Option '--rule <value>' argument missing/);
    const e3 = sink();
    expect(await runDetect(['--csv', csv], { stdout: sink(), stderr: e3 })).toBe(2);
    expect(e3.text).toMatch(/Option '--rule <value>' is required/);
  });
});
