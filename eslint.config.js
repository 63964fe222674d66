// ESLint flat config: typescript-eslint, plus dependency rules that keep the folder layout (README,
// "Folders"): a stage imports contracts/, metrics/, time/ (shared clock utilities), util/ (small
// dependency-free helpers: PRNG, backoff, field paths) and itself; only the composition root (src/main.ts, an
// src/app/), the rule-plan compiler (src/rules/) and the CLI wire stages together; only src/store imports
// better-sqlite3; only src/io/edgehub imports the IoT SDK (azure-iot-*); only src/io/mqtt imports mqtt;
// only src/asa imports chevrotain.
// test/unit/lint/stageBoundaries.test.ts lints probes against each rule.
//
// In a flat config, the last block that sets a rule for a file replaces earlier settings of that rule
// instead of merging with them, so each file group below gets ONE `no-restricted-imports` with all of
// its restrictions, and the groups are listed from the widest (all of src/) to the narrowest.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Folders of src/ that are pipeline stages (or shared layers) and so must not import one another. */
const stages = ['contracts', 'util', 'metrics', 'time', 'ingest', 'windows', 'aggregate', 'anomaly', 'store', 'forward', 'io', 'config', 'asa'];
/** Folders and files that wire stages together; a stage must not import them either. */
const wiring = ['rules', 'cli', 'app', 'main.js'];
/**
 * What every stage may import from elsewhere in src/: the shared layers. contracts/ and util/ import
 * nothing else of src/ (util/ holds code any layer may need, so it must not depend on one).
 */
const shared = { contracts: [], util: [], metrics: ['contracts', 'util'], time: ['contracts', 'util'] };

/**
 * Crossings that exist and are allowed on purpose, each named: stage -> folder -> files.
 * - anomaly -> windows/recencyList.js: the intrusive recency list (O(1) least-recently-seen eviction)
 *   is a plain data structure shared by the window operators and the anomaly stage's per-key state,
 *   not window logic; it lives in windows/ beside its main users, the window operators.
 */
const allowed = { anomaly: { windows: ['recencyList.js'] } };

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const SQLITE = { regex: '^better-sqlite3(/|$)', message: 'only src/store imports better-sqlite3 (the folder layout: README.md "Folders")' };
const SDK = { regex: '^azure-iot-', message: 'only src/io/edgehub imports the IoT SDK (azure-iot-*)' };
const MQTT = { regex: '^mqtt(/|$)', message: 'only src/io/mqtt imports mqtt.js' };
const PARSER = { regex: '^chevrotain(/|$)', message: 'only src/asa imports the parser toolkit (chevrotain; docs/asa-migration.md)' };

/** The import patterns a file of `stage` may not use. */
function stagePatterns(stage) {
  const may = new Set([stage, ...(shared[stage] ?? ['contracts', 'util', 'metrics', 'time'])]);
  return [...stages.filter((s) => !may.has(s)), ...wiring].map((target) => {
    const files = allowed[stage]?.[target] ?? [];
    const except = files.length ? `(?!(${files.map(escape).join('|')})$)` : '';
    const name = escape(target.replace(/\.js$/, ''));
    return {
      regex: target.endsWith('.js') ? `^(\\.\\./)+${name}(\\.js)?$` : `^(\\.\\./)+${name}(/${except}|$)`,
      message: `src/${stage} must not import src/${target}: a stage imports contracts/, util/, metrics/, time/ and itself; wire stages in main.ts, src/app or src/rules`,
    };
  });
}

const restrict = (patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });


export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/fixtures/**', 'bench/results*', 'src/**/*.generated.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
  // All of src/ (main.ts, rules/, cli/ included): the native, broker-client and parser boundaries.
  { files: ['src/**/*.ts'], rules: restrict([SQLITE, SDK, MQTT, PARSER]) },
  // Each stage: the same, minus its own, plus the other stages and the wiring.
  ...stages.map((stage) => ({
    files: [`src/${stage}/**/*.ts`],
    rules: restrict([...stagePatterns(stage), ...(stage === 'store' ? [] : [SQLITE]), SDK, MQTT, ...(stage === 'asa' ? [] : [PARSER])]),
  })),
  { files: ['src/io/edgehub/**/*.ts'], rules: restrict([...stagePatterns('io'), SQLITE, MQTT, PARSER]) },
  { files: ['src/io/mqtt/**/*.ts'], rules: restrict([...stagePatterns('io'), SQLITE, SDK, PARSER]) },
  // The live page's script runs in the browser (page/, served by src/metrics/metricsServer.ts), as a
  // classic script beside uPlot's, which defines the global `uPlot`.
  {
    files: ['page/**/*.js'],
    languageOptions: { sourceType: 'script', globals: { document: 'readonly', fetch: 'readonly', uPlot: 'readonly' } },
  },
);
