import type { OutputMessage } from '../contracts/output.js';

/**
 * The stored form of an output message and its size. Both outboxes count `bytes` from this text,
 * so the budget (`store.maxMB`) means the same thing on disk and in memory.
 */
export function encodeMessage(message: OutputMessage): { text: string; bytes: number } {
  const text = JSON.stringify(message);
  return { text, bytes: Buffer.byteLength(text, 'utf8') };
}

/** Empty drop counts, the shape `Outbox.enforce` returns. */
export function noDrops(): { budget: { summary: number; alert: number }; ttl: { summary: number; alert: number } } {
  return { budget: { summary: 0, alert: 0 }, ttl: { summary: 0, alert: 0 } };
}
