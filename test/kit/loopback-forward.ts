// Makes ports of the host's 127.0.0.1 (a test registry) answer at the same address inside a test
// network namespace. Two processes, because a socket stays in the namespace it was made in:
// `host DIR PORT…` (host namespace) serves DIR/PORT.sock → 127.0.0.1:PORT, and `ns DIR PORT…`
// (started inside the namespace) listens on 127.0.0.1:PORT → DIR/PORT.sock; a socket path is
// reachable from every namespace. Not the test process itself: its docker CLI calls block it.
// Prints "ready" once listening; exits when its stdin closes (the test process is gone).
import net from 'node:net';
import { join } from 'node:path';

const [mode, dir, ...ports] = process.argv.slice(2);
let pending = ports.length;
for (const port of ports.map(Number)) {
  const sock = join(dir, `${port}.sock`);
  const server = net.createServer((c) => {
    const up = mode === 'host' ? net.connect(port, '127.0.0.1') : net.connect(sock);
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
    c.pipe(up).pipe(c);
  });
  const ready = () => --pending === 0 && process.stdout.write('ready\n');
  if (mode === 'host') server.listen(sock, ready);
  else server.listen(port, '127.0.0.1', ready);
}
process.stdin.on('end', () => process.exit(0)).resume();
