import { describe, expect, it } from 'vitest';
import { renameSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Line, logs, sleep, startLocal, tempDir, until } from '../../helpers/localProcess.js';

/*
 * EDDY_RULES_FILE reloaded in local mode (docs/cli.md) by real processes
 * (`node dist/main.js`, the simulated sensor: one message per device every 100 ms, 5 s apart in event
 * time, so a three-minute window holds exactly 36 readings of a device). The expected behaviour is
 * the twin's (docs/rules.md "Changing a rule through the twin").
 */



const base = { kind: 'aggregate', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', output: 'summaries' } as const;
/** Unchanged across every reload: its windows must not be cut. */
const keep = { ...base, window: { type: 'tumbling', size: '3m' }, select: { tMax: 'max(machine.temperature)' } };
/** Changed in its window size: the open window comes out under the old definition, cut short. */
const resized = { ...base, window: { type: 'tumbling', size: '3m' }, select: { tMin: 'min(machine.temperature)' } };
const resized1m = { ...resized, window: { type: 'tumbling', size: '1m' } };
/** Added by a reload. */
const fresh = { ...base, window: { type: 'tumbling', size: '1m' }, select: { pAvg: 'avg(machine.pressure)' } };
/** Raised at the first reading of every device (SimulatedTemperatureSensor starts near 21 °C). */
const hot = { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], timestamp: 'timeCreated', value: 'machine.temperature', detector: { type: 'threshold', above: 0 }, output: 'alerts' };

/** Replaces the file by rename, as editors and `mv` do. */
function replaceFile(file: string, content: string): void {
  writeFileSync(`${file}.tmp`, content);
  renameSync(`${file}.tmp`, file);
}

/** The last revision of every window of a rule: `deviceId|start` → count. */
function windowCounts(lines: readonly Line[], rule: string): Map<string, number> {
  const out = new Map<string, { count: number; revision: number }>();
  for (const l of lines) {
    if (l.output !== 'summaries' || l.body.rule !== rule) continue;
    const k = `${l.body.group.deviceId}|${(l.body.window as { start: string }).start}`;
    const revision = l.body.revision as number;
    const cur = out.get(k);
    if (!cur || revision > cur.revision) out.set(k, { count: l.body.count as number, revision });
  }
  return new Map([...out].map(([k, v]) => [k, v.count]));
}

/** Counts of every window of `rule` but each device's first (the sensor starts mid-window). */
function fullWindowCounts(lines: readonly Line[], rule: string): string[] {
  const counts = windowCounts(lines, rule);
  const first = new Map<string, string>();
  for (const k of counts.keys()) {
    const [d, s] = k.split('|') as [string, string];
    if (!first.has(d) || s < first.get(d)!) first.set(d, s);
  }
  return [...counts].filter(([k]) => first.get(k.split('|')[0]!) !== k.split('|')[1]).map(([k, c]) => `${k} ${c}`);
}

describe('EDDY_RULES_FILE reload in local mode (docs/cli.md "Reloading in local mode")', () => {
  it('a changed file is applied as a twin patch is: unchanged rule not cut, changed rule cut under its old definition, new rule starts, removed alert cleared', async () => {
    const dir = tempDir('eddy-reload-data-');
    const rulesDir = tempDir('eddy-reload-rules-');
    const file = path.join(rulesDir, 'rules.json');
    writeFileSync(file, JSON.stringify({ keep, resized, hot }));
    const a = startLocal(dir, { EDDY_RULES_FILE: file });
    await until(() => new Set(a.lines.filter((l) => l.body.rule === 'hot' && l.body.state === 'raised').map((l) => l.body.group.deviceId)).size === 3, 30_000, 'three raised alerts');
    // Past the first (partial) three-minute window, so the change falls inside a full one.
    const devices = ['sim-1', 'sim-2', 'sim-3'];
    const closed = (ls: readonly Line[], rule: string, d: string): number => ls.filter((l) => l.output === 'summaries' && l.body.rule === rule && l.body.group.deviceId === d).length;
    await until(() => devices.every((d) => closed(a.lines, 'keep', d) >= 1), 30_000, 'the first three-minute window of keep closing');
    const before = a.lines.length;
    replaceFile(file, JSON.stringify({ keep, resized: resized1m, fresh }));
    await until(() => logs(a).some((l) => l.msg === 'rules file reloaded'), 10_000, 'the reload');
    // Until the window of `keep` open at the reload and the next one have closed, and the changed and
    // new rules have emitted for every device (a fixed wait saw fewer on a loaded machine).
    await until(() => devices.every((d) => closed(a.lines.slice(before), 'keep', d) >= 2 && closed(a.lines.slice(before), 'fresh', d) >= 1)
      && a.lines.slice(before).some((l) => l.body.rule === 'resized' && Date.parse((l.body.window as { end: string }).end) - Date.parse((l.body.window as { start: string }).start) === 60_000)
      && fullWindowCounts(a.lines, 'keep').length >= 6, 60_000, 'two windows of keep after the reload and the new rules emitting');
    a.child.kill('SIGINT');
    expect((await a.exit).code, a.stderr).toBe(0);
    const after = a.lines.slice(before);

    // `hot` removed: every device's raised alert cleared, kind rule-removed.
    expect(after.filter((l) => l.body.rule === 'hot').map((l) => [l.body.group.deviceId, l.body.state, l.body.kind]).sort())
      .toEqual([['sim-1', 'cleared', 'rule-removed'], ['sim-2', 'cleared', 'rule-removed'], ['sim-3', 'cleared', 'rule-removed']]);
    // `fresh` starts with the reload, not before.
    expect(a.lines.slice(0, before).filter((l) => l.body.rule === 'fresh')).toEqual([]);
    expect(new Set(after.filter((l) => l.body.rule === 'fresh').map((l) => l.body.group.deviceId)).size).toBe(3);
    // `keep`: every window after the first holds all 36 readings, the one open at the reload too.
    const full = fullWindowCounts(a.lines, 'keep');
    expect(full.length).toBeGreaterThanOrEqual(6);
    expect(full.filter((c) => !c.endsWith(' 36'))).toEqual([]);
    // `resized`: the three-minute window open at the reload is emitted under the old definition (cut
    // short, or complete if the reload fell between its last reading and its close), and the new
    // one-minute definition starts inside it. A window of the old rule that closed normally between
    // `before` and the reload (a loaded machine) is also in `after`, so each device's LAST one is the cut.
    const span = (l: Line): [number, number] => [Date.parse((l.body.window as { start: string }).start), Date.parse((l.body.window as { end: string }).end)];
    const threeMinute = after.filter((l) => l.body.rule === 'resized' && span(l)[1] - span(l)[0] === 180_000);
    const oneMinute = after.filter((l) => l.body.rule === 'resized' && span(l)[1] - span(l)[0] === 60_000);
    expect(oneMinute.length).toBeGreaterThan(0);
    const cut = new Map<string, Line>();
    for (const l of threeMinute) {
      const d = l.body.group.deviceId;
      if (!cut.has(d) || span(l)[0] > span(cut.get(d)!)[0]) cut.set(d, l);
    }
    expect([...cut.keys()].sort()).toEqual(['sim-1', 'sim-2', 'sim-3']);
    for (const [d, l] of cut) {
      expect(l.body.count as number).toBeGreaterThan(0);
      expect(l.body.count as number).toBeLessThanOrEqual(36);
      // Had the open window been dropped instead of emitted, the last three-minute window would end
      // before the new rule's first one-minute window starts.
      const firstMinute = Math.min(...oneMinute.filter((m) => m.body.group.deviceId === d).map((m) => span(m)[0]));
      expect(firstMinute).toBeLessThan(span(l)[1]);
    }
  }, 90_000);

  it('SIGHUP reloads a file the watch cannot see; an invalid file is reported and the running rules stay', async () => {
    const dir = tempDir('eddy-reload-data-');
    const linkDir = tempDir('eddy-reload-link-');
    const realDir = tempDir('eddy-reload-real-');
    // A symlink to a file in another directory (a mounted ConfigMap, say): the watched directory never changes.
    const real = path.join(realDir, 'rules.json');
    const link = path.join(linkDir, 'rules.json');
    writeFileSync(real, JSON.stringify({ keep }));
    symlinkSync(real, link);
    const a = startLocal(dir, { EDDY_RULES_FILE: link });
    await until(() => logs(a).some((l) => l.msg.startsWith('eddy running in local mode')), 20_000, 'local mode running');
    await sleep(2_000);

    writeFileSync(real, '{ "keep": ');
    a.child.kill('SIGHUP');
    await until(() => logs(a).some((l) => l.level === 'error' && /not reloaded: not a usable rule set/.test(l.msg)), 10_000, 'the invalid file reported');
    expect(a.exited).toBe(false);

    writeFileSync(real, JSON.stringify({ keep, fresh }));
    // The process goes on past a window of `keep` closing for every device (seconds, far beyond the
    // watch's 300 ms settle time however loaded the machine) without seeing the change.
    const written = a.lines.length;
    await until(() => ['sim-1', 'sim-2', 'sim-3'].every((d) => a.lines.slice(written).some((l) => l.body.rule === 'keep' && l.body.group.deviceId === d)), 30_000, 'a window of keep closing after the write');
    // Not seen by the watch: nothing reloaded yet.
    expect(a.lines.filter((l) => l.body.rule === 'fresh')).toEqual([]);
    const before = a.lines.length;
    a.child.kill('SIGHUP');
    await until(() => a.lines.slice(before).some((l) => l.body.rule === 'fresh'), 15_000, 'the new rule emitting');
    // Until six windows of `keep` have closed (a fixed wait gave only three on a loaded CI machine).
    await until(() => fullWindowCounts(a.lines, 'keep').length >= 6, 40_000, 'six full windows of keep');
    a.child.kill('SIGINT');
    expect((await a.exit).code, a.stderr).toBe(0);
    expect(logs(a).filter((l) => l.msg === 'rules file reloaded').map((l) => l.reason)).toEqual(['SIGHUP']);
    const full = fullWindowCounts(a.lines, 'keep');
    expect(full.length).toBeGreaterThanOrEqual(6);
    expect(full.filter((c) => !c.endsWith(' 36'))).toEqual([]);
  }, 90_000);
});
