import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Hub, type Member, type Room, type WireProtocol } from '../../src/server/engine/hub.js';

class FakeMember implements Member {
  readonly rooms = new Set<Room>();
  readonly frames: string[] = [];
  readonly name = 'tester';
  constructor(
    readonly id: string,
    readonly protocol: WireProtocol = 'plain',
  ) {}
  isOpen(): boolean {
    return true;
  }
  deliver(frame: Buffer): void {
    this.frames.push(frame.toString());
  }
}

function message(text: string, encodings: WireProtocol[] = []) {
  return {
    frameFor(protocol: WireProtocol) {
      encodings.push(protocol);
      return Buffer.from(`${protocol}:${text}`);
    },
  };
}

describe('Hub', () => {
  it('keeps rooms and the reverse index in step', () => {
    const hub = new Hub();
    const a = new FakeMember('a');
    const room = hub.join(a, 'lobby');
    hub.join(a, 'games');
    assert.equal(hub.roomCount, 2);
    assert.deepEqual([...a.rooms].map((r) => r.name).sort(), ['games', 'lobby']);
    hub.leave(a, room);
    assert.equal(hub.room('lobby'), undefined, 'empty rooms are forgotten');
    hub.leaveAll(a);
    assert.equal(hub.roomCount, 0);
    assert.equal(a.rooms.size, 0);
  });

  it('treats __proto__ and friends as plain room names', () => {
    const hub = new Hub();
    const a = new FakeMember('a');
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) hub.join(a, name);
    assert.equal(hub.roomCount, 4);
    assert.equal(hub.room('__proto__')?.name, '__proto__');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('delivers to every member except the excluded one', () => {
    const hub = new Hub();
    const [a, b, c] = ['a', 'b', 'c'].map((id) => new FakeMember(id));
    const room = hub.join(a!, 'lobby');
    hub.join(b!, 'lobby');
    hub.join(c!, 'other');
    assert.equal(hub.publish(room, message('hi'), a), 1);
    assert.deepEqual(a!.frames, []);
    assert.deepEqual(b!.frames, ['plain:hi']);
    assert.deepEqual(c!.frames, [], 'members of other rooms get nothing');
  });

  it('encodes once per wire protocol in use, and not at all for protocols nobody speaks', () => {
    const hub = new Hub();
    const plain = Array.from({ length: 50 }, (_, i) => new FakeMember(`p${i}`, 'plain'));
    const room = hub.join(plain[0]!, 'lobby');
    for (const member of plain) hub.join(member, 'lobby');
    const encodings: WireProtocol[] = [];
    hub.publish(room, message('x', encodings));
    assert.deepEqual(encodings, ['plain']);

    hub.join(new FakeMember('v', 'v1'), 'lobby');
    const both: WireProtocol[] = [];
    hub.publish(room, message('y', both));
    assert.deepEqual(both.sort(), ['plain', 'v1']);
  });
});
