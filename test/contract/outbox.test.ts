import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeMessage, outboxSuite } from './outbox.suite.js';
import { MemoryOutbox } from '../../src/store/memoryOutbox.js';
import { openDatabase, openStore, type Store } from '../../src/store/store.js';
import { SqliteOutbox } from '../../src/store/sqliteOutbox.js';
import type { Outbox } from '../../src/contracts/store.js';

outboxSuite('MemoryOutbox', () => new MemoryOutbox());

// SqliteOutbox behind a real store on a real file in a temp dir.
const stores = new Map<Outbox, { store: Store; dir: string }>();
outboxSuite(
  'SqliteOutbox (store on a real file)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'eddy-outbox-'));
    const store = openStore(dir, { log: silentLog, clock: { now: () => 0 } });
    stores.set(store.outbox, { store, dir });
    return store.outbox;
  },
  (o) => {
    const s = stores.get(o)!;
    s.store.close();
    rmSync(s.dir, { recursive: true, force: true });
    stores.delete(o);
  },
);

const silentLog = { info: () => {}, warn: () => {}, error: () => {} };

// The bare SqliteOutbox on a migrated database, without the store's degrade/budget wrapper.
const raw = new Map<Outbox, { db: ReturnType<typeof openDatabase>; dir: string }>();
outboxSuite(
  'SqliteOutbox (bare)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'eddy-outbox-raw-'));
    const db = openDatabase(join(dir, 'eddy.db'));
    const o = new SqliteOutbox(db);
    raw.set(o, { db, dir });
    return o;
  },
  (o) => {
    const s = raw.get(o)!;
    s.db.close();
    rmSync(s.dir, { recursive: true, force: true });
    raw.delete(o);
  },
);

// The store's outbox after the disk filled up: the degraded (memory) path behind the same
// wrapper must keep the same contract. max_page_count 1 caps the file at its current size; filler
// appends then hit SQLITE_FULL for real and are removed again, leaving an empty, degraded outbox.
outboxSuite(
  'store outbox degraded to memory (SQLITE_FULL)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'eddy-outbox-full-'));
    const store = openStore(dir, { log: silentLog, clock: { now: () => 0 }, maxPageCount: 1, retryMs: Number.MAX_SAFE_INTEGER });
    for (let n = 0; !store.degraded; n++) {
      if (n > 10_000) throw new Error('the store never filled up');
      store.outbox.append([makeMessage(n)]);
    }
    store.outbox.remove(store.outbox.peek(100_000).map((r) => r.seq));
    stores.set(store.outbox, { store, dir });
    return store.outbox;
  },
  (o) => {
    const s = stores.get(o)!;
    // It must have stayed degraded for the whole test, or the test proved nothing about memory mode.
    const degraded = s.store.degraded;
    s.store.close();
    rmSync(s.dir, { recursive: true, force: true });
    stores.delete(o);
    if (!degraded || !degraded.error.includes('SQLITE_FULL')) throw new Error('store was not degraded by SQLITE_FULL');
  },
);
