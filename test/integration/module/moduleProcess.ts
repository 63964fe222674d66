/**
 * Runs the BUILT module (`node dist/main.js`) as a child process, the way edgeAgent does, and keeps
 * its log (pino JSON lines on stderr, docs/contract.md section 2) for assertions and for printing when a
 * test fails. Every child gets its own temp `EDDY_DATA_DIR`, metrics off, debug logs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type EdgeHubEmulator, startEdgeHubEmulator, type UpstreamMessage } from '../../helpers/edgeHubEmulator.js';

/**
 * `npm test` builds first; while developing run `npm run build` after changing src/.
 * `EDDY_TEST_MAIN` points the tests at another build (a private `tsc --outDir`), so a concurrent
 * rebuild of dist/ cannot swap files under a running test.
 */
export const DIST_MAIN = process.env.EDDY_TEST_MAIN ?? fileURLToPath(new URL('../../../dist/main.js', import.meta.url));

/** Variables that pick IoT Edge mode; the test's own environment must not leak them into a child. */
const EDGE_KEYS = [
  'IOTEDGE_WORKLOADURI', 'IOTEDGE_DEVICEID', 'IOTEDGE_MODULEID', 'IOTEDGE_MODULEGENERATIONID', 'IOTEDGE_IOTHUBHOSTNAME',
  'IOTEDGE_GATEWAYHOSTNAME', 'IOTEDGE_AUTHSCHEME', 'EdgeHubConnectionString', 'IotHubConnectionString', 'EdgeModuleCACertificateFile',
];

/** One parsed pino line. */
export type LogLine = Record<string, unknown> & { level: string | number; msg?: string };

export interface ModuleProcess {
  readonly child: ChildProcess;
  readonly dataDir: string;
  /** Raw stderr + stdout lines, in arrival order (printed when a test fails). */
  readonly raw: string[];
  /** The JSON log lines so far (grows as the child logs). */
  readonly logs: readonly LogLine[];
  /** Resolves with the first log line (past or future) matching `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs: number, what?: string): Promise<LogLine>;
  /** Resolves with the exit code and signal once the child has exited. */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly exited: boolean;
}

/** Children and data dirs of the current test, cleaned by `cleanupModules`. */
const live: ModuleProcess[] = [];
const dirs: string[] = [];

/** A fresh temp dir (a data dir, rules), removed by `cleanupModules`. */
export function tempDataDir(prefix = 'eddy-module-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/**
 * Spawns `node dist/main.js` with `edgeEnv` (from `emu.moduleEnv(m)` or `emu.connectionStringEnv(m)`)
 * plus `extra`. Does not wait for anything: see `waitUntilRunning`.
 */
export function spawnModule(edgeEnv: Record<string, string>, opts: { dataDir?: string; extra?: Record<string, string> } = {}): ModuleProcess {
  if (!existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: run "npm run build" (npm test does it first)`);
  const dataDir = opts.dataDir ?? tempDataDir();
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of EDGE_KEYS) delete env[k];
  for (const k of Object.keys(env)) if (k.startsWith('EDDY_')) delete env[k];
  Object.assign(env, edgeEnv, { EDDY_DATA_DIR: dataDir, EDDY_METRICS_PORT: '0', EDDY_LOG_LEVEL: 'debug' }, opts.extra ?? {});
  const child = spawn(process.execPath, [DIST_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const raw: string[] = [];
  const parsed: LogLine[] = [];
  const waiters = new Set<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  const onLine = (line: string): void => {
    if (line === '') return;
    raw.push(line);
    let l: LogLine;
    try {
      l = JSON.parse(line) as LogLine;
    } catch {
      return;
    }
    parsed.push(l);
    for (const w of [...waiters]) {
      if (w.pred(l)) {
        waiters.delete(w);
        w.resolve(l);
      }
    }
  };
  for (const stream of [child.stdout!, child.stderr!]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }
  let exitedFlag = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      raw.push(`[child exited: code ${code} signal ${signal}]`);
      resolve({ code, signal });
    }),
  );
  const mp: ModuleProcess = {
    child,
    dataDir,
    raw,
    logs: parsed,
    exit,
    get exited() {
      return exitedFlag;
    },
    waitForLog: (pred, timeoutMs, what = 'log line') => {
      const found = parsed.find(pred);
      if (found) return Promise.resolve(found);
      if (exitedFlag) return Promise.reject(new Error(`module exited before ${what}`));
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (l: LogLine) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`module: no ${what} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(w);
        void exit.then(() => {
          if (!waiters.delete(w)) return;
          clearTimeout(timer);
          reject(new Error(`module exited before ${what}`));
        });
      });
    },
  };
  live.push(mp);
  return mp;
}

/**
 * Waits until the module is connected, subscribed (main.ts logs "eddy connected to edgeHub" after
 * `open()`, which waits for the SUBACKs) and has reported the twin it read at start: from then on
 * inputs, methods and desired patches reach it.
 */
export async function waitUntilRunning(emu: EdgeHubEmulator, moduleId: string, mp: ModuleProcess, timeoutMs = 20_000): Promise<void> {
  await mp.waitForLog((l) => l.msg === 'eddy connected to edgeHub', timeoutMs, '"eddy connected to edgeHub"');
  await waitUntil(() => (emu.twin(moduleId).reported as { eddy?: { startedAt?: string } }).eddy?.startedAt !== undefined, timeoutMs, 'first reported patch');
}

/** Spawn + waitUntilRunning. */
export async function startModule(emu: EdgeHubEmulator, moduleId: string, opts: { dataDir?: string; extra?: Record<string, string> } = {}): Promise<ModuleProcess> {
  const mp = spawnModule(emu.moduleEnv(moduleId), opts);
  await waitUntilRunning(emu, moduleId, mp);
  return mp;
}

/** SIGTERM, then SIGKILL if the child has not exited within `graceMs`. */
export async function stopModule(mp: Pick<ModuleProcess, 'child' | 'exit' | 'exited'>, graceMs = 10_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (!mp.exited) mp.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!mp.exited) mp.child.kill('SIGKILL');
  }, graceMs);
  try {
    return await mp.exit;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * For `afterEach`: prints the logs of every child of the test when it failed (only the last
 * `tailLines` of each when given: a kill test runs 21 processes with debug logs), SIGKILLs the ones
 * still running, and removes the temp dirs. `EDDY_TEST_LOG_DIR` keeps every child's whole log there,
 * one file per process in spawn order, pass or fail.
 */
export async function cleanupModules(failed: boolean, opts: { tailLines?: number } = {}): Promise<void> {
  const all = live.splice(0);
  const keep = process.env.EDDY_TEST_LOG_DIR;
  if (keep) {
    mkdirSync(keep, { recursive: true });
    for (const [i, mp] of all.entries()) writeFileSync(join(keep, `child-${String(i).padStart(2, '0')}-${mp.child.pid}.log`), `${mp.raw.join('\n')}\n`);
  }
  if (failed) {
    for (const [i, mp] of all.entries()) {
      // The child's log is the first thing to read when a test fails.
      const lines = opts.tailLines === undefined ? mp.raw : mp.raw.slice(-opts.tailLines);
      console.error(`----- module child #${i} (pid ${mp.child.pid}) log${opts.tailLines === undefined ? '' : ' tail'} -----\n${lines.join('\n')}\n----- end -----`);
    }
  }
  await Promise.all(
    all.map(async (mp) => {
      if (!mp.exited) mp.child.kill('SIGKILL');
      await mp.exit;
    }),
  );
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * The edgeHub emulator of a `describe` block and the module children its tests start, in one line
 * (call it inside the block): the emulator starts before the first test and is handed to `set`, and
 * closes after the last; after each test, `opts.afterEach` runs (a listener to remove, a delay to
 * reset), then `cleanupModules` (the children's logs printed when the test failed, `opts.tailLines`
 * of each when given).
 */
export function useEmulator(set: (emu: EdgeHubEmulator) => void, opts: { tailLines?: number; afterEach?: (emu: EdgeHubEmulator) => void } = {}): void {
  let emu: EdgeHubEmulator | undefined;
  beforeAll(async () => {
    emu = await startEdgeHubEmulator();
    set(emu);
  });
  afterAll(async () => {
    await emu?.close();
  });
  afterEach(async (ctx) => {
    if (emu !== undefined) opts.afterEach?.(emu);
    await cleanupModules(ctx.task.result?.state === 'fail', opts.tailLines === undefined ? {} : { tailLines: opts.tailLines });
  });
}

/** Polls `cond` every 25 ms; rejects after `timeoutMs`. */
export async function waitUntil(cond: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Upstream messages from `moduleId` on `output`. */
export function upstreamOf(emu: EdgeHubEmulator, moduleId: string, output?: string): UpstreamMessage[] {
  return emu.upstream.filter((m) => m.moduleId === moduleId && (output === undefined || m.output === output));
}

/** Waits until at least `n` upstream messages from `moduleId` match `pred`; returns all that match. */
export async function waitForUpstreamCount(emu: EdgeHubEmulator, moduleId: string, pred: (m: UpstreamMessage) => boolean, n: number, timeoutMs: number): Promise<UpstreamMessage[]> {
  await waitUntil(() => upstreamOf(emu, moduleId).filter(pred).length >= n, timeoutMs, `${n} upstream messages from ${moduleId}`);
  return upstreamOf(emu, moduleId).filter(pred);
}

/** Parsed JSON body of an upstream message. */
export function bodyOf<T = Record<string, unknown>>(m: UpstreamMessage): T {
  return JSON.parse(m.body.toString('utf8')) as T;
}

/** Records a snapshot of the module's reported properties after every reported PATCH the emulator merges. */
export function recordReported(emu: EdgeHubEmulator, moduleId: string): Array<Record<string, unknown>> {
  const seen: Array<Record<string, unknown>> = [];
  emu.on('reported', (e: { moduleId: string }) => {
    if (e.moduleId === moduleId) seen.push(structuredClone(emu.twin(moduleId).reported));
  });
  return seen;
}
