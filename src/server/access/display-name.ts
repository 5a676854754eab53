/**
 * Display names, from `hello` or a token's `name` claim: what others see next to a message.
 *
 * Length is counted as people see it, in grapheme clusters (a family emoji joined with U+200D is
 * one character, not eight UTF-16 units), and capped in bytes too so a few "characters" stacked
 * with hundreds of combining marks cannot make every envelope carrying the name large.
 *
 * Removed before counting, so one name cannot forge text in other people's pages and logs:
 * control characters (Cc: line breaks, escape sequences), bidirectional formatting characters
 * (which can make "gpj.exe" read "exe.jpg" and reorder the text after the name), and every other
 * invisible format character (Cf: zero-width spaces, soft hyphens, tag characters that smuggle
 * hidden ASCII), except inside an emoji sequence, where the zero-width joiner and tag
 * characters are what build 👨‍👩‍👧 or 🏴󠁧󠁢󠁥󠁮󠁧󠁿, and are kept.
 */

/** Most grapheme clusters in a name. */
export const MAX_NAME_CHARACTERS = 64;
/** Most bytes of UTF-8 in a name. */
export const MAX_NAME_BYTES = 256;

/** Cc, and the bidi controls: ALM, LRM, RLM, LRE…RLO (embeddings, overrides), LRI…PDI (isolates). */
const CONTROLS = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
const FORMAT = /\p{Cf}/gu;
const EMOJI = /\p{Extended_Pictographic}/u;
/** Longer input is refused before segmenting: it could not fit MAX_NAME_BYTES without being mostly invisible. */
const MAX_INPUT_LENGTH = 4 * MAX_NAME_BYTES;

/** Why a name was refused; the message is safe to show the client. */
export class DisplayNameError extends Error {
  override readonly name = 'DisplayNameError';
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * The name as others will see it.
 * @throws DisplayNameError when nothing visible is left, or it is longer than the limits.
 */
export function normalizeDisplayName(raw: string): string {
  if (raw.length > MAX_INPUT_LENGTH) throw new DisplayNameError(`"name" must be at most ${MAX_NAME_BYTES} bytes of UTF-8`);
  let name = '';
  let count = 0;
  for (const { segment } of graphemes.segment(raw.replace(CONTROLS, ''))) {
    const kept = EMOJI.test(segment) ? segment : segment.replace(FORMAT, '');
    if (kept === '') continue;
    name += kept;
    count++;
  }
  const trimmed = name.trim();
  // Trimming only removes whole clusters of white space, so the count shrinks by what went.
  if (trimmed.length !== name.length) count = [...graphemes.segment(trimmed)].length;
  if (count === 0 || count > MAX_NAME_CHARACTERS) {
    throw new DisplayNameError(`"name" must have 1 to ${MAX_NAME_CHARACTERS} visible characters`);
  }
  if (Buffer.byteLength(trimmed) > MAX_NAME_BYTES) {
    throw new DisplayNameError(`"name" must be at most ${MAX_NAME_BYTES} bytes of UTF-8`);
  }
  return trimmed;
}
