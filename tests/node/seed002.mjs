// Seed 002's dashboard connection code, unchanged, against fxgate's /socket.io/.
//
// Run by tests/test_socketio_node.py: FXGATE_URL and FXGATE_TOKEN in the environment;
// prints one JSON line per phase ({"phase", "ok", ...}) and exits 0 when all passed.
import { io } from 'socket.io-client';

const url = process.env.FXGATE_URL;
const token = process.env.FXGATE_TOKEN;

const FIELDS = {
  quotes: ['symbol', 'bid', 'ask', 'spread', 'timestamp'],
  positions_update: ['ticket', 'symbol', 'type', 'volume', 'price_open', 'price_current', 'sl',
    'tp', 'profit', 'swap', 'commission', 'time', 'comment'],
  orders_update: ['ticket', 'symbol', 'type', 'volume', 'price_open', 'sl', 'tp', 'time_setup',
    'state', 'comment'],
  connected: ['message', 'server_time'],
  heartbeat_ack: ['timestamp', 'server_time'],
};

const sameKeys = (obj, keys) => JSON.stringify(Object.keys(obj)) === JSON.stringify(keys);

function session(phase, socket, { expectUpgrade }) {
  return new Promise((resolve) => {
    const report = {
      phase, ok: false, events: {}, problems: [], upgraded: false, quotesAfterUpgrade: 0,
    };
    const seen = (name) => { report.events[name] = (report.events[name] || 0) + 1; };
    const problem = (text) => report.problems.push(text);
    let stamp = null;
    let acked = false;
    const finish = (ok) => {
      clearTimeout(timer);
      report.ok = ok && report.problems.length === 0;
      report.transportAtEnd = socket.io.engine ? socket.io.engine.transport.name : null;
      socket.disconnect();
      resolve(report);
    };
    const timer = setTimeout(() => { problem('timeout'); finish(false); }, 15000);
    const done = () => {
      const e = report.events;
      if (!(e.subscribed && e.positions_update && e.orders_update && acked)) return;
      if ((e.quotes || 0) < 3) return;
      if (expectUpgrade && report.quotesAfterUpgrade < 2) return;
      finish(true);
    };

    // Instrumentation: the transport the Engine.IO connection opened with, and its
    // upgrade (which may well complete before the Socket.IO connect).
    socket.io.on('open', () => {
      report.transportAtOpen = socket.io.engine.transport.name;
      socket.io.engine.on('upgrade', (t) => { report.upgraded = t.name; });
    });
    socket.on('connect', () => { seen('connect'); });
    socket.on('connect_error', (err) => { problem('connect_error: ' + err.message); finish(false); });
    socket.on('connected', (data) => {
      seen('connected');
      if (!sameKeys(data, FIELDS.connected)) problem('connected fields ' + Object.keys(data));
      // As the seed's App does on connect.
      socket.emit('subscribe', { channels: ['quotes', 'positions', 'orders'] });
    });
    socket.on('subscribed', (data) => {
      seen('subscribed');
      if (JSON.stringify(data.channels) !== JSON.stringify(['quotes', 'positions', 'orders'])) {
        problem('subscribed ' + JSON.stringify(data));
      }
      stamp = Date.now();
      socket.emit('heartbeat', { timestamp: stamp });
    });
    socket.on('heartbeat_ack', (data) => {
      seen('heartbeat_ack');
      if (!sameKeys(data, FIELDS.heartbeat_ack)) problem('heartbeat_ack fields');
      if (data.timestamp === stamp) acked = true;
      done();
    });
    socket.on('quotes', (data) => {
      seen('quotes');
      if (report.upgraded) report.quotesAfterUpgrade += 1;
      if (!sameKeys(data, FIELDS.quotes)) problem('quotes fields ' + Object.keys(data));
      if (!(data.ask > data.bid) || !Number.isInteger(data.spread)) problem('quote values');
      done();
    });
    for (const name of ['positions_update', 'orders_update']) {
      socket.on(name, (data) => {
        seen(name);
        if (!Array.isArray(data)) { problem(name + ' is not a list'); return; }
        if (data.length === 0) problem(name + ' is empty');
        for (const item of data) {
          if (!sameKeys(item, FIELDS[name])) problem(name + ' fields ' + Object.keys(item));
        }
        report[name] = data;
        done();
      });
    }
    socket.on('error', (data) => problem('error ' + JSON.stringify(data)));
  });
}

function refused(phase, socket) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { socket.close(); resolve({ phase, ok: false }); }, 10000);
    socket.on('connect', () => { clearTimeout(timer); socket.close(); resolve({ phase, ok: false }); });
    socket.on('connect_error', (err) => {
      clearTimeout(timer);
      socket.close();
      resolve({ phase, ok: true, message: err.message, data: err.data });
    });
  });
}

const results = [];

// 1. The seed's code as written: websocket first.
const socket = io(url, {
  auth: {
    token: token
  },
  transports: ['websocket', 'polling']
});
results.push(await session('websocket', socket, { expectUpgrade: false }));

// 2. The default transports: polling first, then the upgrade to websocket.
results.push(await session('default', io(url, { auth: { token }, forceNew: true }),
  { expectUpgrade: true }));

// 3. A bad token: connect_error with a message.
results.push(await refused('bad-token', io(url, { auth: { token: 'not-a-token' }, forceNew: true })));

// 4. Token expiry: the server says why and leaves; the seed's handler reconnects by
// hand on 'io server disconnect', here with a new token in socket.auth.
if (process.env.FXGATE_SHORT_TOKEN) {
  results.push(await new Promise((resolve) => {
    const report = { phase: 'expiry', ok: false, events: [] };
    const s = io(url, { auth: { token: process.env.FXGATE_SHORT_TOKEN }, forceNew: true,
      transports: ['websocket'] });
    const timer = setTimeout(() => { s.close(); resolve(report); }, 20000);
    let connects = 0;
    s.on('connected', () => {
      connects += 1;
      report.events.push('connected');
      if (connects === 2) s.emit('heartbeat', { timestamp: 42 });
    });
    s.on('disconnected', (data) => { report.events.push('disconnected'); report.notice = data; });
    s.on('disconnect', (reason) => {
      if (report.ok) return; // our own close at the end
      report.events.push('disconnect');
      report.reason = reason;
      if (reason === 'io server disconnect') {
        s.auth = { token: token };
        s.connect();
      }
    });
    s.on('heartbeat_ack', (data) => {
      report.events.push('heartbeat_ack');
      report.ok = data.timestamp === 42;
      clearTimeout(timer);
      s.close();
      resolve(report);
    });
  }));
}

for (const r of results) console.log(JSON.stringify(r));
process.exit(results.every((r) => r.ok) ? 0 : 1);
