/* eslint-disable @typescript-eslint/no-require-imports */
/* global require */
'use strict';
/*
 * Preloaded into the built module (`NODE_OPTIONS=--require <this file>`) by black-box tests that need the
 * wall clock stepped between a checkpoint and a crash, as NTP steps an RTC-less device's clock once it
 * first syncs after boot: the first checkpoint written EDDY_TEST_CLOCK_STEP_AFTER_MS or more after load
 * (the connected-time entry `$clock` going into `rule_state`: src/app/checkpointer.ts STATE_KEYS) steps
 * the wall clock EDDY_TEST_CLOCK_STEP_MS forward right after its transaction (test/helpers/stepClock.cjs),
 * and EDDY_TEST_KILL_AFTER_STEP_MS later, before the next periodic checkpoint (every 5 s:
 * src/app/checkpointer.ts CHECKPOINT_MS), the process kills itself with SIGKILL (no handler runs). The
 * inputs logged in between, the step among them, are replayed by the next start. Nothing of the module
 * is changed: better-sqlite3's statements are wrapped from outside; the delays are on Node's monotonic timers.
 */
const { performance } = require('node:perf_hooks');
const Database = require('better-sqlite3');
const clock = require('./stepClock.cjs');

const AFTER_MS = Number(process.env.EDDY_TEST_CLOCK_STEP_AFTER_MS ?? 10_000);
const KILL_AFTER_MS = Number(process.env.EDDY_TEST_KILL_AFTER_STEP_MS ?? 2_000);
const loadedAt = performance.now();
let stepped = false;

const prepare = Database.prototype.prepare;
Database.prototype.prepare = function (sql, ...rest) {
  const stmt = prepare.call(this, sql, ...rest);
  if (String(sql).trim().startsWith('INSERT OR REPLACE INTO rule_state ')) {
    const run = stmt.run;
    stmt.run = function (...args) {
      if (!stepped && args[0] === '$clock' && performance.now() - loadedAt >= AFTER_MS) {
        stepped = true;
        setImmediate(() => {
          clock.step('after a checkpoint');
          setTimeout(() => {
            process.stderr.write(`{"level":50,"msg":"test preload: SIGKILL ${KILL_AFTER_MS} ms after the wall clock stepped"}\n`);
            process.kill(process.pid, 'SIGKILL');
          }, KILL_AFTER_MS);
        });
      }
      return run.apply(this, args);
    };
  }
  return stmt;
};
