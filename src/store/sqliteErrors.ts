import Database from 'better-sqlite3';

/**
 * SQLite result codes that mean "the disk (or the file on it) failed us", as opposed to a bug in
 * our SQL. On these the store degrades to memory and retries later (test/integration/durability/store.test.ts).
 * Extended codes (SQLITE_IOERR_WRITE, SQLITE_READONLY_DBMOVED, ...) share the primary code's prefix.
 * See https://www.sqlite.org/rescode.html.
 */
const DISK_CODES = ['SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_CORRUPT', 'SQLITE_NOTADB', 'SQLITE_CANTOPEN', 'SQLITE_BUSY'];

/** True for a SqliteError whose code says the disk failed; the caller degrades instead of throwing. */
export function isDiskError(err: unknown): err is Database.SqliteError {
  if (!(err instanceof Database.SqliteError)) return false;
  return DISK_CODES.some((c) => err.code === c || err.code.startsWith(c + '_'));
}

/** `SQLITE_FULL: database or disk is full`, for reports. */
export function describeError(err: unknown): string {
  if (err instanceof Database.SqliteError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return err.message;
  return String(err);
}
