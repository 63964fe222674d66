import { isUtf8 } from 'node:buffer';
import type { IngestEvent, Reject } from '../contracts/event.js';

/** Limits from docs/contract.md section 3. */
export const MAX_BODY_BYTES = 256 * 1024;
export const MAX_DEPTH = 32;

/** Where an input came from: edgeHub's `$.cdid`/`$.cmid` (absent in local mode: "local"). */
export interface MessageMeta {
  readonly input: string;
  readonly deviceId?: string | undefined;
  readonly moduleId?: string | undefined;
  readonly arrival: number;
}

/** Events decoded from one message and the rejections met on the way (a batch can have both). */
export interface DecodeResult {
  readonly events: IngestEvent[];
  readonly rejects: Reject[];
}

/**
 * Decodes one input message body. Never throws: every failure becomes a `Reject` with a fixed reason.
 * A JSON array is a batch whose elements stand alone: good ones become events, bad ones rejections.
 */
export function decodeMessage(body: Buffer | string, meta: MessageMeta): DecodeResult {
  let text: string;
  if (typeof body === 'string') {
    // A UTF-16 unit is 1 to 3 UTF-8 bytes: only a string longer than a third of the limit needs measuring.
    // (Checking `length > MAX_BODY_BYTES` first let 131,073 two-byte characters through: test/unit/hostile/ingestFuzz.test.ts.)
    if (body.length * 3 > MAX_BODY_BYTES && Buffer.byteLength(body) > MAX_BODY_BYTES) return rejectOnly('too-large', `body over ${MAX_BODY_BYTES} bytes`);
    // A leading BOM (U+FEFF) may be ignored (RFC 8259 section 8.1); some .NET senders write one.
    // JSON.parse rejects it, so drop one. A JSON body starts with '{' or '[': one compare in the common case.
    text = body.charCodeAt(0) === 0xfeff ? body.slice(1) : body;
  } else {
    if (body.length > MAX_BODY_BYTES) return rejectOnly('too-large', `body of ${body.length} bytes is over ${MAX_BODY_BYTES}`);
    // toString('utf8') would silently turn bad bytes into U+FFFD; the contract says UTF-8, so check.
    if (!isUtf8(body)) return rejectOnly('not-utf8', 'body is not valid UTF-8');
    // The UTF-8 BOM is EF BB BF (RFC 8259 section 8.1, as above); Buffer#toString keeps it, unlike TextDecoder.
    // The first byte alone rules it out in the common case. The body is valid UTF-8 here, so EF is followed by two more bytes.
    text = body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? body.toString('utf8', 3) : body.toString('utf8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return rejectOnly('not-json', (err as Error).message.slice(0, 120));
  }
  const deviceId = meta.deviceId || 'local';
  const moduleId = meta.moduleId || 'local';
  if (Array.isArray(parsed)) {
    const events: IngestEvent[] = [];
    const rejects: Reject[] = [];
    for (let i = 0; i < parsed.length; i++) {
      const el: unknown = parsed[i];
      // Each element stands alone (docs/contract.md section 3): its depth is measured as if it were the whole body, so the array is not a level.
      const problem = checkElement(el);
      if (problem) rejects.push({ reason: problem, detail: `batch element ${i}` });
      else events.push({ body: el as Record<string, unknown>, deviceId, moduleId, input: meta.input, arrival: meta.arrival });
    }
    return { events, rejects };
  }
  const problem = checkElement(parsed);
  if (problem) return rejectOnly(problem, problem === 'too-deep' ? `nested deeper than ${MAX_DEPTH}` : 'body is not a JSON object');
  return { events: [{ body: parsed as Record<string, unknown>, deviceId, moduleId, input: meta.input, arrival: meta.arrival }], rejects: [] };
}

/** Checks one event body (a whole message or one batch element): an object whose own level counts as depth 1. */
function checkElement(v: unknown): 'not-object' | 'too-deep' | null {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not-object';
  return depthExceeds(v, 1) ? 'too-deep' : null;
}

/** True when `v` nests deeper than MAX_DEPTH. Recursion is bounded by MAX_DEPTH, so hostile nesting cannot blow the stack. */
function depthExceeds(v: object, depth: number): boolean {
  if (depth > MAX_DEPTH) return true;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (x !== null && typeof x === 'object' && depthExceeds(x, depth + 1)) return true;
    }
    return false;
  }
  for (const k in v) {
    const x: unknown = (v as Record<string, unknown>)[k];
    if (x !== null && typeof x === 'object' && depthExceeds(x, depth + 1)) return true;
  }
  return false;
}

function rejectOnly(reason: Reject['reason'], detail: string): DecodeResult {
  return { events: [], rejects: [{ reason, detail }] };
}
