import { createRequire } from 'node:module';

/**
 * mathjs, loaded from its single-file bundle. Why: `import 'mathjs'` loads about a thousand ES
 * modules, 0.6 s on an idle 2-core machine and 4 s under load (measured here), most of the
 * module's start-up and too slow for `npm start`'s "first summaries within 10 s"; the bundle
 * (`mathjs/lib/browser/math.js`, exported by the package) is the same version's code in one file
 * and loads in about 0.3 s. The types are those of the package.
 */
const require = createRequire(import.meta.url);
const mathjs = require('mathjs/lib/browser/math.js') as typeof import('mathjs');

export const { parse, ceil, floor, hypot, round } = mathjs;
