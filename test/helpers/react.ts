/**
 * React for the hooks' tests: the versions they run against (the repository's React 19, and
 * React 18 installed into test/react-18 on first use), and the test page bundled with esbuild
 * against one of them and against what the package ships (dist/react.js, dist/public/plaza.mjs).
 */
import { build, type Plugin } from 'esbuild';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { npm } from './package.js';
import { ROOT } from './plaza.js';

export interface ReactVersion {
  /** The major version, as the tests name it. */
  major: string;
  /** A folder whose node_modules holds react and react-dom of that version. */
  dir: string;
}

export const REACT_VERSIONS: readonly ReactVersion[] = [
  { major: '19', dir: ROOT },
  { major: '18', dir: join(ROOT, 'test/react-18') },
];

/** Installs the version's react and react-dom if its folder has none yet; returns the version installed. */
export function ensureReact({ dir }: ReactVersion): string {
  const manifest = join(dir, 'node_modules/react-dom/package.json');
  if (!existsSync(manifest)) npm(['install', '--prefer-offline', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
}

/**
 * Resolves react and react-dom (and their subpaths) from the version's folder, and the sources'
 * entries to the built files the package ships, so the page runs what a user installs.
 */
function shipped({ dir }: ReactVersion): Plugin {
  const fromVersion = createRequire(join(dir, 'package.json'));
  return {
    name: 'shipped',
    setup(builder) {
      builder.onResolve({ filter: /^react(-dom)?(\/.*)?$/ }, (args) => ({ path: fromVersion.resolve(args.path) }));
      builder.onResolve({ filter: /\/src\/react\/index\.js$/ }, () => ({ path: join(ROOT, 'dist/react.js') }));
      builder.onResolve({ filter: /\/src\/client\/index\.js$/ }, () => ({ path: join(ROOT, 'dist/public/plaza.mjs') }));
    },
  };
}

/** Bundles `entry` (a .tsx page) for the browser with the given React, as a development build (StrictMode checks on). */
export async function bundlePage(entry: string, version: ReactVersion, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"development"' },
    plugins: [shipped(version)],
    logLevel: 'warning',
  });
}
