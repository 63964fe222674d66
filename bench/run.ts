/**
 * `npm run bench` (docs/performance.md "Reproduce"): every benchmark of eddy in one run of about five minutes on two cores,
 * each figure beside a baseline measured in the same run (the machine is shared and noisy, so only
 * ratios carry over). Prints one markdown table and writes bench/results.json (machine, versions,
 * every figure with its baseline and ratio).
 *
 *   npm run bench                 # builds dist/ first (the end-to-end section runs dist/main.js)
 *   npm run bench -- --quick      # shorter passes, to check the harness
 *   npm run bench -- --no-build --only engine,memory
 *
 * Sections, each in its own process: engine alone (bench/engineThroughput.ts), expressions
 * (bench/expressions.bench.ts), outbox and input log (bench/outbox.bench.ts), end to end and latency
 * through the real SDK (bench/endToEnd.ts), memory (bench/memory.ts, with --expose-gc).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, ROOT_DIR, row, runSection, type Row } from './harness.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyArg = argv.indexOf('--only');
const only = onlyArg >= 0 ? new Set(argv[onlyArg + 1]!.split(',')) : null;
const want = (s: string): boolean => only === null || only.has(s);
const q = quick ? ['--quick'] : [];

function version(pkg: string, from = ROOT_DIR): string {
  try {
    return (JSON.parse(readFileSync(join(from, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

/** Runs a stand-alone bench script (one that writes its own JSON) to completion. */
function runScript(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(BENCH_DIR, script)], { cwd: ROOT_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${script} exited with ${code}`))));
  });
}

async function expressions(): Promise<Row[]> {
  await runScript('expressions.bench.ts');
  const res = JSON.parse(readFileSync(join(BENCH_DIR, 'expressions.bench.json'), 'utf8')) as { expression: string; rows: Array<{ name: string; opsPerSec: number }> };
  const base = res.rows[0]!;
  return res.rows.map((r) => {
    const target = r.name === 'eddy compilePredicate' ? { target: 'within 10× of a closure', pass: base.opsPerSec / r.opsPerSec <= 10 } : {};
    return row('expressions', r.name, r.opsPerSec, 'evals/s', base.name, base.opsPerSec, { ...target, ...(r.name.includes('select') ? {} : { note: `\`${res.expression}\`` }) });
  });
}

async function outbox(): Promise<Row[]> {
  await runScript('outbox.bench.ts');
  const res = JSON.parse(readFileSync(join(BENCH_DIR, 'results', 'outbox.json'), 'utf8')) as { results: Record<string, { perSecond: number; ratio: number; baseline: string }> };
  const rows: Row[] = [];
  for (const [name, r] of Object.entries(res.results)) {
    // outbox.bench.ts stores ratio as baseline rate / this rate.
    rows.push(row('outbox and input log', name, r.perSecond, '/s', r.baseline, r.perSecond * r.ratio));
  }
  const decode = res.results['input log append (per input) / decode only (JSON.parse of the body)'];
  const both = res.results['input log append (per input) / decode + file log'];
  if (decode && both) {
    // main.ts has no durable/non-durable switch: every input is logged before its PUBACK, so the
    // figure asked for is the log's share of the per-input work it sits beside.
    const share = 1 - both.perSecond / decode.perSecond;
    rows.push(row('outbox and input log', 'input-log append, share of (decode + append) per input', share * 100, '%', 'decode + append', 100, { note: 'main.ts always logs inputs (no non-durable switch)' }));
  }
  return rows;
}

const started = Date.now();
const load0 = loadavg();
if (!argv.includes('--no-build') && want('e2e')) {
  try {
    execFileSync('npm', ['run', 'build'], { cwd: ROOT_DIR, stdio: 'ignore' });
  } catch {
    // tsc still emits when another file has a type error; the section checks dist/main.js itself.
    process.stderr.write('npm run build reported errors; using dist/ as emitted\n');
  }
}

const rows: Row[] = [];
const sections: Array<[string, () => Promise<Row[]>]> = [
  ['engine', () => runSection('engineThroughput.ts', q, [], 600_000)],
  ['expressions', expressions],
  ['outbox', outbox],
  ['e2e', () => runSection('endToEnd.ts', q, [], 600_000)],
  ['memory', () => runSection('memory.ts', q, ['--expose-gc'])],
  ['idle', () => runSection('idleRss.ts', quick ? ['--reps', '1'] : [])],
];
const failures: string[] = [];
for (const [name, fn] of sections) {
  if (!want(name)) continue;
  const t0 = Date.now();
  process.stderr.write(`bench: ${name}...\n`);
  try {
    rows.push(...(await fn()));
  } catch (err) {
    failures.push(`${name}: ${(err as Error).message}`);
  }
  process.stderr.write(`bench: ${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}

const fmt = (v: number, unit: string): string => {
  if (!Number.isFinite(v)) return String(v);
  if (unit === 'ms' || unit === '%') return v < 10 ? v.toFixed(2) : v.toFixed(1);
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return v.toFixed(v < 10 ? 2 : 1);
};
const lines = [
  '| Section | Figure | Value | Baseline (same run) | Ratio | Target |',
  '|---|---|---:|---|---:|---|',
  ...rows.map((r) => `| ${r.section} | ${r.name}${r.note ? ` (${r.note})` : ''} | ${fmt(r.value, r.unit)} ${r.unit} | ${r.baseline}: ${fmt(r.baselineValue, r.unit === 'MB heap' ? 'MB' : r.unit)} | ${Number.isFinite(r.ratio) ? r.ratio.toFixed(r.ratio < 0.1 ? 4 : 2) : '–'} | ${r.target ? `${r.pass ? '✅' : '❌'} ${r.target}` : ''} |`),
];
const machine = {
  cpus: cpus().length,
  model: cpus()[0]?.model ?? 'unknown',
  memoryGB: +(totalmem() / 2 ** 30).toFixed(1),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  loadAverageAtStart: load0.map((x) => +x.toFixed(2)),
  loadAverageAtEnd: loadavg().map((x) => +x.toFixed(2)),
};
const packages = Object.fromEntries(
  ['rxjs', 'mathjs', 'better-sqlite3', 'azure-iot-device', 'azure-iot-device-mqtt', 'azure-iot-mqtt-base', 'aedes', 'mqtt', 'benchmark', 'hdr-histogram-js', 'tsx'].map((p) => [p, version(p)]),
);
packages['mqtt (inside the SDK)'] = version('mqtt', join(ROOT_DIR, 'node_modules', 'azure-iot-mqtt-base'));
console.log(`\n${lines.join('\n')}\n`);
console.log(`${machine.cpus} × ${machine.model}, Node ${machine.node}; load average ${machine.loadAverageAtStart.join(' ')} at start, ${machine.loadAverageAtEnd.join(' ')} at end; ${((Date.now() - started) / 1000).toFixed(0)} s${quick ? ' (--quick)' : ''}`);
if (failures.length) console.log(`sections that failed: ${failures.join('; ')}`);
const out = join(BENCH_DIR, 'results.json');
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), quick, seconds: Math.round((Date.now() - started) / 1000), machine, packages, failures, rows, table: lines.join('\n') }, null, 2)}\n`);
console.log(`wrote ${out}${existsSync(out) ? '' : ' (failed)'}`);
process.exitCode = failures.length ? 1 : 0;
