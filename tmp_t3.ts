import { compileSqlExpression } from './src/aggregate/sqlNulls.ts';
const ctx = (body: Record<string, unknown>) => ({ body, deviceId: 'd', moduleId: 'm' }) as never;
const cases: [string, Record<string, unknown>][] = [
  ['t + null', { t: 1 }], ['t + 1', { t: null }], ['t + 1', {}], ['t > 5', {}], ['not (t == 5)', { t: null }], ['t > 5 or u > 1', { u: 2 }],
  ['t > 5 and u > 1', { u: 0 }], ['t > 5 ? "hi" : t', { t: 3 }], ['t > 5 ? "hi" : t', { t: 7 }], ['(isNull(t) ? 0 : t) + 1', {}], ['t == null', { t: null }],
  ['isNull(t * 2)', { t: null }], ['s + 1', { s: 'x' }], ['t', {}], ['m', { m: 'A' }], ['m == "A"', { m: 'A' }], ['(t > 1 ? null : 2) * 3', { t: 0 }], ['(t > 1 ? null : 2) * 3', { t: 5 }],
];
for (const [src, body] of cases) {
  const r = compileSqlExpression(src);
  if (!r.ok) { console.log(src, 'COMPILE', r.error); continue; }
  try { console.log(src, JSON.stringify(body), '=>', JSON.stringify(r.value.fn(ctx(body))), r.value.str); } catch (e) { console.log(src, 'THROW', (e as Error).message); }
}
