/**
 * A publishing client: an ordinary `ws` client, as an application would use.
 *   'plain'           sends the payload as a text message.
 *   'v1'              offers plaza.v1, joins its room, publishes `{"type":"publish","room":…,"data":"<payload>"}`
 *                     (Plaza, or the bare-ws rooms peer, which takes the same requests).
 *   'socketio'        speaks engine.io v4 by hand (open → "40" → "40{sid}") and emits 'msg' as
 *                     `42["msg","<payload>"]`, exactly what socket.io-client puts on the wire.
 *   'socketio-rooms'  the same, then `42["join","<room>"]` → `42["joined",…]`, and publishes as
 *                     `42["publish",{"room":…,"data":"<payload>"}]`.
 * Every server echoes to the sender too (Plaza's default, the usual `wss.clients` loop, `io.emit`
 * and `io.to(room).emit` all include it), so a publisher is one more recipient and its copies are
 * counted.
 */
import WebSocket from 'ws';
import { isJoined, JOIN, PATHS, PUBLISH, SUBPROTOCOL } from './subscriber.mjs';

export class Publisher {
  /**
   * @param {{ port: number, flavour: 'plain' | 'v1' | 'socketio' | 'socketio-rooms', room?: string,
   *           sink: import('./subscriber.mjs').Sink, query?: string }} options
   *   `query` is appended to the URL's path, e.g. `?token=…`.
   */
  constructor({ port, flavour, room = 'lobby', sink, query = '' }) {
    this.port = port;
    // 'v1-ids' is plaza.v1 in every way but what a publish carries.
    this.flavour = flavour === 'v1-ids' ? 'v1' : flavour;
    this.room = room;
    this.query = query;
    this.sink = sink;
    this.ws = null;
    this.ready = false;
    this.encode = PUBLISH[flavour];
  }

  connect(timeoutMs) {
    return new Promise((resolve, reject) => {
      const url = `ws://127.0.0.1:${this.port}${PATHS[this.flavour]}${this.query}`;
      const ws = new WebSocket(url, this.flavour === 'v1' ? SUBPROTOCOL : [], { perMessageDeflate: false });
      this.ws = ws;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`publisher handshake took more than ${timeoutMs} ms`));
      }, timeoutMs);
      const ready = () => {
        clearTimeout(timer);
        this.ready = true;
        resolve();
      };
      ws.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      const flavour = this.flavour;
      if (flavour === 'plain') ws.on('open', ready);
      if (flavour === 'v1') ws.on('open', () => ws.send(JOIN.v1(this.room)));
      ws.on('message', (data) => {
        if (this.ready && flavour !== 'socketio' && flavour !== 'socketio-rooms') return this.sink.count();
        const text = data.toString();
        if (flavour === 'v1') {
          if (isJoined(flavour, text)) ready();
          return;
        }
        if (text.startsWith('42')) {
          if (this.ready) this.sink.count();
          else if (isJoined(flavour, text)) ready();
        } else if (text === '2') ws.send('3');
        else if (text.startsWith('0')) ws.send('40');
        else if (text.startsWith('40')) {
          if (flavour === 'socketio') ready();
          else ws.send(JOIN[flavour](this.room));
        }
      });
    });
  }

  send(payload) {
    this.ws.send(this.encode(payload, this.room));
  }

  close() {
    this.ws?.terminate();
    this.ws = null;
  }
}
