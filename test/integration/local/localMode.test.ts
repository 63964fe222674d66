import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../../helpers/freePort.js';
import { tmpdir } from 'node:os';
import path from 'node:path';

const MAIN = path.resolve(import.meta.dirname, '../../../dist/main.js');

interface Run {
  lines: Array<Record<string, unknown>>;
  stderr: string;
  code: number | null;
  firstSummaryMs: number | null;
}

/** Runs `node dist/main.js` in local mode until `stopAfter` summaries (or `maxMs`), then SIGINT. */
function runLocal(dataDir: string, stopAfter: number, maxMs = 30_000, extraEnv: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH, EDDY_DATA_DIR: dataDir, EDDY_METRICS_PORT: '0', EDDY_LOG_LEVEL: 'info', ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    const run: Run = { lines: [], stderr: '', code: null, firstSummaryMs: null };
    let buf = '';
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      child.kill('SIGINT');
    };
    const timer = setTimeout(stop, maxMs);
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const o = JSON.parse(line) as Record<string, unknown>;
        run.lines.push(o);
        if (o.output === 'summaries' && run.firstSummaryMs === null) run.firstSummaryMs = Date.now() - started;
        if (run.lines.filter((l) => l.output === 'summaries').length >= stopAfter) stop();
      }
    });
    child.stderr.on('data', (d: Buffer) => (run.stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      run.code = code;
      resolve(run);
    });
  });
}

describe('local mode (npm start) as a child process', () => {
  const dirs: string[] = [];
  /** A fresh data dir, removed after the test. */
  const tempDir = (prefix: string): string => {
    const d = mkdtempSync(path.join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('prints valid summary lines within 10 s, logs JSON on stderr, exits 0 on SIGINT, and resumes after a restart', async () => {
    const dir = tempDir('eddy-local-');
    const a = await runLocal(dir, 6);
    expect(a.code, a.stderr).toBe(0);
    // The contract's bound is 10 s on a quiet machine; CI shares two cores with other test files.
    expect(a.firstSummaryMs, a.stderr).not.toBeNull();
    expect(a.firstSummaryMs!).toBeLessThan(process.env.CI ? 20_000 : 10_000);
    const sums = a.lines.filter((l) => l.output === 'summaries');
    expect(sums.length).toBeGreaterThanOrEqual(6);
    for (const s of sums) {
      expect(s.properties).toMatchObject({ 'eddy-kind': 'summary', contentType: 'application/json', contentEncoding: 'utf-8' });
      const body = s.body as { rule: string; group: { deviceId: string }; window: { start: string; end: string }; count: number; values: Record<string, number>; revision: number };
      expect(['machine1m', 'ambient1m']).toContain(body.rule);
      expect((s.properties as Record<string, string>)['eddy-rule']).toBe(body.rule); // docs/contract.md section 4
      expect((s.properties as Record<string, string>).messageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(body.group.deviceId).toMatch(/^sim-\d$/);
      expect(Date.parse(body.window.end) - Date.parse(body.window.start)).toBe(60_000);
      expect(body.count).toBeGreaterThan(0);
      for (const v of Object.values(body.values)) expect(v === null || Number.isFinite(v)).toBe(true);
    }
    // stderr is pino JSON, one object per line.
    for (const l of a.stderr.trim().split('\n')) expect(() => JSON.parse(l) as unknown).not.toThrow();

    // Restart with the same data dir: the simulated event time and the open windows resume, so no
    // window is emitted twice with revision 0 and event time does not go back.
    const b = await runLocal(dir, 3);
    expect(b.code, b.stderr).toBe(0);
    const lastA = Math.max(...sums.map((s) => Date.parse((s.body as { window: { start: string } }).window.start)));
    const firstB = Math.min(...b.lines.filter((l) => l.output === 'summaries').map((s) => Date.parse((s.body as { window: { start: string } }).window.start)));
    expect(firstB).toBeGreaterThan(lastA);
    const idsA = new Set(a.lines.map((l) => (l.properties as { messageId: string }).messageId));
    for (const l of b.lines) expect(idsA.has((l.properties as { messageId: string }).messageId)).toBe(false);
  }, 90_000);

  it('keeps summarising for as long as it runs: the simulator runs event time 50x faster than the wall clock, yet no event is `future-timestamp` and every one-minute window is full', async () => {
    const dir = tempDir('eddy-local-long-');
    // 14 s of wall clock is about 12 minutes of simulated time: far past the default maxClockSkew (5m),
    // which rejected every simulated event once its clock ran 5 minutes ahead of the wall clock.
    const run = await runLocal(dir, 1_000_000, 14_000, { EDDY_LOG_LEVEL: 'debug' });
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const logs = run.stderr.trim().split('\n').map((l) => JSON.parse(l) as { reason?: string });
    expect(logs.filter((l) => l.reason === 'future-timestamp')).toEqual([]);
    const machine = run.lines
      .filter((l) => l.output === 'summaries' && (l.body as { rule: string }).rule === 'machine1m')
      .map((l) => l.body as { group: { deviceId: string }; window: { start: string }; count: number; revision: number });
    const starts = new Set(machine.map((b) => b.window.start));
    expect(starts.size, JSON.stringify(machine.slice(-3))).toBeGreaterThanOrEqual(6);
    // A 5-second sensor puts 12 readings in each one-minute window (the first window may be partial).
    const firstStart = Math.min(...[...starts].map((s) => Date.parse(s)));
    for (const b of machine) if (Date.parse(b.window.start) > firstStart && b.revision === 0) expect(b.count).toBe(12);
  }, 60_000);

  it('an EDDY_RULES_FILE that cannot be read, is not JSON or is not a rule set stops the module at start: exit 1, nothing on stdout, the reason (with line and column) in a fatal log line', async () => {
    const dir = tempDir('eddy-local-badfile-');
    writeFileSync(path.join(dir, 'syntax.json'), '{\n  "a": {"kind": "aggregate"},\n}\n');
    writeFileSync(path.join(dir, 'array.json'), '[]');
    const files: Array<[string, RegExp]> = [
      [path.join(dir, 'no-such-rules.json'), /ENOENT/],
      [path.join(dir, 'syntax.json'), /line 3 column 1: JSON syntax/],
      [path.join(dir, 'array.json'), /not an array/],
    ];
    for (const [file, why] of files) {
      const started = Date.now();
      const r = await runLocal(dir, 1, 20_000, { EDDY_RULES_FILE: file });
      expect(r.code, r.stderr).toBe(1);
      // It exited by itself, well before runLocal's SIGINT.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(r.lines).toEqual([]);
      const logs = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string; errors?: string[] });
      const fatal = logs.find((l) => l.level === 'fatal');
      expect(fatal?.msg, r.stderr).toContain(`rules file ${file} is not a usable rule set`);
      expect(fatal?.msg).toContain(`eddy validate ${file}`);
      expect(fatal?.errors?.join(' ')).toMatch(why);
      expect(logs.some((l) => l.msg.startsWith('eddy running'))).toBe(false);
    }
  }, 90_000);

  it('a rules file whose every rule is rejected runs, but says loudly that no rule is active: a warning in the log and in /healthz', async () => {
    const dir = tempDir('eddy-local-norule-');
    const file = path.join(dir, 'rules.json');
    writeFileSync(file, JSON.stringify({ spike: { kind: 'anomaly', value: 'x', detector: { type: 'nope' } } }));
    const port = await freePort();
    const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH, EDDY_DATA_DIR: dir, EDDY_METRICS_PORT: String(port), EDDY_LOG_LEVEL: 'info', EDDY_RULES_FILE: file }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!err.includes('eddy running in local mode') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      const health = (await res.json()) as { ok: boolean; detail: { rules: number; warning?: string } };
      expect(health.detail, err).toMatchObject({ rules: 0, warning: 'no rule is active' });
      const logs = err.trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string });
      expect(logs.find((l) => l.msg.startsWith('no rule is active'))?.level, err).toBe('warn');
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  }, 60_000);

  it('npm in this folder still shows its errors (a missing script) on stderr, and keeps its run-script banner off stdout', () => {
    const root = path.resolve(import.meta.dirname, '../../..');
    const r = spawnSync('npm', ['run', 'no-such-script-eddy'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir() } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/Missing script: "no-such-script-eddy"/);
    const build = spawnSync('npm', ['run', 'build', '--', '--noEmit'], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir() } });
    expect(build.status, build.stderr).toBe(0);
    expect(build.stdout).toBe('');
    expect(build.stderr).toContain('> eddy@');
  }, 60_000);

  it('`npm start` itself, as the README runs it: stdout is output messages only (no npm banner, so `npm start | jq` works), and Ctrl-C (SIGINT to the process group) stops the module cleanly', async () => {
    const dir = tempDir('eddy-npm-start-');
    const root = path.resolve(import.meta.dirname, '../../..');
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, EDDY_DATA_DIR: dir, EDDY_METRICS_PORT: '0', EDDY_LOG_LEVEL: 'info' };
    const child = spawn('npm', ['start'], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const deadline = Date.now() + 30_000;
    while (out.split('\n').filter((l) => l.includes('"summaries"')).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    process.kill(-child.pid!, 'SIGINT');
    await exited;
    const lines = out.split('\n').filter((l) => l !== '');
    expect(lines.length, err).toBeGreaterThanOrEqual(2);
    for (const l of lines) {
      const o = JSON.parse(l) as Record<string, unknown>;
      expect(Object.keys(o)).toEqual(['output', 'properties', 'body']);
    }
    // npm's banner is on stderr (.npmrc json=true), above the module's JSON log lines.
    expect(err).toContain('> eddy@');
    const logs = err.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(logs.map((l) => l.msg)).toEqual(expect.arrayContaining(['stopping', 'stopped']));
    expect(logs.filter((l) => l.level === 'error' || l.level === 'fatal')).toEqual([]);
  }, 60_000);
});
