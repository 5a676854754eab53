/**
 * One nesting limit for JSON from clients, the HTTP API and plaza.v1 alike. JSON.parse takes
 * any depth, but JSON.stringify recurses and throws past a few thousand levels (10 KB of
 * brackets), so a message nested that deep would fail when it is re-encoded for delivery.
 */

/** Deepest nesting of arrays and objects accepted in a message's `data`. */
export const MAX_JSON_DEPTH = 100;

/** Whether a parsed `value` nests at most `max` levels, checked without recursion. */
export function nestsWithin(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== 'object' || item === null) continue;
    if (depth >= max) return false;
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, depth + 1]);
  }
  return true;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * Whether JSON `text` nests at most `max` levels of arrays and objects, found by counting
 * brackets outside strings before anything is parsed: one pass, no allocation. Invalid JSON
 * may pass (JSON.parse then says so); it only has to never let too deep a document through.
 */
export function textNestsWithin(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (inString) {
      if (char === BACKSLASH) i++;
      else if (char === QUOTE) inString = false;
    } else if (char === QUOTE) {
      inString = true;
    } else if (char === OPEN_ARRAY || char === OPEN_OBJECT) {
      if (++depth > max) return false;
    } else if (char === CLOSE_ARRAY || char === CLOSE_OBJECT) {
      depth--;
    }
  }
  return true;
}

/** A JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own properties only: `__proto__` or `constructor` in untrusted JSON never reach a prototype. */
export function own(object: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(object, key) ? object[key] : undefined;
}
