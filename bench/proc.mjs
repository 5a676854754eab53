/**
 * What the harness reads about a child from Linux's /proc, without the child's cooperation.
 *
 * CPU: utime+stime from /proc/<pid>/stat is counted in clock ticks (CLK_TCK, usually 100/s,
 * so 10 ms steps): too coarse for a 50 ms burst. The scheduler's own account,
 * /proc/<pid>/task/<tid>/schedstat (first field: ns on CPU), is exact to the nanosecond; summed
 * over the process's threads (main, libuv pool, V8 GC/compiler workers) it is the same quantity.
 * Both are read; the nanosecond one is used when the kernel provides it, and the tick one is
 * kept beside it as a cross-check.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime+stime of the whole process, in µs (CLK_TCK resolution). */
export function tickCpuUs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime (14th), stime (15th)
  return (ticks * 1e6) / CLK_TCK;
}

/** Sum of every live thread's time on CPU, in µs (ns resolution); null when schedstat is absent. */
export function schedCpuUs(pid) {
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // A thread that exits between readdir and read has already been counted in nothing;
        // Node's threads live as long as the process, so this does not happen in practice.
      }
    }
  } catch {
    return null;
  }
  return ns / 1e3;
}

/** user+nice+system of the whole machine (first line of /proc/stat), in µs. */
export function machineBusyUs() {
  const [, user, nice, system] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).map(Number);
  return ((user + nice + system) * 1e6) / CLK_TCK;
}

/** One CPU reading: `us` is the precise figure, `tickUs` the cross-check. */
export function readCpu(pid) {
  const tickUs = tickCpuUs(pid);
  const sched = schedCpuUs(pid);
  return { us: sched ?? tickUs, tickUs, source: sched === null ? 'stat' : 'schedstat' };
}

/** CPU µs spent between two readings. */
export function cpuSince(before, after) {
  return { us: after.us - before.us, tickUs: after.tickUs - before.tickUs };
}

/** Resident set size in KiB (VmRSS of /proc/<pid>/status). */
export function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/**
 * The TCP port `pid` listens on, from its socket fds and /proc/net/tcp; undefined if none yet.
 * Throws if the listener is on anything but 127.0.0.1: the bench must stay on loopback.
 */
export function listeningPort(pid) {
  const inodes = new Set();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // fd closed meanwhile
    }
  }
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines;
    try {
      lines = readFileSync(table, 'utf8').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const f = line.trim().split(/\s+/);
      if (f[3] !== '0A' || !inodes.has(f[9])) continue; // 0A = LISTEN
      const [address, port] = f[1].split(':');
      if (address !== '0100007F') throw new Error(`server ${pid} listens on ${address}, not 127.0.0.1`);
      return parseInt(port, 16);
    }
  }
  return undefined;
}

/** Open file descriptors of `pid`: sockets, pipes, files, epoll and eventfds (entries of /proc/<pid>/fd). */
export function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Resets the peak resident set size (VmHWM) of `pid` to its current RSS (`5` written to
 * /proc/<pid>/clear_refs, Linux ≥ 4.0), so peakRssKiB reads the peak of what follows. False when
 * the kernel refuses (then the peak is that of the process's whole life).
 */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The peak resident set size in KiB (VmHWM of /proc/<pid>/status) since start or resetPeakRss. */
export function peakRssKiB(pid) {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]);
}
