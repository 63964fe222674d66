import { readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';

/** Thrown by `lockDataDir` when another process holds the directory. */
export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

/** A held lock on a data dir; `release` is idempotent. */
export interface DataDirLock {
  release(): void;
}

const LOCK_FILE = 'eddy.lock';
const OWNER_FILE = 'eddy.lock.owner';

/**
 * Takes the data dir for this process (test/integration/local/localRestart.test.ts, "a second process": two processes on one `EDDY_DATA_DIR`, a second
 * `npm start` or two containers sharing the named volume, both replayed and wrote the same log and outbox).
 *
 * The lock is SQLite's own: `<dir>/eddy.lock` opened with `locking_mode=EXCLUSIVE` and written once,
 * so this connection keeps the file's EXCLUSIVE lock until it closes (https://sqlite.org/pragma.html#pragma_locking_mode).
 * On Unix that is a POSIX advisory lock (fcntl) held by the kernel for this process, which is why:
 * - it works between containers that share the volume: the kernel sees one inode, whatever the PID
 *   namespaces (two containers can both be pid 1, so a pid file with a liveness check cannot tell
 *   them apart);
 * - a process killed by SIGKILL or the OOM killer loses it with its file descriptors: a stale lock
 *   is taken over by the next start with no liveness check at all.
 * It does not protect a data dir on a network file system whose locks are not shared between the
 * hosts (some NFS/SMB setups): eddy's SQLite store needs a local file system anyway (WAL).
 *
 * `<dir>/eddy.lock.owner` records who holds it (pid, host, since), for the refusal's message only.
 */
export function lockDataDir(dir: string, now: number): DataDirLock {
  const file = join(dir, LOCK_FILE);
  // timeout 0: a held lock answers SQLITE_BUSY at once instead of after busy_timeout.
  const db = new Database(file, { timeout: 0 });
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER, host TEXT, since TEXT)');
    db.exec('COMMIT');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED') {
      let owner = '';
      try {
        owner = readFileSync(join(dir, OWNER_FILE), 'utf8').trim();
      } catch {
        /* no owner record: the message says less */
      }
      throw new DataDirLockedError(`EDDY_DATA_DIR ${dir} is in use by another eddy process${owner === '' ? '' : ` (${owner})`}; two processes must not share a data dir`);
    }
    throw err;
  }
  try {
    writeFileSync(join(dir, OWNER_FILE), `pid ${process.pid} on host ${hostname()} since ${new Date(now).toISOString()}\n`);
  } catch {
    /* informative only */
  }
  let held = true;
  return {
    release: () => {
      if (!held) return;
      held = false;
      db.close();
    },
  };
}
