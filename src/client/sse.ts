/**
 * plaza.v1 over server-sent events (PROTOCOL.md, "Server-sent events") dressed as a WebSocket
 * (SocketLike), so the reconnecting transport, its queue, backoff and watchdog, and the v1 layer
 * above with its resume and publish ids, run over it unchanged: envelopes come down one
 * `GET <path>sse` response, requests go up as `POST <path>sse/<stream>`.
 *
 * Why fetch and not EventSource: fetch streams a response body in every browser and in Node 20
 * (which has no EventSource), and it leaves reconnecting to us. EventSource reconnects by
 * itself, hides the HTTP status of a refusal (a 401 is just an 'error'), and resumes from its
 * own Last-Event-ID, which would race the client's own resume, ladder and backoff; the client
 * already knows each room's position and rejoins with `since` like after any reconnect.
 *
 * The stream's opening welcome (it carries the stream id and the limits) is kept here: the link
 * counts as open once it came, and the welcome the layer above sees is the answer to its own
 * hello, POSTed, which proves that requests get through too.
 *
 * POSTs go one at a time, in order; what is written meanwhile goes in the next one, as lines,
 * up to the server's maxPayload per body. A POST that fails in any way ends the link (1006): the
 * reconnect resumes every room and re-sends unanswered publishes with their ids, so nothing is
 * lost or published twice, and no POST is ever retried on its own (hence no Plaza-Seq: without
 * a custom header a cross-origin POST needs no preflight).
 */
import { sizeOf, type Data, type SocketLike } from './socket.js';

export function openEventStream(url: string, timeout: number): SocketLike {
  const target = new URL(url);
  target.protocol = target.protocol.replace('ws', 'http');
  target.pathname += target.pathname.endsWith('/') ? 'sse' : '/sse';
  const { search } = target;
  const abort = new AbortController();
  const signal = abort.signal;
  let post = '';
  let maxPayload = 0;
  /** Requests written and not yet POSTed, and whether a POST is on its way. */
  let outbox: string[] = [];
  let posting = false;

  const end = (code: number, reason: string) => {
    if (socket.readyState > 2) return;
    socket.readyState = 3;
    abort.abort();
    socket.onclose?.({ code, reason } as never);
  };

  /** One POST of what waits (at least one request, at most maxPayload bytes when more), then the next. */
  const flush = () => {
    if (posting || !outbox.length) return;
    let body = outbox[0]!;
    let bytes = sizeOf(body);
    let n = 1;
    while (n < outbox.length && (bytes += sizeOf(outbox[n]!) + 1) <= maxPayload) body += '\n' + outbox[n++];
    outbox = outbox.slice(n);
    posting = true;
    // A POST never answered (a dead keep-alive connection, a proxy that holds it) would hold up
    // every request after it: past connectTimeout the link is taken for dead, as an attempt is.
    const timer = timeout && setTimeout(() => end(1006, 'POST timeout'), timeout);
    // A string body goes as text/plain: a "simple" request, no preflight across origins.
    fetch(post, { method: 'POST', body, signal }).then(
      (response) => {
        clearTimeout(timer);
        posting = false;
        if (response.ok) flush();
        else end(1006, `POST answered ${response.status}`);
      },
      (error: Error) => {
        clearTimeout(timer);
        end(1006, error.message);
      },
    );
  };

  const dispatch = (data: string) => {
    if (!post) {
      // The opening welcome: where to POST, and how large a body may be.
      const welcome = JSON.parse(data) as { stream: string; limits?: { maxPayload?: number } };
      post = `${target.origin}${target.pathname}/${welcome.stream}${search}`;
      maxPayload = welcome.limits?.maxPayload ?? 0;
      socket.readyState = 1;
      socket.onopen?.({} as never);
      return;
    }
    // The stream's last event: the close code and reason a WebSocket would have had.
    const last = data.includes('"type":"close"') && (JSON.parse(data) as { type: string; code: number; reason: string });
    if (last && last.type == 'close') end(last.code, last.reason);
    else socket.onmessage?.({ data } as never);
  };

  const read = async () => {
    target.searchParams.set('beats', '1'); // beats as events, so the watchdog hears them
    const response = await fetch(target.href, { signal, cache: 'no-store', headers: { accept: 'text/event-stream' } });
    // 401: the token was refused, which a WebSocket hears as close code 4003.
    if (!response.ok || !response.body) return end(response.status == 401 ? 4003 : 1006, `stream refused: ${response.status}`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let data = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return end(1006, 'stream ended');
      const lines = (buffer + decoder.decode(value, { stream: true })).split(/\r\n|\r|\n/);
      buffer = lines.pop()!;
      for (const line of lines) {
        if (!line) {
          if (data) dispatch(data);
          data = '';
          // A listener may have closed this socket.
          if (socket.readyState > 2) return;
        } else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line[5] == ' ' ? 6 : 5);
        // Comments, `id:` and `retry:` lines: the client keeps its own positions and timing.
      }
    }
  };

  const socket: SocketLike & { readyState: number } = {
    binaryType: '',
    readyState: 0,
    onopen: null,
    onmessage: null,
    onclose: null,
    onerror: null,
    send(frame: Data) {
      outbox.push(String(frame));
      flush();
    },
    close() {
      socket.readyState = 3;
      abort.abort();
    },
  };
  read().catch((error: Error) => end(1006, error.message));
  return socket;
}
