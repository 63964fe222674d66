// Preloaded into an eddy module by `bench/endToEnd.ts --sdk-patch <name>` to run the built module
// with one of its patches of SDK internals switched off (docs/sdk-patches.md), beside an unchanged
// module in the same run. SDK_PATCHES_OFF (read only here, never by src/) names the patches to leave
// out, comma-separated:
//
//   quietDebug  the SDK's `debug` factory stays the real one (src/io/edgehub/quietSdkDebug.ts)
//   noDelay     TCP_NODELAY is not set on the SDK's socket (EdgeHubConnection `disableNagle`)
//   guard       the socket's `_write`/`_writev` are not wrapped (EdgeHubConnection `guardSocket`):
//               the input journal then writes each input before its handler returns (holdsAcks false)
//
// Each switch undoes the patch through what the module itself exports, after it loaded, so the rest
// of the module is the build under test (EDDY_BENCH_MAIN's dist when set).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const off = new Set((process.env.SDK_PATCHES_OFF ?? '').split(',').filter(Boolean));
const known = new Set(['quietDebug', 'noDelay', 'guard']);
for (const name of off) if (!known.has(name)) throw new Error(`SDK_PATCHES_OFF: unknown patch "${name}" (known: ${[...known].join(', ')})`);

const main = process.env.EDDY_BENCH_MAIN ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js');
const dist = dirname(main);
const require = createRequire(main);

if (off.has('quietDebug')) {
  // quietSdkDebug() leaves a factory marked `eddyQuiet` alone: marking the real one keeps it.
  const debugPath = createRequire(require.resolve('azure-iot-device-mqtt/package.json')).resolve('debug');
  require(debugPath).eddyQuiet = true;
}

const mod = await import(pathToFileURL(join(dist, 'io', 'edgehub', 'edgeHubConnection.js')).href);
const { EdgeHubConnection } = mod;

if (off.has('noDelay')) EdgeHubConnection.prototype.disableNagle = function () {};

if (off.has('guard')) {
  EdgeHubConnection.prototype.guardSocket = function () {
    this.guardedSocket = undefined;
  };
}

if (off.size > 0) process.stderr.write(`sdkPatchesOffPreload: off ${[...off].join(', ')} in pid ${process.pid}\n`);
