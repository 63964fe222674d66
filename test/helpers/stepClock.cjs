/* global module */
'use strict';
/*
 * Preloaded into the built module (`NODE_OPTIONS=--require <this file>`) by black-box tests whose wall clock
 * must step, as NTP steps an RTC-less device's clock (a Raspberry Pi) once it first syncs after boot:
 * `Date.now()`, `new Date()` and `Date()` read EDDY_TEST_CLOCK_STEP_MS later than the system clock from
 * the step on. The monotonic clocks (performance.now, process.hrtime) do not move, as on the device.
 * The step happens at load, unless test/helpers/losePubacks.cjs requires this file to step it after
 * EDDY_TEST_CLOCK_STEP_AFTER_PUBACKS PUBACKs, or test/helpers/stepAtCheckpoint.cjs after a checkpoint
 * (EDDY_TEST_CLOCK_STEP_AFTER_MS) (`step()`). Each step is announced on stderr as a JSON log line.
 */
const STEP = Number(process.env.EDDY_TEST_CLOCK_STEP_MS ?? 0);
const RealDate = Date;
const systemNow = RealDate.now.bind(RealDate);
let offset = 0;

// On the constructor itself, so code that kept a reference to Date sees the step too.
RealDate.now = () => systemNow() + offset;
globalThis.Date = new Proxy(RealDate, {
  construct: (target, args, newTarget) => Reflect.construct(target, args.length === 0 ? [systemNow() + offset] : args, newTarget),
  apply: () => new RealDate(systemNow() + offset).toString(),
});

function step(why) {
  offset += STEP;
  process.stderr.write(`${JSON.stringify({ level: 30, msg: `test preload: wall clock stepped forward by ${STEP} ms ${why}` })}\n`);
}

if (STEP !== 0 && process.env.EDDY_TEST_CLOCK_STEP_AFTER_PUBACKS === undefined && process.env.EDDY_TEST_CLOCK_STEP_AFTER_MS === undefined) step('at start');

module.exports = { step };
