/**
 * The one way the tests and the bench wait for something that has no event to await: poll a
 * check until it holds, with a deadline that names what never came. Plain JavaScript so that
 * bench/*.mjs imports the same file the tests do (wait.d.mts gives it its types).
 */

/** Resolves after `ms`: for pacing (a load, a churn), never before an assertion. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `check` (sync or async) every `every` ms until it returns something other than
 * undefined, null or false, and resolves with that. A check that throws counts as not yet; its
 * last error is in the timeout's message.
 * @param {number} ms how long to wait before failing @default 5000
 * @param {string} what what is awaited, for the error @default 'condition'
 * @param {number} every ms between checks @default 10
 */
export async function until(check, ms = 5000, what = 'condition', every = 10) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await sleep(every);
  }
}
