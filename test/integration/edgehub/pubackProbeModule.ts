/**
 * Child process for the PUBACK probe (pubackProbe.test.ts): a module that connects through
 * EdgeHubConnection with the environment the parent gives it, prints "ready", and handles inputs
 * according to PROBE_MODE:
 * - `kill-in-handler`: appends the body to PROBE_MARKER, then SIGKILLs itself INSIDE the synchronous handler;
 * - `kill-after-handler`: appends the body, returns, and SIGKILLs itself 500 ms later;
 * - `record`: appends each body and keeps running.
 */
import { appendFileSync } from 'node:fs';
import { EdgeHubConnection } from '../../../src/io/edgehub/edgeHubConnection.js';

const mode = process.env.PROBE_MODE;
const marker = process.env.PROBE_MARKER!;
const quiet = (): void => undefined;
const conn = await EdgeHubConnection.fromEnvironment({ log: { info: quiet, warn: quiet, error: quiet, debug: quiet }, backoff: { initialMs: 100, maxMs: 500 } });
conn.onInput((_input, body) => {
  appendFileSync(marker, `${body.toString('utf8')}\n`);
  if (mode === 'kill-in-handler') process.kill(process.pid, 'SIGKILL');
  if (mode === 'kill-after-handler') setTimeout(() => process.kill(process.pid, 'SIGKILL'), 500);
});
await conn.open();
process.stdout.write('ready\n');
