/**
 * The one publishing client: an ordinary `ws` client, as an application would use. With
 * socket.io it speaks engine.io v4 by hand (open → "40" → "40{sid}"), then emits 'msg' as
 * `42["msg","<payload>"]`, which is exactly what socket.io-client puts on the wire.
 * Every server echoes to the sender too (Plaza's default, the usual `wss.clients` loop and
 * `io.emit` all include it), so the publisher is one more recipient and its copies are counted.
 */
import WebSocket from 'ws';
import { PATHS } from './subscriber.mjs';

export class Publisher {
  /** @param {{ port: number, flavour: 'plain' | 'socketio', sink: import('./subscriber.mjs').Sink }} options */
  constructor({ port, flavour, sink }) {
    this.port = port;
    this.flavour = flavour;
    this.sink = sink;
    this.ws = null;
  }

  connect(timeoutMs) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${this.port}${PATHS[this.flavour]}`, { perMessageDeflate: false });
      this.ws = ws;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`publisher handshake took more than ${timeoutMs} ms`));
      }, timeoutMs);
      const ready = () => {
        clearTimeout(timer);
        resolve();
      };
      ws.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      if (this.flavour === 'plain') ws.on('open', ready);
      ws.on('message', (data) => {
        if (this.flavour === 'plain') return this.sink.count();
        const text = data.toString();
        if (text.startsWith('42')) this.sink.count();
        else if (text === '2') ws.send('3');
        else if (text.startsWith('0')) ws.send('40');
        else if (text.startsWith('40')) ready();
      });
    });
  }

  send(payload) {
    this.ws.send(this.flavour === 'plain' ? payload : `42${JSON.stringify(['msg', payload])}`);
  }

  close() {
    this.ws?.terminate();
    this.ws = null;
  }
}
