/**
 * Deadlines for many items with one timer: connections whose token `exp` passes while they are
 * open are closed with 4004 at that moment. A binary min-heap ordered by deadline, with a single
 * setTimeout armed for the earliest, instead of a timer per connection. `add` and `delete` are
 * O(log n) and the heap holds live entries only (a closing connection deletes its own), so it
 * never holds more than the open connections (`--max-connections`).
 */

interface Entry<T> {
  readonly item: T;
  readonly at: number;
  /** Where the entry sits in the heap, so delete() needs no search. */
  index: number;
}

/** setTimeout treats longer delays as 1 ms; a later deadline is re-armed when this one fires. */
const MAX_TIMER = 2 ** 31 - 1;

export class ExpiryQueue<T> {
  private readonly heap: Entry<T>[] = [];
  private readonly entries = new Map<T, Entry<T>>();
  private timer: NodeJS.Timeout | undefined;
  /** The deadline the timer is armed for; Infinity when it is not armed. */
  private armedFor = Infinity;

  constructor(
    private readonly onExpire: (item: T) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Items waiting for their deadline. */
  get size(): number {
    return this.heap.length;
  }

  /** Calls onExpire(item) once `at` (ms since the Unix epoch) has passed; replaces an earlier add of the same item. */
  add(item: T, at: number): void {
    this.remove(item);
    const entry: Entry<T> = { item, at, index: this.heap.length };
    this.heap.push(entry);
    this.entries.set(item, entry);
    this.up(entry.index);
    this.arm();
  }

  /** Forgets `item`; safe for items never added or already expired. */
  delete(item: T): void {
    this.remove(item);
    this.arm();
  }

  private remove(item: T): void {
    const entry = this.entries.get(item);
    if (!entry) return;
    this.entries.delete(item);
    const last = this.heap.pop()!;
    if (last !== entry) {
      this.heap[entry.index] = last;
      last.index = entry.index;
      this.down(this.up(entry.index));
    }
  }

  /** Forgets everything and clears the timer. */
  clear(): void {
    this.heap.length = 0;
    this.entries.clear();
    clearTimeout(this.timer);
    this.armedFor = Infinity;
  }

  private fire(): void {
    this.armedFor = Infinity;
    const now = this.now();
    for (let head = this.heap[0]; head && head.at <= now; head = this.heap[0]) {
      this.remove(head.item);
      this.onExpire(head.item);
    }
    this.arm();
  }

  /** Keeps the one timer pointed at the earliest deadline. */
  private arm(): void {
    const head = this.heap[0];
    if (head?.at === this.armedFor) return;
    clearTimeout(this.timer);
    this.armedFor = head?.at ?? Infinity;
    if (!head) return;
    this.timer = setTimeout(() => this.fire(), Math.min(MAX_TIMER, Math.max(0, head.at - this.now())));
    this.timer.unref();
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i]!;
    const b = this.heap[j]!;
    this.heap[i] = b;
    this.heap[j] = a;
    a.index = j;
    b.index = i;
  }

  /** Moves the entry at `i` towards the root while it is earlier than its parent; returns where it ends. */
  private up(i: number): number {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.heap[parent]!.at <= this.heap[i]!.at) break;
      this.swap(i, parent);
      i = parent;
    }
    return i;
  }

  private down(i: number): void {
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let first = i;
      if (left < this.heap.length && this.heap[left]!.at < this.heap[first]!.at) first = left;
      if (right < this.heap.length && this.heap[right]!.at < this.heap[first]!.at) first = right;
      if (first === i) return;
      this.swap(i, first);
      i = first;
    }
  }
}
