#!/usr/bin/env node
/**
 * The `eddy` command. `eddy` alone (or `eddy run`) starts the module like `node dist/main.js`;
 * `eddy detect --rule FILE --csv FILE [--out FILE]` replays a NAB-style CSV through one anomaly rule.
 */
const [cmd, ...rest] = process.argv.slice(2);

async function run(): Promise<number> {
  switch (cmd) {
    case undefined:
    case 'run':
      await import('../main.js');
      return -1;
    case 'detect': {
      const { runDetect } = await import('./detect.js');
      return runDetect(rest);
    }
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(
        'usage:\n  eddy [run]                                           start the module (local mode without IoT Edge variables)\n' +
          '  eddy detect --rule FILE --csv FILE [--out FILE]      replay a timestamp,value CSV through one anomaly rule (eddy detect --help)\n',
      );
      return 0;
    default:
      process.stderr.write(`eddy: unknown command "${cmd}" (try eddy --help)\n`);
      return 2;
  }
}

run().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`eddy: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
