import { afterEach } from 'vitest';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Local mode (`node dist/main.js`, the simulated sensor) as real child processes, for the tests under
 * test/integration/local/: start one, read its output lines and JSON logs, wait for a condition. Every
 * process and temp dir a test made is killed and removed after it (the `afterEach` is registered by
 * importing this module). `EDDY_TEST_MAIN` points the tests at another build (e.g. an older one, to
 * see a test fail on it).
 */

const MAIN = path.resolve(import.meta.dirname, '../../dist/main.js');

/** One output line as local mode prints it. */
export interface Line {
  output: string;
  properties: Record<string, string>;
  body: Record<string, unknown> & { rule: string; group: { deviceId: string } };
}

export interface Local {
  child: ChildProcess;
  lines: Line[];
  stderr: string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: boolean;
}

const children: Local[] = [];
const dirs: string[] = [];

/** A fresh temp dir, removed after the test. */
export const tempDir = (prefix: string): string => {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts local mode on `dataDir` (metrics off, info logs), collecting stdout lines and stderr. */
export function startLocal(dataDir: string, extraEnv: Record<string, string> = {}): Local {
  const child = spawn(process.execPath, [process.env.EDDY_TEST_MAIN ?? MAIN], {
    env: { PATH: process.env.PATH, EDDY_DATA_DIR: dataDir, EDDY_METRICS_PORT: '0', EDDY_LOG_LEVEL: 'info', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const l: Local = { child, lines: [], stderr: '', exited: false, exit: null as unknown as Local['exit'] };
  l.exit = new Promise((resolve) => child.once('exit', (code, signal) => {
    l.exited = true;
    resolve({ code, signal });
  }));
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line !== '') l.lines.push(JSON.parse(line) as Line);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (l.stderr += d.toString()));
  children.push(l);
  return l;
}

/** Resolves once `pred` holds; throws after `ms` naming `what`. */
export async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The process's stderr as the logger's JSON lines. */
export const logs = (l: Local): Array<{ level: string; msg: string } & Record<string, unknown>> =>
  l.stderr.trim().split('\n').filter((s) => s !== '').map((s) => JSON.parse(s) as { level: string; msg: string });

afterEach(async () => {
  for (const c of children.splice(0)) {
    if (!c.exited) c.child.kill('SIGKILL');
    await c.exit;
  }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
