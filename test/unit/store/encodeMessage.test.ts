import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { bodyDigest } from '../../../src/store/encodeMessage.js';
import { makeMessage } from '../../contract/outbox.suite.js';

// The digests of earlier versions are stored (the id log's `digest`, migration 6) and compared with
// new ones after an upgrade: a change of bodyDigest's output would make every re-send a conflict.
describe('bodyDigest', () => {
  it('is the first 16 base64 characters of the SHA-1 of the JSON body (a vector from `openssl sha1 -binary | base64`)', () => {
    // printf '%s' '{"v":1,"s":"é"}' | openssl sha1 -binary | base64  ->  O6kD4Wem55xLngarWnovZBv5aWg=
    expect(bodyDigest({ ...makeMessage(1), body: { v: 1, s: 'é' } } as never)).toBe('O6kD4Wem55xLngarWnovZBv5aWg='.slice(0, 16));
  });

  it('equals the digest made with createHash, as stored by earlier versions, over many bodies', () => {
    for (let n = 0; n < 500; n++) {
      const m = makeMessage(n, { kind: n % 3 === 0 ? 'alert' : 'summary', groupKey: `dev-${n}-ü\u{1F600}` });
      expect(bodyDigest(m)).toBe(createHash('sha1').update(JSON.stringify(m.body)).digest('base64').slice(0, 16));
    }
  });
});
