import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCompile } from '../../../src/cli/compile.js';
import { runValidate } from '../../../src/cli/validate.js';

/*
 * `eddy compile QUERY.asaql` (docs/asa-migration.md): prints the rule set, which `eddy validate`
 * accepts; errors as FILE:LINE:COLUMN: MESSAGE, with the exit codes of `eddy validate`.
 */
function capture(fn: (io: { stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown } }) => number) {
  let out = '';
  let err = '';
  const code = fn({ stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
  return { code, out, err };
}

function file(name: string, text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'eddy-compile-'));
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

describe('eddy compile', () => {
  it('prints a rule set that eddy validate accepts', () => {
    const q = file('q.asaql', `SELECT IoTHub.ConnectionDeviceId, AVG(machine.temperature) AS avgT
INTO summaries FROM telemetry TIMESTAMP BY timeCreated
GROUP BY IoTHub.ConnectionDeviceId, TumblingWindow(Duration(second, 30), Offset(millisecond, -1))
HAVING AVG(machine.temperature) > 70`);
    const r = capture((io) => runCompile([q], io));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const rules = JSON.parse(r.out) as Record<string, unknown>;
    expect(rules).toEqual({
      summaries: {
        kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated',
        window: { type: 'tumbling', size: 30_000, bounds: '(]', offset: -1 },
        select: { avgT: 'avg(machine.temperature)' }, having: '(avgT > 70)',
        row: { ConnectionDeviceId: { group: '$deviceId' }, avgT: { select: 'avgT' } },
        output: 'summaries', nulls: 'skip',
      },
    });
    const v = capture((io) => runValidate([file('rules.json', r.out)], io));
    expect(v.code).toBe(0);
  });

  it('a syntax error: FILE:LINE:COLUMN naming the token, exit 1, nothing on stdout', () => {
    const q = file('bad.asaql', 'SELECT a\nFROM x JOIN y ON x.a = y.a');
    const r = capture((io) => runCompile([q], io));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(`${q}:2:8: JOIN is not supported at the edge (eddy reads the subset of docs/asa-migration.md)\n`);
  });

  it('an unsupported construct: named, with its line and column, exit 1', () => {
    const q = file('lag.asaql', 'SELECT\n  LAG(t) OVER (LIMIT DURATION(minute, 1)) AS prev, COUNT(*) AS n\nINTO o FROM i GROUP BY TumblingWindow(second, 30)');
    const r = capture((io) => runCompile([q], io));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^${q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2:3: LAG outside an aggregate in the SELECT list of a statement with GROUP BY is not valid in ASA`));
  });

  it('usage errors and unreadable files exit 2; --help exits 0', () => {
    expect(capture((io) => runCompile([], io)).code).toBe(2);
    expect(capture((io) => runCompile(['--nope', 'x'], io)).code).toBe(2);
    expect(capture((io) => runCompile(['/nonexistent/q.asaql'], io)).code).toBe(2);
    const h = capture((io) => runCompile(['--help'], io));
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/usage: eddy compile FILE/);
  });
});
