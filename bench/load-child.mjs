/**
 * A load generator in a child process of its own (capacity-load.mjs), driven over IPC: its CPU
 * is read apart from the harness's, and `call(cmd, args)` resolves with the command's answer.
 * Shared by the capacity bench and the placement bench.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

export function forkLoad() {
  const child = fork(`${here}capacity-load.mjs`, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map();
  let next = 0;
  child.on('message', ({ id, result, error }) => {
    const call = pending.get(id);
    pending.delete(id);
    if (error) call?.reject(new Error(error));
    else call?.resolve(result);
  });
  return {
    pid: child.pid,
    call: (cmd, payload = {}) => new Promise((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      child.send({ id, cmd, args: payload });
    }),
    exit: () => child.kill(),
  };
}
