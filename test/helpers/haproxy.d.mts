/** Types of haproxy.mjs (shared with bench/). */
import type { ChildProcess } from 'node:child_process';
export declare const PLACEMENT_CONFIG: string;
export declare const MISSING_HAPROXY: string;
export declare function haproxyCommand(): string | undefined;
export declare function hasHaproxy(): boolean;
export declare function placementConfig(doc: string, options: { port: number; servers: string[]; balance?: string }): string;
export interface Haproxy {
  readonly port: number;
  /** http://127.0.0.1:port */
  readonly url: string;
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}
export declare function startHaproxy(configFor: (port: number) => string, options?: { timeoutMs?: number }): Promise<Haproxy>;
