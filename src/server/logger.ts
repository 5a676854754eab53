import type { LogFormat, LogLevel } from './config.js';
import { writeStdoutLine } from './stdout-lines.js';

/** Fields attached to a log line. Never put message bodies, tokens or keys here. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** Written at every level but silent: lines an operator always needs, like where the server listens. */
  always(msg: string, fields?: LogFields): void;
  /**
   * True when lines of `level` are written. Optional (an application's own logger may leave it
   * out: everything is then assumed written); Plaza uses it to skip building the fields of a
   * per-connection line nobody will read, and to know whether its logs need a client's address.
   */
  writes?(level: Exclude<LogLevel, 'silent'>): boolean;
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go. @default process.stdout, the lines of one event-loop turn together (stdout-lines.ts) */
  write?: (line: string) => void;
}

const SEVERITY: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4 };

export function createLogger({ level, format, write = writeStdoutLine }: LoggerOptions): Logger {
  const threshold = SEVERITY[level];
  const line = format === 'json' ? jsonLine : prettyLine;
  const at =
    (name: Exclude<LogLevel, 'silent'>) =>
    (msg: string, fields?: LogFields): void => {
      if (SEVERITY[name] <= threshold) write(line(name, msg, fields));
    };
  return {
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    always: (msg, fields) => {
      if (threshold > 0) write(line('info', msg, fields));
    },
    writes: (name) => SEVERITY[name] <= threshold,
  };
}

function jsonLine(level: string, msg: string, fields?: LogFields): string {
  return `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`;
}

function prettyLine(level: string, msg: string, fields?: LogFields): string {
  const time = new Date().toISOString().slice(11, 23);
  let text = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
  for (const [key, value] of Object.entries(fields ?? {})) {
    if (value !== undefined) text += ` ${key}=${typeof value === 'string' && /\s/.test(value) ? JSON.stringify(value) : value}`;
  }
  return `${text}\n`;
}
