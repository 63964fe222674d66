import { describe, expect, it } from 'vitest';
import { alertMessageId, summaryMessageId } from '../../../src/rules/outputMessage.js';

/**
 * The messageIds are a contract (docs/contract.md section 4): the cloud drops duplicates by them, so
 * they must not change between builds. The expected values were computed outside eddy with Python's
 * hashlib: sha256 of the documented text, hex, cut into UUID groups 8-4-4-4-12.
 */
describe('deterministic messageIds', () => {
  it('a tumbling summary: sha256("summary\\n<rule>\\n<hash>\\n<group>\\n<start>\\n<revision>")', () => {
    expect(summaryMessageId('machine1m', 'abcdef0123456789', 'dev1', { type: 'tumbling', start: 1764126000000, end: 1764126060000 }, 0)).toBe(
      '255df75e-6755-9c0f-d96b-62af76a8ed5b',
    );
  });

  it('a sliding summary adds its end and size (empty when absent)', () => {
    expect(summaryMessageId('slide', 'abcdef0123456789', 'dev1', { type: 'sliding', start: 1764126000000, end: 1764126030000 }, 2)).toBe(
      'bebfef1d-43f0-7b8e-fcbb-34b773249c39',
    );
  });

  it('an alert: sha256("alert\\n<rule>\\n<hash>\\n<group>\\n<state>\\n<time>\\n<born>\\n<seq>")', () => {
    expect(alertMessageId('tempSpike', 'abcdef0123456789', 'dev1', 'raised', 1764126005000, 3, 17)).toBe('a96cae67-8848-fbc3-ef29-f74afdd8f067');
  });

  it('an alert of a group restored from a checkpoint without a birth mark leaves <born> empty', () => {
    expect(alertMessageId('tempSpike', 'abcdef0123456789', 'dev1', 'raised', 1764126005000, 0, undefined)).toBe('d5c59013-1927-eb8a-9a30-aac614382df9');
  });
});
