/** Types of wait.mjs (shared with bench/). */
export declare function sleep(ms: number): Promise<void>;
type NotYet = undefined | null | false;
export declare function until<T>(check: () => T | NotYet | PromiseLike<T | NotYet>, ms?: number, what?: string, every?: number): Promise<T>;
