/**
 * "Did you mean": the known name nearest to a mistyped one (`--max-paylod` → `--max-payload`),
 * so an unknown-option error can name the fix instead of only pointing at --help.
 */

/**
 * Edits between two strings, counting a swap of two neighbours as one edit (optimal string
 * alignment), because `--prot` for `--port` is one slip of the fingers, not two.
 */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The name in `names` closest to `word` (case aside), if it is close enough to be a typo: one
 * edit per four characters, at least one. Undefined when nothing is that close, so a word that
 * is simply wrong gets no misleading guess.
 */
export function closestName(word: string, names: readonly string[]): string | undefined {
  const typed = word.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(typed, name.toLowerCase());
    if (best === undefined || distance < best.distance) best = { name, distance };
  }
  const allowed = Math.max(1, Math.floor(typed.replace(/^-+/, '').length / 4));
  return best !== undefined && best.distance <= allowed ? best.name : undefined;
}
