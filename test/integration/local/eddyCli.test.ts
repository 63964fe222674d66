import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const CLI = path.resolve(import.meta.dirname, '../../../dist/cli/eddy.js');

describe('the eddy command (built)', () => {
  it('eddy detect writes one row per input row, in order, with a raised alert on the spike', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'eddy-cli-'));
    const rows = ['timestamp,value'];
    for (let i = 0; i < 400; i++) {
      const t = new Date(Date.UTC(2026, 0, 1) + Math.floor(i / 2) * 300_000).toISOString().replace('T', ' ').slice(0, 19); // repeated timestamps
      rows.push(`${t},${i === 300 ? 500 : 10 + (i % 7) * 0.1}`);
    }
    rows.push('2026-01-02 00:00:00,not-a-number');
    writeFileSync(path.join(dir, 'in.csv'), rows.join('\n') + '\n');
    writeFileSync(path.join(dir, 'rule.json'), JSON.stringify({ spike: { kind: 'anomaly', value: 'value', detector: { type: 'threshold', above: 100 } } }));
    const r = spawnSync(process.execPath, [CLI, 'detect', '--rule', path.join(dir, 'rule.json'), '--csv', path.join(dir, 'in.csv'), '--out', path.join(dir, 'out.csv')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const out = readFileSync(path.join(dir, 'out.csv'), 'utf8').trim().split('\n');
    expect(out[0]).toBe('timestamp,value,anomaly_score,alert');
    expect(out).toHaveLength(rows.length);
    for (let i = 1; i < rows.length; i++) expect(out[i]!.split(',')[0]).toBe(rows[i]!.split(',')[0]);
    const alerts = out.slice(1).map((l) => l.split(',')[3]);
    expect(alerts.indexOf('1')).toBe(300);
    expect(alerts.filter((a) => a === '1')).toHaveLength(1);
    expect(r.stderr).toMatch(/1 of 401 row\(s\) not scored.*: not-a-number 1/);
  });

  it('eddy detect runs a rule written for device messages (docs/contract.md section 5 shape) on the CSV columns, and exits 3 when no row is usable', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'eddy-cli-'));
    writeFileSync(path.join(dir, 'rule.json'), JSON.stringify({
      kind: 'anomaly', where: 'machine.temperature > 0', groupBy: ['$deviceId'], timestamp: 'timeCreated',
      value: 'machine.temperature', detector: { type: 'threshold', above: 90 }, cooldown: '1m', output: 'alerts',
    }));
    const values = [20, 95, 30, 90, 91, 50, 100, 89];
    const csv = ['timestamp,value', ...values.map((v, i) => `2026-11-26 03:${String(i * 5).padStart(2, '0')}:00,${v}`)].join('\n') + '\n';
    writeFileSync(path.join(dir, 'in.csv'), csv);
    const run = (csvFile: string) => spawnSync(process.execPath, [CLI, 'detect', '--rule', path.join(dir, 'rule.json'), '--csv', csvFile], { encoding: 'utf8' });
    const r = run(path.join(dir, 'in.csv'));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const alerts = r.stdout.trim().split('\n').slice(1).map((l) => Number(l.split(',')[3]));
    expect(alerts).toEqual(values.map((v) => (v > 90 ? 1 : 0)));

    writeFileSync(path.join(dir, 'bad.csv'), 'timestamp,value\nyesterday,1\n2026-11-26 03:00:00,21.5 °C\n');
    const bad = run(path.join(dir, 'bad.csv'));
    expect(bad.status).toBe(3);
    expect(bad.stdout.trim().split('\n')).toHaveLength(3);
    expect(bad.stderr).toMatch(/2 of 2 row\(s\) not scored.*: bad-timestamp 1, not-a-number 1/);
    expect(bad.stderr).toMatch(/no row could be scored/);
    expect(execFileSync(process.execPath, [CLI, 'detect', '--help'], { encoding: 'utf8' })).toMatch(/3 no row could be scored/);
  });

  it('prints usage for --help and fails with 2 on an unknown command', () => {
    expect(execFileSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' })).toMatch(/eddy detect --rule FILE --csv FILE/);
    expect(spawnSync(process.execPath, [CLI, 'bogus']).status).toBe(2);
  });

  it('--version prints package.json\'s version; every command has --help; flag errors name the flag (built)', () => {
    const pkg = JSON.parse(readFileSync(path.resolve(import.meta.dirname, '../../../package.json'), 'utf8')) as { version: string };
    expect(execFileSync(process.execPath, [CLI, '--version'], { encoding: 'utf8' })).toBe(`${pkg.version}\n`);
    for (const cmd of ['run', 'validate', 'detect']) expect(execFileSync(process.execPath, [CLI, cmd, '--help'], { encoding: 'utf8' })).toMatch(new RegExp(`^usage: eddy ${cmd} `));
    const missing = spawnSync(process.execPath, [CLI, 'run', '--rules'], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/Option '--rules <value>' argument missing/);
    const unknown = spawnSync(process.execPath, [CLI, 'validate', '--bogus', 'x.json'], { encoding: 'utf8' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/Unknown option '--bogus'/);
    // `eddy start` takes no flags: the module reads its environment.
    expect(spawnSync(process.execPath, [CLI, 'start', '--rules', 'x'], { encoding: 'utf8' }).status).toBe(2);
  });

  it('eddy run over stdin (built): outputs as local mode prints them, the summary on stderr', () => {
    const rules = path.resolve(import.meta.dirname, '../../../rules/default.json');
    const body = (t: number, temp: number): string => JSON.stringify({ $deviceId: 'd1', machine: { temperature: temp, pressure: 1 }, ambient: { temperature: 20, humidity: 25 }, timeCreated: new Date(Date.UTC(2026, 0, 1) + t).toISOString() });
    const input = [body(0, 20), body(30_000, 21), body(70_000, 22)].join('\n');
    const r = spawnSync(process.execPath, [CLI, 'run', '--rules', rules], { input, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    // machine1m and ambient1m, for 00:00 (closed by the third message) and 00:01 (emitted at the end).
    expect(lines).toHaveLength(4);
    for (const l of lines) expect(Object.keys(l)).toEqual(['output', 'properties', 'body']);
    expect(r.stderr).toMatch(/^eddy run: 3 message\(s\) read, 3 event\(s\)\n/);
  });
});
