#!/usr/bin/env node
/**
 * The `eddy` command (docs/cli.md). `eddy` alone or `eddy start` starts the module like
 * `node dist/main.js`; `eddy run` replays recorded telemetry through a rule set; `eddy validate`
 * checks a rule file; `eddy compile` turns an ASA query into rules; `eddy detect` scores a timestamp,value CSV with one anomaly rule.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const [cmd, ...rest] = process.argv.slice(2);

const USAGE = `usage: eddy [COMMAND] [--help]

  eddy [start]                                          start the module (local mode without IoT Edge
                                                        variables: simulated sensor -> rules -> stdout)
  eddy run --rules FILE [--input FILE|-] [--format ndjson|json|csv] [--out FILE]
                                                        replay recorded telemetry through a rule set
  eddy validate FILE                                    check a rule file (line and column of each problem)
  eddy compile QUERY.asaql                              print the rule set of an Azure Stream Analytics query
  eddy detect --rule FILE --csv FILE [--out FILE]       score a timestamp,value CSV with one anomaly rule
  eddy --version                                        print the version

eddy COMMAND --help prints the options of a command.
`;

async function run(): Promise<number> {
  switch (cmd) {
    case undefined:
    case 'start':
      if (rest.length > 0) {
        process.stderr.write(`eddy start: takes no arguments (the module reads its environment: EDDY_RULES_FILE, EDDY_DATA_DIR, ...)\n`);
        return 2;
      }
      await import('../main.js');
      return -1;
    case 'run': {
      const { runReplay } = await import('./run.js');
      return runReplay(rest);
    }
    case 'validate': {
      const { runValidate } = await import('./validate.js');
      return runValidate(rest);
    }
    case 'compile': {
      const { runCompile } = await import('./compile.js');
      return runCompile(rest);
    }
    case 'detect': {
      const { runDetect } = await import('./detect.js');
      return runDetect(rest);
    }
    case '--version':
    case '-v':
    case 'version':
      process.stdout.write(`${(require('../../package.json') as { version: string }).version}\n`);
      return 0;
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`eddy: unknown command "${cmd}"\n${USAGE}`);
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
