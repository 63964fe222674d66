import type { OutputMessage, Sink } from '../../contracts/output.js';

/** One output message as local mode prints it (docs/contract.md section 1): a JSON line, without the newline (`eddy run` prints the same). */
export function outputLine(m: OutputMessage): string {
  return JSON.stringify({
    output: m.output,
    properties: { 'eddy-kind': m.kind, 'eddy-rule': m.rule, messageId: m.id, contentType: 'application/json', contentEncoding: 'utf-8' },
    body: m.body,
  });
}

/** Local mode's sink (docs/contract.md section 1): one JSON line per output message on stdout. */
export class StdoutSink implements Sink {
  constructor(private readonly write: (line: string) => boolean = (l) => process.stdout.write(l)) {}

  async send(m: OutputMessage): Promise<void> {
    const line = outputLine(m);
    if (!this.write(line + '\n')) await new Promise<void>((resolve) => process.stdout.once('drain', () => resolve()));
  }
}
