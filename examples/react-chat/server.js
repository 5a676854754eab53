// Builds app.jsx into dist/ with esbuild and serves it, with Plaza, from one Plaza server:
// the page, its WebSocket, /healthz. Run: npm install && npm start, then open the URL twice.
import { cp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { createPlaza } from 'plaza-realtime';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const out = here('./dist/');

// React from this folder's node_modules, for the app and the hooks alike. A package from the
// registry would find it there by itself; linked from the repository (file:../..), the hooks
// would otherwise find the repository's own React (a devDependency), and two Reacts break hooks.
const local = createRequire(import.meta.url);
const sameReact = {
  name: 'same-react',
  setup(builder) {
    builder.onResolve({ filter: /^react(-dom)?(\/.*)?$/ }, (args) => ({ path: local.resolve(args.path) }));
  },
};

await rm(out, { recursive: true, force: true });
await cp(here('./public/'), out, { recursive: true });
await build({
  entryPoints: [here('./app.jsx')],
  outfile: `${out}app.js`,
  bundle: true,
  minify: true,
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  plugins: [sameReact],
  logLevel: 'warning',
});

const plaza = createPlaza({
  port: Number(process.env.PORT ?? 8080),
  host: process.env.HOST ?? '127.0.0.1',
  publicDir: out,
  logLevel: process.env.LOG_LEVEL ?? 'warn',
});
await plaza.listen();
console.log(`listening on ${plaza.url}`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await plaza.close();
    await rm(out, { recursive: true, force: true });
    process.exit(0);
  });
}
