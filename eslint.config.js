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
  {
    files: ['src/**/*.ts'],
    ignores: ['src/io/edgehub/**'],
    rules: { 'no-restricted-imports': ['error', { paths: [{ name: 'azure-iot-device', message: 'only src/io/edgehub imports the SDK' }, { name: 'azure-iot-device-mqtt', message: 'only src/io/edgehub imports the SDK' }] }] },
  },
);
