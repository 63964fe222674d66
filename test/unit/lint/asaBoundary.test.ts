import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/**
 * The ASA query parser's boundaries (eslint.config.js): only src/asa imports the parser toolkit
 * (chevrotain), and src/asa is a stage like the others (it imports contracts/, metrics/, time/ and
 * itself; src/cli wires it). Probes linted with the project's own config, as in stageBoundaries.test.ts.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const eslint = new ESLint({ cwd: root });

async function restricted(file: string, specifier: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import * as probe from '${specifier}';\nexport const used = probe;\n`, { filePath: join(root, file) });
  expect(result!.messages.filter((m) => m.fatal)).toEqual([]);
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('src/asa boundaries (eslint.config.js)', () => {
  it.each([
    ['src/rules/probe.ts', 'chevrotain', /only src\/asa imports the parser toolkit/],
    ['src/cli/probe.ts', 'chevrotain', /only src\/asa imports the parser toolkit/],
    ['src/windows/probe.ts', 'chevrotain', /only src\/asa imports the parser toolkit/],
    ['src/io/edgehub/probe.ts', 'chevrotain', /only src\/asa imports the parser toolkit/],
    ['src/asa/probe.ts', '../rules/compileRule.js', /src\/asa must not import src\/rules/],
    ['src/asa/probe.ts', '../windows/windowSpec.js', /src\/asa must not import src\/windows/],
    ['src/windows/probe.ts', '../asa/parseQuery.js', /src\/windows must not import src\/asa/],
  ])('%s importing %s fails lint', async (file, specifier, message) => {
    expect((await restricted(file, specifier)).join('\n')).toMatch(message);
  });

  it.each([
    ['src/asa/probe.ts', 'chevrotain'],
    ['src/asa/probe.ts', './ast.js'],
    ['src/asa/probe.ts', '../contracts/rule.js'],
    ['src/cli/probe.ts', '../asa/compileQuery.js'],
  ])('%s importing %s passes', async (file, specifier) => {
    expect(await restricted(file, specifier)).toEqual([]);
  });
});
