// ESLint flat config: typescript-eslint, plus a dependency rule that keeps the stage boundaries of STYLE.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const stages = ['ingest', 'windows', 'aggregate', 'anomaly', 'store', 'forward', 'io', 'config', 'rules', 'cli'];

/** A stage imports contracts/, metrics/ and itself; only main.ts (and the engine in rules/, the CLI) wires stages together. */
const boundaryRules = stages
  .filter((s) => !['rules', 'cli', 'config'].includes(s))
  .map((stage) => ({
    files: [`src/${stage}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: stages.filter((s) => s !== stage).map((s) => ({ group: [`../${s}/*`, `../../${s}/*`], message: `src/${stage} must not import src/${s}: wire stages in main.ts` })),
      }],
    },
  }));

const sdkOnly = ['azure-iot-device', 'azure-iot-device-mqtt'].map((name) => ({ name, message: 'only src/io/edgehub imports the SDK' }));
const mqttOnly = [{ name: 'mqtt', message: 'only src/io/mqtt imports mqtt.js' }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/fixtures/**', 'bench/results*'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'warn',
    },
  },
  ...boundaryRules,
  // Each broker client stays in its adapter folder (a later block overrides an earlier one's rule, hence three).
  { files: ['src/**/*.ts'], ignores: ['src/io/edgehub/**', 'src/io/mqtt/**'], rules: { 'no-restricted-imports': ['error', { paths: [...sdkOnly, ...mqttOnly] }] } },
  { files: ['src/io/edgehub/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: mqttOnly }] } },
  { files: ['src/io/mqtt/**/*.ts'], rules: { 'no-restricted-imports': ['error', { paths: sdkOnly }] } },
);
