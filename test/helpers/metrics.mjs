/**
 * The one /metrics reader of the tests and the bench: fetch the exposition, read its samples.
 * A sample is keyed by its name and labels as written (`plaza_hook_calls_total{hook="onPublish"}`);
 * sumByName adds a name's labelled samples up for the soak's series. (test/metrics.test.ts checks
 * the exposition's format itself, line by line, and keeps its own strict parser for that.)
 */

/** Where /metrics is: a base URL, a Plaza (`url`) or a spawned node (`http`). */
function baseOf(target) {
  return typeof target === 'string' ? target : (target.url ?? target.http);
}

/** GET <target>/metrics; rejects unless it answers 200 within `timeoutMs`. */
export async function fetchMetrics(target, { headers = {}, timeoutMs = 5000 } = {}) {
  const response = await fetch(`${baseOf(target)}/metrics`, { headers, signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`${baseOf(target)}/metrics answered ${response.status}`);
  return text;
}

/** Exposition text → Map of `name{labels}` → value (comments and blank lines skipped). */
export function parseSamples(text) {
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    if (space > 0) samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** Samples → Map of metric name → the sum of its samples over every label set. */
export function sumByName(samples) {
  const sums = new Map();
  for (const [key, value] of samples) {
    const name = key.replace(/\{.*\}$/, '');
    sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

/** Every sample of `target`'s /metrics. */
export async function metrics(target, headers = {}) {
  return parseSamples(await fetchMetrics(target, { headers }));
}

/** One sample's value, e.g. `plaza_hook_calls_total{hook="onPublish"}`; 0 while it is not exposed yet. */
export async function metric(target, sample, headers = {}) {
  return (await metrics(target, headers)).get(sample) ?? 0;
}
