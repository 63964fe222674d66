/**
 * The Azure IoT SDK, mqtt.js and machina log through the `debug` package on every message, and a
 * disabled `debug` instance still takes `(...args)`: an array per call, before it looks at `enabled`.
 * Under the end-to-end bench that was 14 % of every byte the module allocated (a sampling allocation
 * profile, bench/endToEnd.ts --profile), on top of ~2.5 % of its CPU. So unless `DEBUG` is set (someone asked for the
 * SDK's debug output: then nothing changes), the `debug` factory the SDK resolves is replaced, before
 * the SDK is loaded, by one that hands out a single no-op function for every namespace. Imported for
 * its effect, first, by edgeHubConnection.ts. A speed patch: its same-run figure and command are the
 * `quietDebug` row of docs/sdk-patches.md.
 */
import { createRequire } from 'node:module';

type DebugFn = ((...args: unknown[]) => void) & { enabled: boolean; namespace: string; extend(ns: string): DebugFn; log?: unknown; destroy(): boolean };
type CreateDebug = ((namespace: string) => DebugFn) & Record<string, unknown>;

const quiet: DebugFn = Object.assign(() => undefined, {
  enabled: false,
  namespace: '',
  extend: (): DebugFn => quiet,
  destroy: (): boolean => false,
});

/**
 * Installs the quiet factory for the copy of `debug` that `azure-iot-device-mqtt` resolves (the SDK,
 * mqtt.js and machina share it here). Returns whether it did: false when `DEBUG` is set, the SDK was
 * already loaded with the real one, or `debug` cannot be found.
 */
export function quietSdkDebug(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.DEBUG) return false;
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    path = createRequire(require.resolve('azure-iot-device-mqtt/package.json')).resolve('debug');
  } catch {
    return false;
  }
  const real = require(path) as CreateDebug;
  if (real.eddyQuiet === true) return true;
  const cached = require.cache[path];
  if (cached === undefined) return false;
  const factory = Object.assign((namespace: string): DebugFn => {
    // A namespace enabled by other means (`debug.enable` before this ran) keeps its real logger.
    const inst = real(namespace);
    return inst.enabled ? inst : quiet;
  }, real, { eddyQuiet: true }) as CreateDebug;
  cached.exports = factory;
  return true;
}

quietSdkDebug();
