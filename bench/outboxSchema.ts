/**
 * The outbox's schema 6 (AUTOINCREMENT, a `(kind, seq)` index) against schema 7 (seqs handed out
 * by SqliteOutbox, a partial index on summaries only; src/store/migrations.ts), same code, same
 * process, alternated rounds (docs/performance.md, "Input → alert latency"):
 *
 * - per alert: one append transaction and one remove, as the forwarder makes them at 500 alerts/s
 *   (CPU time of this process, the median of the rounds);
 * - over budget on a large outbox (an outage's backlog: `--rows` alerts ahead of as many summaries,
 *   the worst case for a drop by kind without an index on alerts): one `enforce` that drops the
 *   oldest summary, as after every append over budget.
 *
 *   npx tsx bench/outboxSchema.ts [--rows 100000] [--rounds 9]
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutputMessage } from '../src/contracts/output.js';
import { MIGRATIONS, migrate } from '../src/store/migrations.js';
import { SqliteOutbox } from '../src/store/sqliteOutbox.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => (argv.includes(name) ? Number(argv[argv.indexOf(name) + 1]) : dflt);
const ROWS = arg('--rows', 100_000);
const ROUNDS = arg('--rounds', 9);
const PER_ROUND = 2_000;
const root = mkdtempSync(join(tmpdir(), 'eddy-bench-schema-'));

let n = 0;
function message(kind: 'alert' | 'summary'): OutputMessage {
  const i = n++;
  const body = kind === 'alert' ? { rule: 'inputToAlert', group: { deviceId: `dev${i % 100}` }, state: 'raised', value: 1000 + i, at: '2026-11-26T03:00:00.000Z' } : { rule: 'machine1m', group: { deviceId: `dev${i % 100}` }, window: { type: 'tumbling', start: '2026-11-26T03:00:00.000Z', end: '2026-11-26T03:01:00.000Z' }, count: 12, values: { avg: 57.1, min: 50.2, max: 63.9 }, revision: 0 };
  return { id: `0f3a9c4e-${String(i).padStart(4, '0')}-4000-8000-${String(i).padStart(12, '0')}`, output: kind === 'alert' ? 'alerts' : 'summaries', kind, rule: body.rule, groupKey: `dev${i % 100}`, createdAt: 1_764_126_000_000 + i, body };
}

function open(version: number): { db: Database.Database; outbox: SqliteOutbox } {
  const dir = mkdtempSync(join(root, `v${version}-`));
  const db = new Database(join(dir, 'eddy.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  migrate(db, MIGRATIONS.slice(0, version));
  return { db, outbox: new SqliteOutbox(db) };
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const stores = [6, 7].map((v) => ({ v, ...open(v), alert: [] as number[], drop: [] as number[] }));
for (const s of stores) {
  for (let b = 0; b < ROWS; b += 1000) s.outbox.append(Array.from({ length: 1000 }, () => message('alert')));
  for (let b = 0; b < ROWS; b += 1000) s.outbox.append(Array.from({ length: 1000 }, () => message('summary')));
}
for (let round = 0; round < ROUNDS; round++) {
  for (const s of round % 2 === 0 ? stores : [...stores].reverse()) {
    let t = cpuUs();
    for (let i = 0; i < PER_ROUND; i++) {
      s.outbox.append([message('alert')]);
      s.outbox.remove([s.outbox.lastSeq()]);
    }
    s.alert.push((cpuUs() - t) / PER_ROUND);
    // Over budget by one byte: the oldest summary goes (and a new one takes its place, for the next round).
    const limits = { maxBytes: s.outbox.pendingBytes() - 1, ttlMs: 0 };
    t = cpuUs();
    const d = s.outbox.enforce(0, limits);
    s.drop.push(cpuUs() - t);
    if (d.budget.summary !== 1 || d.budget.alert !== 0) throw new Error(`schema ${s.v}: expected one summary dropped, got ${JSON.stringify(d.budget)}`);
    s.outbox.append([message('summary')]);
  }
}
const [v6, v7] = stores as [(typeof stores)[0], (typeof stores)[0]];
console.log(`outbox of ${ROWS} alerts ahead of ${ROWS} summaries; medians of ${ROUNDS} alternated rounds`);
console.log(`append + remove of one alert: schema 6 ${median(v6.alert).toFixed(1)} µs CPU, schema 7 ${median(v7.alert).toFixed(1)} µs (${(median(v7.alert) / median(v6.alert)).toFixed(2)}×)`);
console.log(`enforce dropping the oldest summary: schema 6 ${median(v6.drop).toFixed(0)} µs CPU, schema 7 ${median(v7.drop).toFixed(0)} µs`);
for (const s of stores) s.db.close();
rmSync(root, { recursive: true, force: true });
