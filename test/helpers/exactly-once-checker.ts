/**
 * Checks the publishing promise (issue #22) from what applications saw through Plaza's own
 * client: each publish the application made appears once in every member's stream, its ack
 * names the place where it was delivered, and every publish's promise settled definitely.
 *
 * Feed it every publish with its outcome and every message each member's Room emitted;
 * `violations()` lists what broke the promise:
 * - `twice`: one publish took two places in the room (published twice), or a member saw it twice;
 * - `missing`: an acknowledged publish never reached a member;
 * - `ack`: the ack named another place than the one its message was delivered at;
 * - `rejected but published`: a publish rejected (which must mean "not published") was delivered;
 * - `unsettled`: a publish whose promise neither resolved nor rejected.
 */

export interface Outcome {
  data: string;
  ack?: { epoch: string; offset: number };
  rejected?: string;
}

export interface ExactlyOnceViolation {
  kind: 'twice' | 'missing' | 'ack' | 'rejected but published' | 'unsettled';
  detail: string;
}

export class ExactlyOnceChecker {
  private readonly outcomes = new Map<string, Outcome>();
  private readonly streams = new Map<string, Array<{ data: string; place: string }>>();

  /** A publish the application made; call settled() when its promise settles. */
  published(data: string): void {
    this.outcomes.set(data, { data });
  }

  settled(data: string, outcome: { ack?: { epoch: string; offset: number }; rejected?: string }): void {
    this.outcomes.set(data, { data, ...outcome });
  }

  /** A message `member`'s Room emitted. */
  delivered(member: string, data: string, epoch: string, offset: number): void {
    let stream = this.streams.get(member);
    if (!stream) this.streams.set(member, (stream = []));
    stream.push({ data, place: `${epoch}:${offset}` });
  }

  get acked(): number {
    let n = 0;
    for (const outcome of this.outcomes.values()) if (outcome.ack) n++;
    return n;
  }

  get deliveries(): number {
    let n = 0;
    for (const stream of this.streams.values()) n += stream.length;
    return n;
  }

  violations(): ExactlyOnceViolation[] {
    const found: ExactlyOnceViolation[] = [];
    const placeOf = new Map<string, string>();
    for (const [member, stream] of this.streams) {
      const seen = new Set<string>();
      for (const { data, place } of stream) {
        if (!this.outcomes.has(data)) continue;
        if (seen.has(data)) found.push({ kind: 'twice', detail: `${member} saw ${data} twice` });
        seen.add(data);
        const had = placeOf.get(data);
        if (had !== undefined && had !== place) found.push({ kind: 'twice', detail: `${data} at ${had} and at ${place} (${member})` });
        else placeOf.set(data, place);
      }
    }
    for (const outcome of this.outcomes.values()) {
      const place = placeOf.get(outcome.data);
      if (!outcome.ack && outcome.rejected === undefined) found.push({ kind: 'unsettled', detail: `${outcome.data} neither resolved nor rejected` });
      if (outcome.rejected !== undefined && place !== undefined) {
        found.push({ kind: 'rejected but published', detail: `${outcome.data} rejected with ${outcome.rejected}, delivered at ${place}` });
      }
      if (!outcome.ack) continue;
      const acked = `${outcome.ack.epoch}:${outcome.ack.offset}`;
      if (place !== undefined && place !== acked) found.push({ kind: 'ack', detail: `${outcome.data} acked at ${acked}, delivered at ${place}` });
      for (const [member, stream] of this.streams) {
        if (!stream.some((message) => message.data === outcome.data)) found.push({ kind: 'missing', detail: `${member} never got ${outcome.data} (acked at ${acked})` });
      }
    }
    return found;
  }

  /** Throws with every violation and the seed, so a failure can be replayed. */
  assertClean(seed: number): void {
    const found = this.violations();
    if (found.length === 0) return;
    const lines = found.slice(0, 20).map((v) => `  ${v.kind}: ${v.detail}`);
    throw new Error(`publishing promise broken (seed ${seed}; replay with PLAZA_SEED=${seed}), ${found.length} violations:\n${lines.join('\n')}`);
  }
}
