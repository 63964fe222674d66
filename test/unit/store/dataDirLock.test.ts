import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLockedError, lockDataDir } from '../../../src/store/dataDirLock.js';

/** Tries the lock from another process (POSIX locks are per process): 'locked', 'taken', or the error. */
function tryInChild(dir: string): string {
  const code = `
    const Database = require('better-sqlite3');
    const db = new Database(${JSON.stringify(join(dir, 'eddy.lock'))}, { timeout: 0 });
    try { db.pragma('locking_mode = EXCLUSIVE'); db.exec('BEGIN EXCLUSIVE'); db.exec('COMMIT'); console.log('taken'); }
    catch (e) { console.log(e.code === 'SQLITE_BUSY' ? 'locked' : String(e)); }`;
  return spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', cwd: process.cwd() }).stdout.trim();
}

describe('lockDataDir', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const temp = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'eddy-lock-'));
    dirs.push(d);
    return d;
  };

  it('holds the dir against another process until released', () => {
    const dir = temp();
    const lock = lockDataDir(dir, 0);
    expect(tryInChild(dir)).toBe('locked');
    lock.release();
    expect(tryInChild(dir)).toBe('taken');
  });

  it('a second lock in the same process is refused with the holder named', () => {
    const dir = temp();
    const lock = lockDataDir(dir, Date.UTC(2026, 0, 1));
    let err: unknown;
    try {
      lockDataDir(dir, 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DataDirLockedError);
    expect((err as Error).message).toMatch(new RegExp(`in use by another eddy process \\(pid ${process.pid} on host .* since 2026-01-01T00:00:00.000Z\\)`));
    lock.release();
    lockDataDir(dir, 0).release();
  });
});
