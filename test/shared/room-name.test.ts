/** The room-name rules (src/shared/room-name.ts): what a name may be, and which names are the server's own. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isReservedRoom, reservedRoomProblem, roomNameProblem, STATUS_ROOM } from '../../src/shared/room-name.js';

describe('roomNameProblem', () => {
  it('takes letters, digits and a few separators, up to the limit', () => {
    assert.equal(roomNameProblem('team-7:ü/x', 64), undefined);
    assert.match(roomNameProblem('', 64)!, /non-empty/);
    assert.match(roomNameProblem('a'.repeat(65), 64)!, /longer than 64/);
    assert.match(roomNameProblem('{slot}', 64)!, /may contain only/);
  });
});

describe('reserved rooms', () => {
  it('are the ones named plaza:…, the status feed among them', () => {
    assert.equal(isReservedRoom(STATUS_ROOM), true);
    assert.equal(isReservedRoom('plaza:'), true);
    assert.equal(isReservedRoom('plaza-fans'), false);
    assert.equal(isReservedRoom('Plaza:x'), false);
  });

  it('let a client join only the status feed, and only when it may watch it', () => {
    assert.equal(reservedRoomProblem('lobby', 'join'), undefined);
    assert.equal(reservedRoomProblem('lobby', 'publish'), undefined);
    assert.equal(reservedRoomProblem(STATUS_ROOM, 'join', true), undefined);
    assert.match(reservedRoomProblem(STATUS_ROOM, 'join', false)!, /needs the API key/);
    assert.match(reservedRoomProblem('plaza:x', 'join', true)!, /server's own/);
  });

  it('take no client messages at all', () => {
    for (const room of [STATUS_ROOM, 'plaza:x', 'plaza:']) assert.match(reservedRoomProblem(room, 'publish')!, /take no messages/);
  });
});
