/* eslint-disable @typescript-eslint/no-require-imports */
/* global require */
'use strict';
/*
 * Preloaded into the built module (`NODE_OPTIONS=--require <this file>`) by black-box tests that need a
 * SIGKILL at one chosen point: the process kills itself (SIGKILL, no handler runs) when a whole
 * checkpoint starts to be written (src/store/store.ts `saveCheckpoint`, whose transaction begins with
 * `DELETE FROM rule_state`) after an output was stored in the outbox. In a test that sends readings into
 * an open window and then removes or changes the rule through the twin, that is the checkpoint of the
 * rules change, after the outputs the change emitted were committed (src/app/checkpointer.ts `saveNow`).
 * Nothing of the module is changed: better-sqlite3's statements are wrapped from outside.
 */
const Database = require('better-sqlite3');

let outputStored = false;
const prepare = Database.prototype.prepare;
Database.prototype.prepare = function (sql, ...rest) {
  const stmt = prepare.call(this, sql, ...rest);
  const text = String(sql).trim();
  if (text.startsWith('INSERT INTO outbox ')) {
    const run = stmt.run;
    stmt.run = function (...args) {
      outputStored = true;
      return run.apply(this, args);
    };
  } else if (text === 'DELETE FROM rule_state') {
    const run = stmt.run;
    stmt.run = function (...args) {
      if (outputStored) {
        process.stderr.write('{"level":50,"msg":"test preload: SIGKILL at the checkpoint after an output was stored"}\n');
        process.kill(process.pid, 'SIGKILL');
      }
      return run.apply(this, args);
    };
  }
  return stmt;
};
