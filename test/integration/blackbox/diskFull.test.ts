import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import {
  analyseUpstream, closers, exactRules, expectedSummaries, InputDriver, startModule, TrafficSource, useEmulator, waitUntil, writeRules,
} from '../durability/durabilityHarness.js';

/*
 * Black-box: the data dir's disk fills up while the module runs (a small tmpfs, filled by another file),
 * inputs keep coming, then space comes back. docs/contract.md section 8: a full disk moves the outbox to
 * memory and reports `store.degraded` until the disk recovers; nothing acknowledged is lost while the
 * process lives. Oracle: the windows upstream equal a computation over every reading sent, the outbox
 * went to memory while the disk was full and back to disk after.
 *
 * Needs a tmpfs mount (root); skipped where `mount` is not allowed.
 */

function tryMount(dir: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const mountDir = mkdtempSync(join(tmpdir(), 'eddy-tinydisk-'));
const mounted = tryMount(mountDir);
if (!mounted) rmSync(mountDir, { recursive: true, force: true });

/** Fills the disk with one file until ENOSPC; returns its path. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(16 * 1024, 1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch {
    // ENOSPC: full
  } finally {
    closeSync(fd);
  }
  return path;
}

describe.skipIf(!mounted)('black box: the data dir\'s disk full while inputs keep coming, then space again', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));
  afterAll(() => {
    try {
      execFileSync('umount', [mountDir], { stdio: 'ignore' });
    } catch {
      /* not mounted */
    }
    rmSync(mountDir, { recursive: true, force: true });
  });

  it('every reading counts once, the outbox goes to memory and back to disk', { timeout: 120_000 }, async () => {
    const M = 'eddy-diskfull';
    const DEVICES = ['f1', 'f2', 'f3'];
    const dataDir = join(mountDir, 'data');
    const mc = await startModule(emu, M, { dataDir, rulesFile: writeRules(exactRules()) }, 60_000);
    const filler = fill(mountDir);
    const traffic = new TrafficSource(DEVICES, 404, { maxBatch: 3 });
    const input = new InputDriver(emu, M);
    for (let i = 0; i < 300; i++) await input.send(traffic.message());
    await waitUntil(() => input.caughtUp(), 60_000, 'PUBACKs while the disk is full');
    const sawDegraded = mc.logs.some((l) => l.msg === 'outbox: disk failed, degraded to memory');
    unlinkSync(filler);
    const closeAt = traffic.maxTs() + 3_600_000;
    for (const m of closers(DEVICES, closeAt)) await input.send(m);
    await waitUntil(() => input.caughtUp(), 60_000, 'every PUBACK');
    const expected = expectedSummaries(traffic.readings(), closeAt);
    await waitUntil(() => analyseUpstream(emu, M).latest.length >= expected.length, 60_000, `${expected.length} windows`).catch(() => undefined);
    // Back on disk: on outbox traffic (storeOutbox) or by the 30 s retry (eddyApp), whichever comes first.
    const recovered = (): boolean => mc.logs.some((l) => l.msg === 'outbox: disk recovered, memory moved back' || l.msg === 'store: disk writable again; back on SQLite');
    await waitUntil(recovered, 45_000, 'the store back on disk').catch(() => undefined);
    const up = analyseUpstream(emu, M);
    const failures = mc.logs.filter((l) => l.level === 'error' || l.level === 50).map((l) => l.msg);
    console.info(`[disk full] ${traffic.readings().length} readings, ${expected.length} windows, ${up.latest.length} arrived; outbox degraded to memory ${sawDegraded}; errors logged: ${JSON.stringify([...new Set(failures)])}`);
    expect(up.latest).toEqual(expected);
    expect(up.conflicting).toEqual([]);
    expect(sawDegraded).toBe(true);
    expect(recovered()).toBe(true);
    expect(mc.exited).toBe(false);
  });
});
