import { compileRule } from '../src/rules/compileRule.js';
console.log(compileRule('x', { kind: 'anomaly', input: 'telemetry', groupBy: ['$deviceId'], value: 'machine.temperature', detector: { type: 'threshold', above: 100, hysteresis: 2 }, cooldown: '0s', output: 'alerts' }).ok);
