/**
 * The command line: the rules the server and the `token` subcommand share (on node:util
 * parseArgs), the text of flags and environment variables read into options (sizes with their
 * units, booleans, lists; validated by config.ts, the same pass `createPlaza` uses), and `--help`.
 */
import { parseArgs } from 'node:util';
import { closestName } from './closest-name.js';
import { checkValue, ConfigError, DEFAULTS, describeAllowed, OPTION_SPECS, resolveOptions, type OptionSpec, type PlazaOptions } from './config.js';

export type CommandLine = { command: 'help' } | { command: 'serve'; options: PlazaOptions };

/** A flag `readFlags` knows: booleans take no separate value, others need one. */
export interface FlagRule {
  flag: string;
  boolean?: boolean;
  /** What a missing value should have been, for the error. */
  expected?: string;
}

/**
 * The command-line rules the server and the `token` subcommand share, on node:util parseArgs:
 * `--flag value` and `--flag=value`; a boolean flag alone means true and takes a value only as
 * `--flag=false`; `--help`/`-h` anywhere asks for help. Anything else (an unknown flag, a stray
 * word, a missing value) is a ConfigError naming what to fix. Values by flag, the last one wins.
 */
export function readFlags(argv: readonly string[], rules: readonly FlagRule[]): { help: boolean; values: Map<string, string> } {
  type ParseOption = { type: 'string' | 'boolean'; short?: string };
  const options: Record<string, ParseOption> = { help: { type: 'boolean', short: 'h' } };
  for (const rule of rules) options[rule.flag.slice(2)] = { type: rule.boolean ? 'boolean' : 'string' };
  // strict: false, so that every problem gets Plaza's own one-line error instead of parseArgs'.
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const values = new Map<string, string>();
  /** A switch given without `=`: the word right after it is most likely meant as its value. */
  let bareSwitch: string | undefined;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      if (bareSwitch) throw new ConfigError(bareSwitch, `is a switch and takes no separate value (got ${JSON.stringify(token.value)}): write ${bareSwitch} alone for true, or ${bareSwitch}=false`);
      throw new ConfigError(JSON.stringify(token.value), 'unexpected argument: a value goes right after its flag (--flag value or --flag=value)');
    }
    bareSwitch = undefined;
    if (token.name === 'help') return { help: true, values };
    const rule = token.rawName.startsWith('--') ? rules.find((r) => r.flag === token.rawName) : undefined;
    if (!rule) {
      const guess = closestName(token.rawName, rules.map((r) => r.flag));
      throw new ConfigError(token.rawName, guess ? `unknown option; did you mean ${guess}? Run with --help to see every option` : 'unknown option; run with --help to see every option');
    }
    if (rule.boolean) {
      if (token.value === undefined) bareSwitch = rule.flag;
      values.set(rule.flag, token.value ?? 'true');
      continue;
    }
    // parseArgs would take the next flag as the value: `--port --host x` is a missing port.
    if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) {
      throw new ConfigError(rule.flag, `needs a value${rule.expected ? `: ${rule.expected}` : ''}`);
    }
    values.set(rule.flag, token.value);
  }
  return { help: false, values };
}

/**
 * Reads options from the environment, then from flags (flags win); see readFlags for the rules.
 * @throws ConfigError naming the flag or variable and what is allowed.
 */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): CommandLine {
  const raw: Partial<Record<keyof PlazaOptions, unknown>> = {};
  for (const spec of OPTION_SPECS) {
    const text = env[spec.env];
    if (text === undefined || text === '') continue;
    raw[spec.key] = parseText(spec, text, spec.env);
  }
  const flags = readFlags(
    argv,
    OPTION_SPECS.map((spec) => ({ flag: spec.flag, boolean: spec.kind === 'boolean', expected: describeAllowed(spec) })),
  );
  if (flags.help) return { command: 'help' };
  for (const spec of OPTION_SPECS) {
    const text = flags.values.get(spec.flag);
    if (text !== undefined) raw[spec.key] = parseText(spec, text, spec.flag);
  }
  try {
    return { command: 'serve', options: resolveOptions(raw as Partial<PlazaOptions>) };
  } catch (error) {
    throw error instanceof ConfigError ? inFlagTerms(error) : error;
  }
}

/**
 * A ConfigError from the library's validation, told in the command line's words: the option by
 * its flag, and every other option the message names (as `maxPayload`, in backquotes) too.
 */
export function inFlagTerms(error: ConfigError): ConfigError {
  const flagOf = (key: string) => OPTION_SPECS.find((s) => s.key === key)?.flag;
  const flag = flagOf(error.option);
  if (!flag) return error;
  const message = error.message.slice(error.option.length + 2).replace(/`(\w+)`/g, (quoted, key: string) => flagOf(key) ?? quoted);
  return new ConfigError(flag, message);
}

function parseText(spec: OptionSpec, text: string, source: string): unknown {
  const value = fromText(spec, text);
  if (value === undefined || !checkValue(spec, value)) {
    throw new ConfigError(source, `expected ${describeAllowed(spec)}, got ${spec.secret ? 'something else' : JSON.stringify(text)}`);
  }
  return value;
}

/**
 * Size suffixes, case-insensitive: KiB/MiB/GiB are powers of 1024 and KB/MB/GB powers of 1000
 * (IEC 80000-13), so `1MB` is 1,000,000 bytes. A bare K, M or G could mean either and is refused.
 */
const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Turns text from argv or env into the option's type; undefined when the text is not of that type. */
function fromText(spec: OptionSpec, text: string): unknown {
  const t = text.trim();
  switch (spec.kind) {
    case 'integer':
      return /^-?\d+$/.test(t) ? Number(t) : undefined;
    case 'bytes': {
      const m = /^(\d+)\s*([a-z]*)$/i.exec(t);
      const unit = m ? BYTE_UNITS[m[2]!.toLowerCase()] : undefined;
      return m && unit ? Number(m[1]) * unit : undefined;
    }
    case 'boolean':
      // Only the two words: `--status=yes` or `STATUS=off` are refused rather than guessed at.
      if (/^true$/i.test(t)) return true;
      if (/^false$/i.test(t)) return false;
      return undefined;
    case 'list':
      return t === '' ? [] : t.split(',').map((item) => item.trim()).filter(Boolean);
    default:
      return text;
  }
}

/** Where descriptions start in --help; a longer flag puts its description on the next line. */
const HELP_COLUMN = 32;

function placeholder(spec: OptionSpec): string {
  if (spec.kind === 'boolean') return '';
  if (spec.value) return ` ${spec.value}`;
  if (spec.kind === 'choice') return ` <${spec.choices!.join('|')}>`;
  return spec.kind === 'bytes' ? ' <size>' : ' <n>';
}

function shownDefault(spec: OptionSpec): string {
  if (spec.defaultText) return ` [default: ${spec.defaultText}]`;
  const fallback = DEFAULTS[spec.key];
  return fallback === '' || (Array.isArray(fallback) && fallback.length === 0) ? '' : ` [default: ${fallback}]`;
}

export function helpText(): string {
  const indent = ' '.repeat(HELP_COLUMN);
  const rows = OPTION_SPECS.map((spec) => {
    const left = `  ${spec.flag}${placeholder(spec)}`;
    const head = left.length + 2 <= HELP_COLUMN ? left.padEnd(HELP_COLUMN) : `${left}\n${indent}`;
    return `${head}${spec.help}${shownDefault(spec)}\n${indent}env ${spec.env}`;
  });
  return [
    'Plaza: a real-time broadcast server for the web.',
    '',
    'Usage: node dist/server.js [options]',
    '       node dist/server.js token --sub <user> [--rooms <list>] [--ttl 1h]   (mint a test token)',
    '',
    'Options (flags win over environment variables):',
    ...rows,
    `${'  --help, -h'.padEnd(HELP_COLUMN)}print this help and exit`,
    '',
    'Sizes take KiB/MiB/GiB (×1024) or KB/MB/GB (×1000): 64KiB is 65536 bytes, 1MB is 1000000.',
    'Times are in milliseconds.',
    '',
  ].join('\n');
}
