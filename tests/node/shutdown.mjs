// Seed 002's client through a server shutdown: every socket must get `disconnected`
// before its connection ends. Prints READY once all are streaming, then one JSON line.
import { io } from 'socket.io-client';

const url = process.env.FXGATE_URL;
const token = process.env.FXGATE_TOKEN;
const options = [
  { auth: { token }, transports: ['websocket', 'polling'] },
  { auth: { token } },
  { auth: { token }, transports: ['polling'] },
];
let streaming = 0;
const reports = await Promise.all(options.map((opts, i) => new Promise((resolve) => {
  const s = io(url, { ...opts, forceNew: true, reconnection: false });
  const report = { socket: i, events: [] };
  let quoted = false;
  s.on('connected', () => s.emit('subscribe', { channels: ['quotes'] }));
  s.on('quotes', () => {
    if (quoted) return;
    quoted = true;
    streaming += 1;
    if (streaming === options.length) console.log('READY');
  });
  s.on('disconnected', (data) => { report.events.push('disconnected'); report.notice = data; });
  s.on('disconnect', (reason) => {
    report.events.push('disconnect:' + reason);
    report.transport = s.io.engine ? s.io.engine.transport.name : null;
    setTimeout(() => { s.close(); resolve(report); }, 50);
  });
  setTimeout(() => { s.close(); resolve(report); }, 30000);
})));
console.log(JSON.stringify(reports));
process.exit(0);
