import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The import boundaries of the folder layout (README.md "Folders"), as eslint.config.js enforces them: a stage imports
 * contracts/, util/, metrics/, time/ and itself; only main.ts, src/app, src/rules and src/cli wire stages together; only
 * src/store imports better-sqlite3; only src/io/edgehub imports azure-iot-*. Each case lints a probe
 * with the project's own config at a path inside src/, so the rule that applies is the one `npm run lint`
 * applies there.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const eslint = new ESLint({ cwd: root });

async function restricted(file: string, specifier: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import * as probe from '${specifier}';\nexport const used = probe;\n`, { filePath: join(root, file) });
  expect(result!.messages.filter((m) => m.fatal)).toEqual([]);
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const crossings: Array<[string, string, RegExp]> = [
  ['src/windows/probe.ts', '../store/store.js', /src\/windows must not import src\/store/],
  ['src/anomaly/probe.ts', '../windows/windowRegistry.js', /src\/anomaly must not import src\/windows/],
  ['src/aggregate/probe.ts', '../anomaly/detectorRegistry.js', /src\/aggregate must not import src\/anomaly/],
  // A subfolder of a stage is the stage (src/aggregate/expression/).
  ['src/aggregate/expression/probe.ts', '../../anomaly/detectorRegistry.js', /src\/aggregate must not import src\/anomaly/],
  ['src/aggregate/expression/probe.ts', '../../rules/engine.js', /src\/aggregate must not import src\/rules/],
  ['src/ingest/probe.ts', '../rules/engine.js', /must not import src\/rules/],
  ['src/forward/probe.ts', '../main.js', /must not import src\/main\.js/],
  ['src/io/local/probe.ts', '../../store/store.js', /src\/io must not import src\/store/],
  ['src/io/edgehub/probe.ts', '../../windows/windowSpec.js', /src\/io must not import src\/windows/],
  ['src/contracts/probe.ts', '../metrics/metrics.js', /src\/contracts must not import src\/metrics/],
  ['src/metrics/probe.ts', '../store/store.js', /src\/metrics must not import src\/store/],
  ['src/time/probe.ts', '../windows/windowSpec.js', /src\/time must not import src\/windows/],
  // util/ is importable by every layer, so it must import none of them.
  ['src/util/probe.ts', '../contracts/event.js', /src\/util must not import src\/contracts/],
  ['src/util/probe.ts', '../metrics/metrics.js', /src\/util must not import src\/metrics/],
  ['src/util/probe.ts', '../ingest/decodeMessage.js', /src\/util must not import src\/ingest/],
  ['src/config/probe.ts', '../windows', /src\/config must not import src\/windows/],
  ['src/windows/probe.ts', 'better-sqlite3', /only src\/store imports better-sqlite3/],
  ['src/rules/probe.ts', 'better-sqlite3', /only src\/store imports better-sqlite3/],
  ['src/probe.ts', 'better-sqlite3', /only src\/store imports better-sqlite3/],
  ['src/io/local/probe.ts', 'azure-iot-device', /only src\/io\/edgehub imports the IoT SDK/],
  ['src/store/probe.ts', 'azure-iot-common', /only src\/io\/edgehub imports the IoT SDK/],
  ['src/probe.ts', 'azure-iot-device-mqtt', /only src\/io\/edgehub imports the IoT SDK/],
  ['src/io/edgehub/probe.ts', 'better-sqlite3', /only src\/store imports better-sqlite3/],
  ['src/io/local/probe.ts', 'mqtt', /only src\/io\/mqtt imports mqtt.js/],
  ['src/probe.ts', 'mqtt', /only src\/io\/mqtt imports mqtt.js/],
  ['src/io/edgehub/probe.ts', 'mqtt', /only src\/io\/mqtt imports mqtt.js/],
  ['src/io/mqtt/probe.ts', 'azure-iot-device', /only src\/io\/edgehub imports the IoT SDK/],
  ['src/io/mqtt/probe.ts', '../../windows/windowSpec.js', /src\/io must not import src\/windows/],
  // src/app wires stages (it owns the module): no stage may reach into it, and it imports no native module itself.
  ['src/windows/probe.ts', '../app/reconciler.js', /src\/windows must not import src\/app/],
  ['src/store/probe.ts', '../app/checkpointer.js', /src\/store must not import src\/app/],
  ['src/io/edgehub/probe.ts', '../../app/directMethods.js', /src\/io must not import src\/app/],
  ['src/app/probe.ts', 'better-sqlite3', /only src\/store imports better-sqlite3/],
  ['src/app/probe.ts', 'azure-iot-device', /only src\/io\/edgehub imports the IoT SDK/],
  // The one named exception covers one file, not the folder.
  ['src/anomaly/probe.ts', '../windows/recencyListExtra.js', /src\/anomaly must not import src\/windows/],
];

const allowed: Array<[string, string]> = [
  ['src/windows/probe.ts', './tumblingWindow.js'],
  ['src/forward/probe.ts', '../contracts/output.js'],
  ['src/forward/probe.ts', '../metrics/metrics.js'],
  ['src/metrics/probe.ts', '../contracts/clock.js'],
  ['src/forward/probe.ts', '../time/connectedTime.js'],
  ['src/io/local/probe.ts', '../../contracts/event.js'],
  ['src/store/probe.ts', 'better-sqlite3'],
  ['src/io/edgehub/probe.ts', 'azure-iot-device'],
  ['src/io/mqtt/probe.ts', 'mqtt'],
  ['src/probe.ts', './store/store.js'],
  ['src/rules/probe.ts', '../windows/windowRegistry.js'],
  ['src/cli/probe.ts', '../rules/engine.js'],
  ['src/anomaly/probe.ts', '../windows/recencyList.js'],
  ['src/windows/probe.ts', 'rxjs'],
  ['src/aggregate/probe.ts', '../util/readPath.js'],
  ['src/aggregate/expression/probe.ts', '../../util/readPath.js'],
  ['src/aggregate/expression/probe.ts', '../mathjsBundle.js'],
  ['src/io/edgehub/probe.ts', '../../util/backoff.js'],
  ['src/app/probe.ts', '../windows/windowRegistry.js'],
  ['src/app/probe.ts', '../store/store.js'],
  ['src/app/probe.ts', '../rules/engine.js'],
  ['src/probe.ts', './app/reconciler.js'],
];

describe('stage boundaries (eslint.config.js)', () => {
  it.each(crossings)('%s importing %s fails lint', async (file, specifier, message) => {
    const messages = await restricted(file, specifier);
    expect(messages.join('\n')).toMatch(message);
  });

  it.each(allowed)('%s importing %s passes', async (file, specifier) => {
    expect(await restricted(file, specifier)).toEqual([]);
  });

  const planted = join(root, `src/windows/zzBoundaryProbe${process.pid}.ts`);
  afterAll(() => rmSync(planted, { force: true }));

  it('`npx eslint` on a file planted in src/windows that imports the store exits non-zero and names the rule', () => {
    writeFileSync(planted, "import { openStore } from '../store/store.js';\nexport const probe = openStore;\n");
    const run = spawnSync(process.execPath, [join(root, 'node_modules/eslint/bin/eslint.js'), planted], { cwd: root, encoding: 'utf8' });
    rmSync(planted, { force: true });
    expect(run.status, run.stderr).toBe(1);
    expect(run.stdout).toMatch(/no-restricted-imports/);
    expect(run.stdout).toMatch(/src\/windows must not import src\/store/);
  }, 60_000);

  it('the tree as it is passes the boundary rules', async () => {
    const results = await eslint.lintFiles(['src']);
    const crossingsFound = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => `${r.filePath}:${m.line} ${m.message}`));
    expect(crossingsFound).toEqual([]);
    expect(results.length).toBeGreaterThan(50);
  }, 120_000);
});
