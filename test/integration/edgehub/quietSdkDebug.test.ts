/**
 * The SDK's `debug` loggers become one shared no-op unless DEBUG is set (src/io/edgehub/quietSdkDebug.ts).
 * In fresh child processes: the module cache of a vitest worker may already hold the SDK.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CONNECTION = fileURLToPath(new URL('../../../dist/io/edgehub/edgeHubConnection.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Loads eddy's edgeHub connection (and so the SDK) in a child, then asks the `debug` the SDK resolves for two loggers and calls one. */
function probe(env: Record<string, string | undefined>): { out: { same: boolean; enabled: boolean; sdkDispatch: boolean }; stderr: string } {
  const script = `
    const { createRequire } = require('node:module');
    import(${JSON.stringify(CONNECTION)}).then(() => {
      const sdk = createRequire(require.resolve('azure-iot-device-mqtt/package.json'));
      const dbg = sdk('debug');
      const a = dbg('azure-iot-device-mqtt:Mqtt');
      const b = dbg('azure-iot-device:ModuleClient');
      a('probe message %s', 'one');
      // Whether the transport dispatches with the SDK's own method: eddy patches the loggers, not the transport's
      // methods (docs/sdk-patches.md).
      const mqtt = require(require.resolve('azure-iot-device-mqtt'));
      const sdkDispatch = String(mqtt.Mqtt.prototype._dispatchMqttMessage).includes("debug('message received on '");
      process.stdout.write(JSON.stringify({ same: a === b, enabled: a.enabled, sdkDispatch }));
    });`;
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (env.DEBUG === undefined) delete childEnv.DEBUG;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, env: childEnv, encoding: 'utf8', timeout: 30_000 });
  expect(r.status, r.stderr).toBe(0);
  return { out: JSON.parse(r.stdout) as { same: boolean; enabled: boolean; sdkDispatch: boolean }, stderr: r.stderr };
}

describe('quietSdkDebug', () => {
  it('without DEBUG, every SDK logger is the same disabled no-op (and the per-message methods stay the SDK\'s own)', () => {
    const { out, stderr } = probe({ DEBUG: undefined });
    expect(out).toEqual({ same: true, enabled: false, sdkDispatch: true });
    expect(stderr).not.toContain('probe message');
  });

  it('with DEBUG set, the SDK keeps its real loggers (and its own per-message methods) and they print', () => {
    const { out, stderr } = probe({ DEBUG: 'azure-iot-device-mqtt:*' });
    expect(out).toEqual({ same: false, enabled: true, sdkDispatch: true });
    expect(stderr).toContain('probe message one');
  });
});
