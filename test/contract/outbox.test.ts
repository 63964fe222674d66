import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outboxSuite } from './outbox.suite.js';
import { MemoryOutbox } from '../../src/store/memoryOutbox.js';
import { openStore, type Store } from '../../src/store/store.js';
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
