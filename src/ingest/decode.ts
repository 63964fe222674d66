import { Observable, type OperatorFunction } from 'rxjs';
import type { IngestEvent, Reject } from '../contracts/event.js';
import { decodeMessage, type MessageMeta } from './decodeMessage.js';

/** One input message as a source delivers it: the raw body and where it came from. */
export interface RawInput extends MessageMeta {
  readonly body: Buffer | string;
}

/**
 * Decodes each input message (decodeMessage) into the batch of its events. Bad input is data, never a
 * stream error, so one bad message cannot end the pipeline for every later input (test/unit/ingest/decode.test.ts): each rejection goes to `onReject` with the input it came from, and a
 * message with no good event emits nothing.
 */
export function decode(onReject: (reject: Reject, input: RawInput) => void): OperatorFunction<RawInput, readonly IngestEvent[]> {
  return (source) =>
    new Observable<readonly IngestEvent[]>((subscriber) =>
      source.subscribe({
        next: (input) => {
          const { events, rejects } = decodeMessage(input.body, input);
          for (const r of rejects) onReject(r, input);
          if (events.length > 0) subscriber.next(events);
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      }),
    );
}
