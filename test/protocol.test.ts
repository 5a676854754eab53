import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect, startPlaza, wsUrl } from './helpers/plaza.js';
import { V1Client } from './helpers/v1.js';
import { until } from './helpers/wait.mjs';

describe('plaza.v1', () => {
  let plaza: Awaited<ReturnType<typeof startPlaza>>;
  let url: string;
  before(async () => {
    plaza = await startPlaza({ historySize: 50, maxRoomsPerConnection: 3, maxPresence: 2 });
    url = wsUrl(plaza);
  });
  after(() => plaza.close());

  it('negotiates the subprotocol and answers hello with welcome', async () => {
    const alice = await V1Client.open(url);
    try {
      assert.equal(alice.client.ws.protocol, 'plaza.v1');
      const welcome = await alice.request({ type: 'hello', name: '  Alice\u0007 ' });
      assert.equal(welcome.type, 'welcome');
      assert.equal(welcome.name, 'Alice');
      assert.match(welcome.session, /^[\w-]{12}$/);
      assert.equal(welcome.limits.maxRoomsPerConnection, 3);
      assert.equal(welcome.limits.historySize, 50);
    } finally {
      await alice.close();
    }
  });

  it('delivers room messages with sender, offset, epoch, time and id, and acks the publisher', async () => {
    const [alice, bob, carol] = await Promise.all([V1Client.open(url, 'alice'), V1Client.open(url, 'bob'), V1Client.open(url, 'carol')]);
    try {
      const joined = await alice.request({ type: 'join', room: 'r1' });
      assert.equal(joined.type, 'joined');
      assert.equal(joined.offset, 0);
      await bob.request({ type: 'join', room: 'r1' });
      await carol.request({ type: 'join', room: 'other' });
      const before = Date.now();
      const ack = await alice.request({ type: 'publish', room: 'r1', data: { text: 'hi', n: [1, 2] } });
      assert.deepEqual(ack, { type: 'ack', id: ack.id, room: 'r1', offset: 1, epoch: joined.epoch });
      const [message] = await bob.waitForMessages(1, 'r1');
      assert.equal(message!.type, 'message');
      assert.deepEqual(message!.data, { text: 'hi', n: [1, 2] });
      assert.equal(message!.offset, 1);
      assert.equal(message!.epoch, joined.epoch);
      assert.equal(message!.id, `${joined.epoch}:1`);
      assert.equal(message!.from.name, 'alice');
      assert.ok(message!.time >= before - 1000 && message!.time <= Date.now() + 1000);
      await alice.waitForMessages(1, 'r1');
      await carol.client.expectNoMoreThan(2); // welcome + joined, nothing from r1
    } finally {
      await Promise.all([alice.close(), bob.close(), carol.close()]);
    }
  });

  it('honours excludeSelf', async () => {
    const [a, b] = await Promise.all([V1Client.open(url), V1Client.open(url)]);
    try {
      await a.request({ type: 'join', room: 'ex' });
      await b.request({ type: 'join', room: 'ex' });
      await a.request({ type: 'publish', room: 'ex', data: 'x', excludeSelf: true });
      await b.waitForMessages(1, 'ex');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(a.messages('ex').length, 0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('lets plain and v1 clients in the default room see each other', async () => {
    const plain = await connect(url);
    const v1 = await V1Client.open(url, 'vee');
    try {
      await v1.request({ type: 'join', room: 'lobby' });
      plain.send('plain text');
      plain.send(Buffer.from([1, 2, 3]));
      const messages = await v1.waitForMessages(2, 'lobby');
      assert.equal(messages[0]!.data, 'plain text');
      assert.equal(messages[0]!.from.name, 'anonymous');
      assert.equal(messages[1]!.data, 'AQID');
      assert.equal(messages[1]!.encoding, 'base64');
      await v1.request({ type: 'publish', room: 'lobby', data: 'from v1' });
      await v1.request({ type: 'publish', room: 'lobby', data: { structured: true } });
      const got = await plain.waitFor(4);
      assert.equal(got[2]!.text, 'from v1');
      assert.equal(got[3]!.text, '{"structured":true}');
      assert.equal(got[1]!.isBinary, true);
    } finally {
      await Promise.all([plain.close(), v1.close()]);
    }
  });

  it('sends the last N messages to a late joiner', async () => {
    const early = await V1Client.open(url);
    try {
      await early.request({ type: 'join', room: 'late' });
      for (let i = 1; i <= 10; i++) await early.request({ type: 'publish', room: 'late', data: i });
      const late = await V1Client.open(url);
      const joined = await late.request({ type: 'join', room: 'late', history: 3 });
      assert.deepEqual(joined.messages.map((m: { data: number }) => m.data), [8, 9, 10]);
      assert.equal(joined.offset, 10);
      assert.equal(joined.recovered, undefined);
      await late.close();
    } finally {
      await early.close();
    }
  });

  it('resumes from {epoch, offset} with exactly the missed messages, before any live one', async () => {
    const writer = await V1Client.open(url);
    const reader = await V1Client.open(url);
    try {
      await writer.request({ type: 'join', room: 'resume' });
      const first = await reader.request({ type: 'join', room: 'resume' });
      await writer.request({ type: 'publish', room: 'resume', data: 1 });
      await reader.waitForMessages(1, 'resume');
      await reader.close();
      for (let i = 2; i <= 5; i++) await writer.request({ type: 'publish', room: 'resume', data: i });
      const back = await V1Client.open(url);
      // Live messages keep coming while the resume is answered.
      back.send({ type: 'join', id: 'j', room: 'resume', since: { epoch: first.epoch, offset: 1 } });
      writer.send({ type: 'publish', room: 'resume', data: 6 });
      const messages = await back.waitForMessages(5, 'resume');
      assert.deepEqual(messages.map((m) => m.data), [2, 3, 4, 5, 6]);
      const joined = back.envelopes.find((e) => e.type === 'joined')!;
      assert.equal(joined.recovered, true);
      await back.close();
    } finally {
      await writer.close();
    }
  });

  it('says recovered:false with a reason when the position is unusable, and falls back to history', async () => {
    const writer = await V1Client.open(url);
    try {
      const joined = await writer.request({ type: 'join', room: 'gone' });
      for (let i = 1; i <= 3; i++) await writer.request({ type: 'publish', room: 'gone', data: i });
      const stale = await writer.request({ type: 'join', room: 'gone', since: { epoch: 'not-the-epoch', offset: 2 }, history: 2 });
      assert.equal(stale.recovered, false);
      assert.equal(stale.reason, 'epoch_changed');
      assert.deepEqual(stale.messages.map((m: { data: number }) => m.data), [2, 3]);
      const ahead = await writer.request({ type: 'join', room: 'gone', since: { epoch: joined.epoch, offset: 99 } });
      assert.equal(ahead.reason, 'offset_ahead');
      assert.deepEqual(ahead.messages, []);
    } finally {
      await writer.close();
    }
  });

  it('reports window_passed when the history window is gone', async () => {
    const small = await startPlaza({ historySize: 2 });
    try {
      const w = await V1Client.open(wsUrl(small));
      const joined = await w.request({ type: 'join', room: 'r' });
      for (let i = 1; i <= 5; i++) await w.request({ type: 'publish', room: 'r', data: i });
      const reply = await w.request({ type: 'join', room: 'r', since: { epoch: joined.epoch, offset: 1 } });
      assert.equal(reply.recovered, false);
      assert.equal(reply.reason, 'window_passed');
      const ok = await w.request({ type: 'join', room: 'r', since: { epoch: joined.epoch, offset: 3 } });
      assert.equal(ok.recovered, true);
      assert.deepEqual(ok.messages.map((m: { data: number }) => m.data), [4, 5]);
      await w.close();
    } finally {
      await small.close();
    }
  });

  it('shows presence: a bounded snapshot on join, then join and leave deltas', async () => {
    const watcher = await V1Client.open(url, 'watcher');
    const others = await Promise.all([V1Client.open(url, 'o1'), V1Client.open(url, 'o2')]);
    try {
      for (const o of others) await o.request({ type: 'join', room: 'pres' });
      const joined = await watcher.request({ type: 'join', room: 'pres', presence: true });
      assert.equal(joined.memberCount, 3);
      assert.equal(joined.members.length, 2, 'cut at maxPresence');
      const third = await V1Client.open(url, 'o3');
      await third.request({ type: 'join', room: 'pres' });
      const delta = await watcher.waitFor((e) => e.type === 'presence' && e.joined);
      assert.deepEqual(delta.joined, [{ session: delta.joined[0].session, name: 'o3' }]);
      assert.equal(delta.memberCount, 4);
      await third.close();
      const gone = await watcher.waitFor((e) => e.type === 'presence' && e.left);
      assert.equal(gone.left[0].name, 'o3');
      assert.equal(gone.memberCount, 3);
      const left = await others[0]!.request({ type: 'leave', room: 'pres' });
      assert.deepEqual(left, { type: 'left', id: left.id, room: 'pres' });
      await until(() => watcher.envelopes.filter((e) => e.type === 'presence').length === 3, 2000, 'leave delta');
    } finally {
      await Promise.all([watcher.close(), ...others.map((o) => o.close())]);
    }
  });

  describe('bad input', () => {
    const cases: Array<[string, string, string]> = [
      ['not json', '{nope', 'bad_json'],
      ['an array', '[1,2]', 'bad_request'],
      ['null', 'null', 'bad_request'],
      ['no type', '{"room":"x"}', 'bad_request'],
      ['unknown type', '{"type":"dance"}', 'unknown_type'],
      ['wrong-typed room', '{"type":"join","room":5}', 'bad_room'],
      ['empty room', '{"type":"join","room":""}', 'bad_room'],
      ['room with spaces', '{"type":"join","room":"a b"}', 'bad_room'],
      ['oversized room', `{"type":"join","room":"${'r'.repeat(129)}"}`, 'bad_room'],
      ['bad since', '{"type":"join","room":"x","since":{"epoch":1,"offset":-1}}', 'bad_request'],
      ['bad history', '{"type":"join","room":"x","history":"all"}', 'bad_request'],
      ['bad presence flag', '{"type":"join","room":"x","presence":"yes"}', 'bad_request'],
      ['publish without data', '{"type":"publish","room":"x"}', 'bad_request'],
      ['publish without joining', '{"type":"publish","room":"never-joined","data":1}', 'not_joined'],
      ['leave without joining', '{"type":"leave","room":"never-joined"}', 'not_joined'],
      ['bad id', '{"type":"hello","id":{"x":1}}', 'bad_request'],
      ['bad name', '{"type":"hello","name":""}', 'bad_request'],
    ];
    for (const [what, frame, code] of cases) {
      it(`answers ${what} with ${code} and keeps the connection`, async () => {
        const client = await V1Client.open(url);
        try {
          client.send(frame);
          const error = await client.waitFor((e) => e.type === 'error');
          assert.equal(error.code, code);
          assert.equal(typeof error.message, 'string');
          const welcome = await client.request({ type: 'hello' });
          assert.equal(welcome.type, 'welcome', 'still usable');
        } finally {
          await client.close();
        }
      });
    }

    it('echoes the request id on errors', async () => {
      const client = await V1Client.open(url);
      try {
        const error = await client.request({ type: 'publish', room: 'nope', data: 1 });
        assert.equal(error.code, 'not_joined');
      } finally {
        await client.close();
      }
    });

    it('treats prototype-polluting keys as plain data', async () => {
      const client = await V1Client.open(url);
      try {
        await client.request({ type: 'join', room: '__proto__' });
        client.send('{"type":"publish","room":"__proto__","data":{"__proto__":{"polluted":true}},"id":9,"constructor":{"prototype":{"x":1}}}');
        const [message] = await client.waitForMessages(1, '__proto__');
        assert.deepEqual(JSON.stringify(message!.data), '{"__proto__":{"polluted":true}}');
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
        assert.equal(({} as Record<string, unknown>).x, undefined);
      } finally {
        await client.close();
      }
    });

    it('limits rooms per connection', async () => {
      const client = await V1Client.open(url);
      try {
        for (const room of ['a1', 'a2', 'a3']) assert.equal((await client.request({ type: 'join', room })).type, 'joined');
        assert.equal((await client.request({ type: 'join', room: 'a4' })).code, 'too_many_rooms');
        assert.equal((await client.request({ type: 'join', room: 'a1' })).type, 'joined', 're-joining is not a new room');
      } finally {
        await client.close();
      }
    });

    it('rejects binary frames on plaza.v1', async () => {
      const client = await V1Client.open(url);
      try {
        client.client.send(Buffer.from([1, 2, 3]));
        assert.equal((await client.waitFor((e) => e.type === 'error')).code, 'bad_request');
      } finally {
        await client.close();
      }
    });

    it('closes with 1008 a connection that keeps sending garbage, others unaffected', async () => {
      const bad = await V1Client.open(url);
      const good = await V1Client.open(url);
      await good.request({ type: 'join', room: 'calm' });
      for (let i = 0; i < 100; i++) bad.send('garbage');
      assert.equal(await bad.client.closed, 1008);
      const ack = await good.request({ type: 'publish', room: 'calm', data: 'fine' });
      assert.equal(ack.type, 'ack');
      await good.close();
    });
  });
});
