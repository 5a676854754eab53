/**
 * `node dist/server.js`: flags and environment → options → a running Plaza.
 * Exit codes: 0 after a clean shutdown, 1 when the server cannot start, 2 for a bad option
 * (including a TLS file or --data-dir that cannot be used).
 */
import { fileURLToPath } from 'node:url';
import { helpText, inFlagTerms, parseCommandLine } from './command-line.js';
import { ConfigError } from './config.js';
import { createLogger } from './logger.js';
import { writeStdoutLine } from './stdout-lines.js';
import { createPlaza } from './plaza.js';
import { mintToken } from './token-command.js';

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'token') {
    try {
      process.stdout.write(mintToken(argv.slice(1), process.env));
      return;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      process.stderr.write(`plaza token: ${error.message}\n`);
      process.exit(2);
    }
  }
  let commandLine;
  try {
    commandLine = parseCommandLine(argv, process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`plaza: ${error.message}\n`);
    process.exit(2);
  }
  if (commandLine.command === 'help') {
    process.stdout.write(helpText());
    return;
  }
  const options = commandLine.options;
  // The server's own process: nothing else writes to its stdout, so a turn's lines go out in one write.
  const logger = createLogger({ level: options.logLevel, format: options.logFormat, write: writeStdoutLine });
  // The built page and client sit beside this file in dist/public; --public-dir is laid over them.
  const plaza = createPlaza(options, { logger, builtinPublicDir: fileURLToPath(new URL('./public/', import.meta.url)) });

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      // A second Ctrl-C means "now".
      process.exit(1);
    }
    stopping = true;
    logger.info('shutting down', { signal });
    plaza.close().then(
      () => process.exit(0),
      (error) => {
        logger.error('shutdown failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  // A promise nobody awaited must not take every client down with it: log it loudly and serve on.
  process.on('unhandledRejection', (reason) => {
    logger.error('unhandled rejection', { error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason) });
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));

  try {
    await plaza.start();
  } catch (error) {
    // A file an option names that cannot be used (TLS files, --data-dir) is a bad option: exit 2,
    // naming the flag. Anything else (port taken, folder locked) is a failure to start: exit 1.
    if (error instanceof ConfigError) {
      process.stderr.write(`plaza: ${inFlagTerms(error).message}\n`);
      process.exit(2);
    }
    const code = (error as { code?: unknown } | null)?.code;
    process.stderr.write(`plaza: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(code === 'PLAZA_ERR_DATA_DIR' ? 2 : 1);
  }
}

await main(process.argv.slice(2));
