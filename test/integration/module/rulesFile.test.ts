import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { EdgeHubEmulator } from '../../helpers/edgeHubEmulator.js';
import { spawnModule, startModule, tempDataDir, useEmulator, waitUntil } from './moduleProcess.js';

/*
 * The rules file in IoT Edge mode (docs/cli.md "How the module treats its rules file"): the built
 * module, the real SDK and the edgeHub emulator. A rules file that is not a rule set stops the module
 * before it connects; a file whose every rule is rejected runs, and the twin says no rule is active.
 */
describe('built module: its rules file', () => {
  let emu: EdgeHubEmulator;
  useEmulator((e) => (emu = e));

  it('a rules file with a syntax error: exit 1 before connecting, the line and column in the fatal log line', { timeout: 30_000 }, async () => {
    const dir = tempDataDir('eddy-rulesfile-');
    const file = path.join(dir, 'rules.json');
    writeFileSync(file, '{\n  "a": {"kind": "aggregate"}\n  "b": {}\n}\n');
    const mp = spawnModule(emu.moduleEnv('eddy-badfile'), { extra: { EDDY_RULES_FILE: file } });
    const { code } = await mp.exit;
    expect(code).toBe(1);
    const fatal = mp.logs.find((l) => l.level === 60 || l.level === 'fatal');
    expect(fatal?.msg, mp.raw.join('\n')).toMatch(/is not a usable rule set \(line 3 column 3: JSON syntax: expected ","/);
    expect(mp.logs.some((l) => l.msg === 'eddy connected to edgeHub')).toBe(false);
  });

  it('every file rule rejected: the module runs, and the twin reports the rejections and "no rule is active" in config.errors', { timeout: 40_000 }, async () => {
    const dir = tempDataDir('eddy-rulesfile-');
    const file = path.join(dir, 'rules.json');
    writeFileSync(file, JSON.stringify({ spike: { kind: 'anomaly', value: 'x', detector: { type: 'nope' } } }));
    const M = 'eddy-norule';
    const mp = await startModule(emu, M, { extra: { EDDY_RULES_FILE: file } });
    await waitUntil(() => (emu.twin(M).reported as { config?: { errors?: unknown } }).config?.errors != null, 15_000, 'config.errors reported');
    const reported = emu.twin(M).reported as unknown as { config: { errors: string[] }; rules: Record<string, { status: string }> };
    expect(reported.config.errors).toContain('no rule is active: inputs are received and logged but produce no output');
    expect(reported.rules.spike?.status).toBe('rejected');
    expect(mp.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('no rule is active'))).toBe(true);
  });
});
