/**
 * Publish ids (PROTOCOL.md, "Publishing once"): a random part per client and a counter, so an
 * id names one publish across every retry of it and never another publish, from this client or
 * any other. 72 random bits: two clients of one room picking the same part is not a concern.
 */
export function createPublishIds(): () => string {
  const bytes = new Uint8Array(9);
  globalThis.crypto.getRandomValues(bytes);
  let prefix = '';
  for (const byte of bytes) prefix += byte.toString(36).padStart(2, '0');
  let count = 0;
  return () => `${prefix}.${(++count).toString(36)}`;
}
