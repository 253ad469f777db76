import type { Logger } from '../reconcile/ports.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * Structured logger: one JSON object per line ({"ts","level","msg",...fields}), written through the
 * function it is given (stderr in production, an array in tests). No global state.
 */
export function createJsonLogger(options: {
  write: (line: string) => void;
  nowMs: () => number;
  level?: LogLevel;
  fields?: Record<string, unknown>;
}): Logger & { debug(message: string, fields?: Record<string, unknown>): void } {
  const threshold = ORDER[options.level ?? 'info'];
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < threshold) return;
    const record = { ts: new Date(options.nowMs()).toISOString(), level, msg, ...options.fields, ...fields };
    options.write(`${JSON.stringify(record, errorReplacer)}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, ...('code' in value ? { code: value.code } : {}) };
  }
  return value;
}
