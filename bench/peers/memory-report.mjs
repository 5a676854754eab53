/**
 * Preloaded into a soak's servers (`node --import ./bench/peers/memory-report.mjs <server>`), so
 * the soak can tell memory a server keeps from garbage it has not collected yet, without a line of
 * the server changing (the peers stay tutorial servers; Plaza keeps its options).
 *
 * On SIGUSR2 it reads process.memoryUsage(), runs a full garbage collection, reads it again and
 * prints one JSON line:
 *   {"msg":"memory","heapUsed":<bytes>,"rss":<bytes>,"liveHeapUsed":<bytes>,"liveRss":<bytes>}
 * Heap in use as read depends mostly on when V8 last ran a mark-compact (old-space garbage stays
 * counted until then, tens of MiB under 1 KiB messages); after a full collection it is what the
 * process holds on to. No timer: between signals the process runs exactly as without it.
 *
 * `gc` comes from a new V8 context: setting --expose-gc now adds it to contexts created later,
 * not to the server's own global scope. (Node reserves SIGUSR1 for the inspector; SIGUSR2 is free.)
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc');

process.on('SIGUSR2', () => {
  const before = process.memoryUsage();
  collect();
  const after = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({ msg: 'memory', heapUsed: before.heapUsed, rss: before.rss, liveHeapUsed: after.heapUsed, liveRss: after.rss })}\n`,
  );
});
