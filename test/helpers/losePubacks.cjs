/* eslint-disable @typescript-eslint/no-require-imports */
/* global require */
'use strict';
/*
 * Preloaded into the built module (`NODE_OPTIONS=--require <this file>`) by black-box tests that need
 * many inputs logged whose PUBACKs never reach the broker: what a SIGKILL does to a module draining a
 * backlog, whose PUBACKs queue in its socket (a reset connection loses what the kernel still held).
 * After the first EDDY_TEST_PUBACKS_KEPT PUBACKs, every PUBACK the module writes is swallowed here (the
 * input was logged: src/app/inputJournal.ts flushes the log before any write reaches the socket, and this
 * sits under that guard), and once EDDY_TEST_PUBACKS_LOST have been swallowed the process kills itself
 * with SIGKILL (no handler runs). Nothing of the module is changed: the TLS socket's write methods are
 * wrapped from outside. A PUBACK is the 4 bytes 0x40 0x02 <id>, which mqtt-packet hands to the socket as
 * three writes ([0x40], [0x02], the 2-byte id; mqtt-packet writeToStream.js `confirmation`).
 * With EDDY_TEST_CLOCK_STEP_AFTER_PUBACKS (and EDDY_TEST_CLOCK_STEP_MS) the wall clock steps forward once
 * that many PUBACKs (kept or lost) have been written: test/helpers/stepClock.cjs.
 */
const tls = require('node:tls');

const KEPT = Number(process.env.EDDY_TEST_PUBACKS_KEPT ?? 0);
const LOST = Number(process.env.EDDY_TEST_PUBACKS_LOST ?? 1000);
const STEP_AFTER = process.env.EDDY_TEST_CLOCK_STEP_AFTER_PUBACKS === undefined ? null : Number(process.env.EDDY_TEST_CLOCK_STEP_AFTER_PUBACKS);
const clock = STEP_AFTER === null ? null : require('./stepClock.cjs');
let seen = 0;
let lost = 0;
const one = (b, v) => Buffer.isBuffer(b) && b.length === 1 && b[0] === v;

function lose() {
  lost++;
  if (lost === LOST) {
    // After this turn's writes: the module has logged every input whose PUBACK was swallowed.
    setImmediate(() => {
      process.stderr.write(`{"level":50,"msg":"test preload: SIGKILL after ${LOST} PUBACKs lost (${lost} by the end of that turn)"}\n`);
      process.kill(process.pid, 'SIGKILL');
    });
  }
}

// Only in `_writev`, where the three writes of a PUBACK arrive together (the module corks its socket for
// the PUBACKs of a turn: src/io/edgehub/edgeHubConnection.ts `holdAcks`); a lone [0x40] in `_write`
// could as well be the remaining length of another packet, so those pass.
const proto = tls.TLSSocket.prototype;
const writev = proto._writev;
proto._writev = function (chunks, cb) {
  const kept = [];
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i].chunk;
    if (one(c, 0x40) && i + 2 < chunks.length && one(chunks[i + 1].chunk, 0x02) && chunks[i + 2].chunk.length === 2) {
      // The module logged this PUBACK's input before the write (see above): the step falls between two inputs.
      if (++seen === STEP_AFTER) clock.step(`after ${seen} PUBACKs`);
      if (seen > KEPT) {
        lose();
        i += 2;
        continue;
      }
    }
    kept.push(chunks[i]);
  }
  if (kept.length === 0) return cb();
  return writev.call(this, kept, cb);
};
