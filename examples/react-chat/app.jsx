// The seed's React chat on Plaza's hooks: one room, a name, the messages and who is online.
import { useState } from 'react';
import { createRoot } from 'react-dom/client';
import { PlazaProvider, usePlazaStatus, useRoom } from 'plaza-realtime/react';

const ROOM = 'lobby';

function Chat() {
  const { messages, members, memberCount, publish, reset } = useRoom(ROOM, { history: 50, presence: true, keep: 200 });
  const { status } = usePlazaStatus();
  const [text, setText] = useState('');
  const [error, setError] = useState('');

  const send = (event) => {
    event.preventDefault();
    if (!text.trim()) return;
    publish(text).catch((e) => setError(`not sent: ${e.message}`));
    setText('');
  };

  return (
    <main>
      <section>
        <p id="status" data-status={status}>{status == 'open' ? `#${ROOM}` : `${status}…`}</p>
        {reset && <p>Some messages were missed while away.</p>}
        {/* React renders text, never HTML: peers' messages cannot inject markup. */}
        <ul id="log">
          {messages.map(({ data, meta }) => (
            <li key={meta.id}><b>{meta.sender.name}</b>{String(data)}</li>
          ))}
        </ul>
        {error && <p role="alert">{error}</p>}
      </section>
      <aside>
        <h2>Online ({memberCount})</h2>
        <ul id="online">
          {members.map((m) => <li key={m.session}>{m.name}</li>)}
        </ul>
      </aside>
      <form onSubmit={send}>
        <input id="text" value={text} onChange={(e) => setText(e.target.value)} placeholder="Say something" autoComplete="off" />
        <button>Send</button>
      </form>
    </main>
  );
}

function App() {
  const [name, setName] = useState('');
  const [draft, setDraft] = useState('');
  if (!name) {
    return (
      <form id="login" onSubmit={(e) => (e.preventDefault(), setName(draft.trim()))}>
        <input id="name" value={draft} onChange={(e) => setDraft(e.target.value)} placeholder="Your name" maxLength={64} />
        <button>Join</button>
      </form>
    );
  }
  // No url: the page's own origin, where this server runs Plaza.
  return (
    <PlazaProvider options={{ name }}>
      <Chat />
    </PlazaProvider>
  );
}

createRoot(document.getElementById('app')).render(<App />);
