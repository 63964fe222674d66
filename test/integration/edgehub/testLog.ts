import type { EdgeHubLogger } from '../../../src/io/edgehub/edgeHubConnection.js';

/** A logger that keeps every line, for assertions (and prints nothing). */
export function recordingLogger(): EdgeHubLogger & { lines: Array<{ level: string; obj: unknown; msg: string | undefined }>; text(): string } {
  const lines: Array<{ level: string; obj: unknown; msg: string | undefined }> = [];
  const at = (level: string) => (obj: unknown, msg?: string) => void lines.push({ level, obj, msg });
  return {
    lines,
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    debug: at('debug'),
    text: () => lines.map((l) => `${l.level} ${l.msg ?? ''} ${JSON.stringify(l.obj)}`).join('\n'),
  };
}
