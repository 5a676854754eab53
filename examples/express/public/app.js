// The page: log in with the app (a session cookie), then talk through Plaza. The browser sends
// the cookie with the WebSocket upgrade, so Plaza's authenticate hook knows who this is.
import { connect } from '/plaza.mjs';

const $ = (id) => document.getElementById(id);

function show(text, className) {
  const line = document.createElement('li');
  line.textContent = text; // peer text is text, never HTML
  if (className) line.className = className;
  $('log').append(line);
}

function start() {
  $('login').hidden = true;
  $('say').hidden = false;
  const plaza = connect('/live', { rooms: true });
  const room = plaza.join('lobby', { history: 20 });
  room.on('message', (data, meta) => show(`${meta.sender.name}: ${data}`));
  plaza.on('error', (error) => show(error.message, 'error'));
  $('say').addEventListener('submit', (event) => {
    event.preventDefault();
    room.publish($('text').value).catch((error) => show(`${error.code}: ${error.message}`, 'error'));
    $('text').value = '';
  });
}

$('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  const response = await fetch('/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: $('name').value }) });
  if (response.ok) start();
  else show((await response.json()).error, 'error');
});

if ((await fetch('/me')).ok) start();
