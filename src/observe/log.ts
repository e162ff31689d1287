// Structured logging. Callers pass only fields they chose (never request bodies), and every value is
// run through `redact` so that a PEM block or key material that slips into an error message does not
// reach the log. Values may come from request bodies (a Cluster's name): JSON lines escape them; text
// lines pass them through oneLine (no control characters, no line breaks) and quote what needs it.
import { oneLine } from '../lib/text.ts';

/** Longest value a text log line carries. */
const TEXT_VALUE_MAX = 4096;
const textValue = (v: string) => {
  const line = oneLine(v, TEXT_VALUE_MAX);
  return line === '' || /[\s"=\\]/.test(line) ? JSON.stringify(line) : line;
};

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';
export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LOG_LEVELS = Object.keys(ORDER) as LogLevel[];

const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g;
const LONG_BASE64 = /[A-Za-z0-9+/=_-]{200,}/g;

/** Removes PEM blocks and long base64 runs (Secret data) from any text bound for logs or responses. */
export const redact = (text: string): string =>
  text.replace(PEM_BLOCK, '[redacted PEM]').replace(LONG_BASE64, '[redacted data]');

export function createLogger(opts: {
  level: LogLevel;
  format: LogFormat;
  write?: (line: string) => void;
  now?: () => Date;
}): Logger {
  const write = opts.write ?? ((line: string) => console.error(line));
  const now = opts.now ?? (() => new Date());
  const min = ORDER[opts.level];
  const emit = (level: LogLevel, msg: string, fields: LogFields = {}) => {
    if (ORDER[level] < min) return;
    const clean: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(fields)) {
      if (v !== undefined) clean[k] = typeof v === 'string' ? redact(v) : v;
    }
    const ts = now().toISOString();
    if (opts.format === 'json') {
      write(JSON.stringify({ ts, level, msg: redact(msg), ...clean }));
    } else {
      const rest = Object.entries(clean).map(([k, v]) => `${k}=${typeof v === 'string' ? textValue(v) : v}`);
      write([ts, level.toUpperCase(), oneLine(redact(msg), TEXT_VALUE_MAX), ...rest].join(' '));
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
