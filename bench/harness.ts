/**
 * Shared plumbing of `npm run bench` (bench/run.ts): the row every section reports, how a section
 * running in a child process hands its rows back (one `@@rows <json>` line on stdout), and small
 * statistics. Every figure is a ratio against a baseline measured in the same run, so that the load of a shared
 * machine falls on both sides.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** One figure of the final table. `higherIsBetter` says which way the ratio to the baseline reads. */
export interface Row {
  readonly section: string;
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly baseline: string;
  readonly baselineValue: number;
  /** value / baselineValue. */
  readonly ratio: number;
  /** The row's target (docs/performance.md), in words, and whether this run met it (absent: no target on this row). */
  readonly target?: string;
  readonly pass?: boolean;
  readonly note?: string;
}

export function row(section: string, name: string, value: number, unit: string, baseline: string, baselineValue: number, extra: Partial<Pick<Row, 'target' | 'pass' | 'note'>> = {}): Row {
  return { section, name, value, unit, baseline, baselineValue, ratio: baselineValue === 0 ? NaN : value / baselineValue, ...extra };
}

/** Hands rows to bench/run.ts (or prints them when the section runs alone). */
export function report(rows: Row[]): void {
  process.stdout.write(`@@rows ${JSON.stringify(rows)}\n`);
}

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
export const ROOT_DIR = fileURLToPath(new URL('..', import.meta.url));

/**
 * Runs `bench/<script>` in a fresh Node process (through tsx's loader unless it is plain JS) and
 * returns the rows it reported. A fresh process per section keeps one section's JIT state, heap and
 * sockets out of the next one's figures.
 */
export function runSection(script: string, args: string[] = [], nodeFlags: string[] = [], timeoutMs = 240_000): Promise<Row[]> {
  return new Promise((resolve, reject) => {
    const loader = script.endsWith('.js') ? [] : ['--import', 'tsx'];
    const child = spawn(process.execPath, [...nodeFlags, ...loader, `${BENCH_DIR}${script}`, ...args], { cwd: ROOT_DIR, stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    const rows: Row[] = [];
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line.startsWith('@@rows ')) rows.push(...(JSON.parse(line.slice(7)) as Row[]));
        else if (line.trim()) process.stderr.write(`  [${script}] ${line}\n`);
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(rows);
      else reject(new Error(`${script} exited with ${code ?? signal}`));
    });
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Busy CPU time of this process in ms (user + system). */
export function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
