import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type EdgeHubEmulator, startEdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';

/*
 * docs/contract.md section 8 and the durability tests (test/integration/durability/) rest on this: with the pinned SDK, the PUBACK for an input leaves the
 * process only after the synchronous part of the inputMessage handler has returned. Why it holds
 * (azure-iot-device-mqtt 1.16.4 / mqtt.js 4.3.8 / mqtt-packet): mqtt.js emits 'message', and
 * azure-iot-mqtt-base re-emits it in a process.nextTick; mqtt.js then writes the PUBACK at once, but
 * mqtt-packet corks the socket and uncorks it in a LATER nextTick. The handler's tick was queued first.
 *
 * The probe asserts order, not speed: the module SIGKILLs itself inside the handler. If the PUBACK had
 * been written to the socket before, the kernel would still deliver it (close() flushes the send buffer)
 * and the broker would record it before it sees the connection end. The control kills the module 500 ms
 * AFTER the handler returned and must see the PUBACK, which proves the probe can see one.
 */

const MODULE = 'probe';
const script = fileURLToPath(new URL('./pubackProbeModule.ts', import.meta.url));

describe('PUBACK timing of input messages (pinned SDK)', () => {
  let emu: EdgeHubEmulator;
  let dir: string;
  const children: ChildProcess[] = [];

  beforeEach(async () => {
    emu = await startEdgeHubEmulator();
    dir = mkdtempSync(join(tmpdir(), 'puback-probe-'));
  });
  afterEach(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the probe module and resolves once it is connected and subscribed. */
  const startModule = (mode: string, marker: string): Promise<ChildProcess> =>
    new Promise((resolve, reject) => {
      const env: NodeJS.ProcessEnv = { ...process.env, ...emu.moduleEnv(MODULE), PROBE_MODE: mode, PROBE_MARKER: marker };
      delete env.EdgeHubConnectionString;
      delete env.IotHubConnectionString;
      const child = spawn(process.execPath, ['--import', 'tsx', script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolve(child);
      });
      child.on('exit', (code, signal) => reject(new Error(`probe module exited early: ${code ?? signal}`)));
    });

  const exited = (child: ChildProcess): Promise<string | null> =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve(child.signalCode) : new Promise((r) => child.once('exit', (_c, s) => r(s)));

  /** After the module died, waits until the broker has seen the connection end: every byte sent before it is processed by then. */
  const brokerSawClose = async (): Promise<void> => {
    while (emu.isConnected(MODULE)) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200)); // let aedes finish any ack bookkeeping (a persistence promise)
  };

  it('no PUBACK when the process dies inside the synchronous handler; the input is redelivered to the next start', { timeout: 60_000 }, async () => {
    const marker = join(dir, 'first.txt');
    const child = await startModule('kill-in-handler', marker);
    await emu.sendInput(MODULE, 'telemetry', 'input-1', { messageId: 'in-1' });
    expect(await exited(child)).toBe('SIGKILL');
    await brokerSawClose();
    expect(readFileSync(marker, 'utf8')).toBe('input-1\n'); // the handler did run
    expect(emu.inputAcks).toEqual([]); // ...and edgeHub never saw it acknowledged

    // The broker kept the un-acknowledged message in the module's session: the next run gets it.
    const again = join(dir, 'second.txt');
    await startModule('record', again);
    const ack = await emu.waitForInputAck((a) => a.moduleId === MODULE, 10_000);
    expect(ack.topic).toContain('/inputs/telemetry/');
    expect(existsSync(again) && readFileSync(again, 'utf8')).toBe('input-1\n');
  });

  it('control: the PUBACK does go out once the handler has returned', { timeout: 60_000 }, async () => {
    const marker = join(dir, 'control.txt');
    const child = await startModule('kill-after-handler', marker);
    await emu.sendInput(MODULE, 'telemetry', 'input-2');
    expect(await exited(child)).toBe('SIGKILL');
    await brokerSawClose();
    expect(readFileSync(marker, 'utf8')).toBe('input-2\n');
    expect(emu.inputAcks.map((a) => a.moduleId)).toEqual([MODULE]);
  });
});
