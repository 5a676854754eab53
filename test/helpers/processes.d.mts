/** Types of processes.mjs (shared with bench/). */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
export declare const PORT_RANGE: Readonly<{ from: number; to: number }>;
export declare const PORT_TAKEN: 'EADDRINUSE';
export declare function onFreePort<T>(start: (port: number) => Promise<T>, attempts?: number): Promise<T>;
export declare function startRedisProcess(args: string[], options?: { ready?: RegExp; timeoutMs?: number }): Promise<ChildProcessWithoutNullStreams>;
export declare function startRedis(args?: string[], options?: { ready?: RegExp; timeoutMs?: number }): Promise<{ port: number; child: ChildProcessWithoutNullStreams }>;
export declare function untilReady(base: string, status?: number, ms?: number): Promise<void>;
