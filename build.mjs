// Builds everything Plaza ships, with esbuild:
//   dist/server.js        the CLI, one self-contained ESM file (ws, jose and ioredis bundled in;
//                         jose and ioredis are dynamic imports, evaluated only when used)
//   dist/index.js         the library (`import { createPlaza } from 'plaza-realtime'`); ws and
//                         ioredis stay imports, resolved from the package's dependencies
//   dist/public/          the chat page and the embeddable client (plaza.js global, plaza.mjs module)
//   dist/react.js         the React hooks (`plaza-realtime/react`); react and the client stay imports
// `node build.mjs --types` writes the .d.ts of the library and the client into dist/types/ with
// tsc (the package needs them; `npm test` and `npm pack` build them).
// `node build.mjs --tests` also bundles test/**/*.test.ts into build/test/ for `node --test`,
// because Node 20 (our floor) cannot run TypeScript by itself, and test/prerequisites.ts into
// build/prerequisites.js, which `npm test` runs first (outside build/test/: it is no test file).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, readdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';

const root = new URL('.', import.meta.url).pathname;
const withTests = process.argv.includes('--tests');
const withTypes = process.argv.includes('--types');

// ws is CommonJS and calls require('events') etc.; inside an ESM bundle `require` does not
// exist, so give the bundle a real one.
const requireBanner =
  "import { createRequire as __plazaCreateRequire } from 'node:module';" +
  'const require = __plazaCreateRequire(import.meta.url);';

async function buildServer() {
  await build({
    entryPoints: [join(root, 'src/server/main.ts')],
    outfile: join(root, 'dist/server.js'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: `#!/usr/bin/env node\n${requireBanner}` },
    // ws tries these optional native add-ons in a try/catch; never bundle or require them.
    external: ['bufferutil', 'utf-8-validate'],
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
  });
}

async function buildLibrary() {
  await build({
    entryPoints: [join(root, 'src/server/index.ts')],
    outfile: join(root, 'dist/index.js'),
    bundle: true,
    // The package's dependencies (ws, ioredis, jose) are installed beside it: imported, not copied
    // in, so an app that uses ws itself gets one copy, and ioredis and jose stay lazy import()s.
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'warning',
  });
}

/** Declarations from the sources, one .d.ts per module under dist/types/ (server/, client/, shared/). */
async function buildTypes() {
  await rm(join(root, 'dist/types'), { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.types.json')], { stdio: 'inherit' });
}

/**
 * The hooks import Plaza's client as ./public/plaza.mjs, the module the package ships beside
 * them, rather than bundling a second copy: an app that uses `plaza-realtime/client` too gets
 * one client, one PlazaError class. React is the application's own (a peer dependency).
 */
async function buildReact() {
  const clientAsShipped = {
    name: 'client-as-shipped',
    setup(builder) {
      builder.onResolve({ filter: /\/client\/index\.js$/ }, () => ({ path: './public/plaza.mjs', external: true }));
    },
  };
  await build({
    entryPoints: [join(root, 'src/react/index.ts')],
    outfile: join(root, 'dist/react.js'),
    bundle: true,
    external: ['react'],
    plugins: [clientAsShipped],
    platform: 'neutral',
    format: 'esm',
    target: 'es2020',
    legalComments: 'none',
    logLevel: 'warning',
  });
}

async function buildPublic() {
  const out = join(root, 'dist/public');
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  const browser = { bundle: true, minify: true, target: 'es2020', platform: 'browser', logLevel: 'warning' };
  await Promise.all([
    build({ ...browser, entryPoints: [join(root, 'src/client/browser.ts')], outfile: join(out, 'plaza.js'), format: 'iife' }),
    build({ ...browser, entryPoints: [join(root, 'src/client/index.ts')], outfile: join(out, 'plaza.mjs'), format: 'esm' }),
    build({ ...browser, entryPoints: [join(root, 'public/chat.ts')], outfile: join(out, 'chat.js'), format: 'iife' }),
    build({ ...browser, entryPoints: [join(root, 'public/status.ts')], outfile: join(out, 'status.js'), format: 'iife' }),
  ]);
  for (const name of await readdir(join(root, 'public'))) {
    if (!name.endsWith('.ts')) await cp(join(root, 'public', name), join(out, name), { recursive: true });
  }
}

async function listTests(dir) {
  const found = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    // test/react-18/node_modules: React 18, installed there for the hooks' tests.
    if (entry.isDirectory() && entry.name != 'node_modules') found.push(...(await listTests(path)));
    else if (entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

async function buildTests() {
  const out = join(root, 'build/test');
  await rm(out, { recursive: true, force: true });
  const entryPoints = await listTests(join(root, 'test'));
  const forNode = {
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    banner: { js: requireBanner },
    logLevel: 'warning',
  };
  await Promise.all([
    build({ ...forNode, entryPoints, outdir: out, outbase: join(root, 'test') }),
    build({ ...forNode, entryPoints: [join(root, 'test/prerequisites.ts')], outfile: join(root, 'build/prerequisites.js') }),
  ]);
  console.log(`built ${entryPoints.length} test files into ${relative(root, out)}/`);
}

if (withTests) {
  await buildTests();
} else if (withTypes) {
  await buildTypes();
} else {
  await Promise.all([buildServer(), buildLibrary(), buildPublic(), buildReact()]);
}
