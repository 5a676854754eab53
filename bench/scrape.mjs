/**
 * Reads a Plaza's /metrics over HTTP the way a Prometheus scraper does, for the soak scenarios.
 * Samples of one name with different labels are added up (`plaza_connections{protocol="plain"}`
 * and `{protocol="v1"}` give `plaza_connections`); a name with no sample (a cluster gauge on one
 * node) is absent from the result.
 */
import http from 'node:http';

/** Prometheus text (format 0.0.4) → Map of metric name → the sum of its samples. */
export function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{.*\})? (\S+)$/.exec(line);
    if (!m) continue;
    values.set(m[1], (values.get(m[1]) ?? 0) + Number(m[2]));
  }
  return values;
}

/** GET http://127.0.0.1:<port>/metrics (with the API key when the server has one). */
export function scrape(port, { apiKey, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const headers = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
    const req = http.get({ host: '127.0.0.1', port, path: '/metrics', headers, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode === 200) resolve(parseMetrics(body));
        else reject(new Error(`/metrics on port ${port} answered ${res.statusCode}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`/metrics on port ${port} took more than ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}
