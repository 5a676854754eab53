/** Types of metrics.mjs (shared with bench/). */
export type MetricsTarget = string | { readonly url: string } | { readonly http: string };
export declare function fetchMetrics(target: MetricsTarget, options?: { headers?: Record<string, string>; timeoutMs?: number }): Promise<string>;
export declare function parseSamples(text: string): Map<string, number>;
export declare function sumByName(samples: Map<string, number>): Map<string, number>;
export declare function metrics(target: MetricsTarget, headers?: Record<string, string>): Promise<Map<string, number>>;
export declare function metric(target: MetricsTarget, sample: string, headers?: Record<string, string>): Promise<number>;
