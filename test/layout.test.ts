/**
 * The layout the code teaches (docs/architecture.md): no import cycles anywhere in src/, and
 * arrows that point one way between the server's folders. A new cycle or an arrow against the
 * grain fails here, naming the files.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './helpers/plaza.js';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sources(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** Every relative import of each file (type-only imports too: they are arrows of the design). */
function imports(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of [...sources(join(ROOT, 'src')), ...sources(join(ROOT, 'public'))]) {
    const text = readFileSync(file, 'utf8');
    const targets: string[] = [];
    for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'";]*?from\s*'(\.{1,2}\/[^']+)'|import\(\s*'(\.{1,2}\/[^']+)'\s*\)/g)) {
      const spec = (match[1] ?? match[2])!;
      targets.push(relative(ROOT, resolve(dirname(file), spec.replace(/\.js$/, '.ts'))));
    }
    graph.set(relative(ROOT, file), targets);
  }
  return graph;
}

/** Strongly connected components with more than one file (or a file importing itself). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const on = new Set<string>();
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const found: string[][] = [];
  const visit = (node: string) => {
    indices.set(node, index);
    low.set(node, index++);
    stack.push(node);
    on.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!indices.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (on.has(next)) low.set(node, Math.min(low.get(node)!, indices.get(next)!));
    }
    if (low.get(node) === indices.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        on.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!indices.has(node)) visit(node);
  return found;
}

/** Which part of the code a file belongs to. */
function partOf(file: string): string {
  const server = /^src\/server\/([^/]+)\//.exec(file);
  if (server) return server[1]!;
  if (file.startsWith('src/server/')) return file.slice('src/server/'.length).replace(/\.ts$/, '');
  return file.split('/')[0] === 'src' ? file.split('/')[1]! : file.split('/')[0]!;
}

/**
 * What each part may import besides itself. Arrows point down: http, sessions and the websocket side use rooms,
 * engine and access; rooms uses engine; engine uses nothing of theirs. config and logger are
 * the foundation every part may read, with bounds.ts (the fixed limits); node/ holds rooms and history without sockets; plaza.ts, main.ts and the token command compose it all.
 * hooks (the application's code in the path) sits under rooms and connections; webhooks is fed
 * by app-events, which turns the broker's news into events and webhook events; index only
 * re-exports the library's surface.
 */
const ALLOWED: Record<string, readonly string[]> = {
  shared: [],
  client: ['shared'],
  react: ['client'],
  public: ['client', 'shared'],
  engine: ['shared'],
  access: ['shared', 'config', 'logger', 'bounds'],
  hooks: ['engine', 'access', 'shared', 'config', 'logger', 'bounds'],
  webhooks: ['shared', 'config', 'logger', 'bounds'],
  rooms: ['engine', 'hooks', 'shared', 'config', 'logger', 'redis-target', 'bounds'],
  sessions: ['rooms', 'engine', 'access', 'hooks', 'shared', 'config', 'logger', 'bounds'],
  websocket: ['sessions', 'rooms', 'engine', 'access', 'hooks', 'shared', 'config', 'logger', 'bounds'],
  streams: ['sessions', 'rooms', 'engine', 'access', 'hooks', 'shared', 'config', 'logger', 'bounds'],
  node: ['rooms', 'engine', 'hooks', 'webhooks', 'app-events', 'shared', 'config', 'logger', 'bounds'],
  http: ['rooms', 'engine', 'access', 'hooks', 'webhooks', 'shared', 'config', 'logger', 'bounds'],
  'app-events': ['rooms', 'engine', 'hooks', 'webhooks', 'config', 'logger', 'bounds'],
  config: ['shared', 'access', 'redis-target', 'bounds'],
  'redis-target': [],
  bounds: [],
  logger: ['config', 'stdout-lines'],
  /** The process's one stdout writer, batching the logger's lines: it imports nothing of Plaza's. */
  'stdout-lines': [],
  'command-line': ['config', 'closest-name', 'bounds'],
  'closest-name': [],
  'token-command': ['access', 'config', 'command-line'],
  plaza: ['*'],
  index: ['*'],
  main: ['*'],
};

describe('layout', () => {
  const graph = imports();

  it('has no import cycle', () => {
    assert.deepEqual(cycles(graph), []);
  });

  it('has arrows that point one way between the server folders', () => {
    const against: string[] = [];
    for (const [file, targets] of graph) {
      const from = partOf(file);
      const allowed = ALLOWED[from];
      assert.ok(allowed, `${file} belongs to no known part (${from}); add it to ALLOWED with what it may import`);
      for (const target of targets) {
        const to = partOf(target);
        if (to === from || allowed.includes('*') || allowed.includes(to)) continue;
        against.push(`${file} -> ${target}`);
      }
    }
    assert.deepEqual(against, []);
  });

  it('says, at the top of each server folder\'s main file, what the folder owns and may import', () => {
    const mains = [
      'engine/hub.ts', 'rooms/broker.ts', 'rooms/backplane/types.ts', 'websocket/connection.ts', 'sessions/commands.ts', 'node/node.ts', 'access/tokens.ts', 'http/router.ts',
      'hooks/types.ts', 'webhooks/signature.ts', 'streams/stream.ts',
    ];
    for (const main of mains) {
      const head = readFileSync(join(ROOT, 'src/server', main), 'utf8').slice(0, 1500);
      assert.match(head, /may import/i, `${main} opens with the folder's paragraph`);
    }
  });
});
