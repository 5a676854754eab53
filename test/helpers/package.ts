/**
 * The npm package for tests that install it: `npm pack` of the repository and npm run with quiet
 * settings. Packing uses --ignore-scripts: `npm test` built dist/ and dist/types/ already, and
 * rebuilding them (the prepack script) would replace files other test files are reading.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './plaza.js';

/** npm installs get this long: the registry may be slow the first time, the cache is quick after. */
export const INSTALL_TIMEOUT = 240_000;

/** The version of a package installed in the repository, so a test project gets the same from the cache. */
export function installed(name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

export function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, {
    cwd,
    encoding: 'utf8',
    timeout: INSTALL_TIMEOUT,
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' },
  });
}

/** Packs the repository into `dir`; returns the tarball's path and the files it holds. */
export function pack(dir: string): { tarball: string; files: string[] } {
  const [result] = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', dir], ROOT)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  return { tarball: join(dir, result!.filename), files: result!.files.map((file) => file.path) };
}
