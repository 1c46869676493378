// A blocking stream socket through Bun's FFI (libc's socket/connect/send/recv), bounded by SO_SNDTIMEO and
// SO_RCVTIMEO: connect, send the request, read until the server closes or the answer is whole.
import { libc } from '../kernel/libc.ts';
import type { PluginAddress } from './discovery.ts';
import { parseResponse, TransportError, type HttpReply } from './transport.ts';

const AF_UNIX = 1;
const AF_INET = 2;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0x80000;
const SOL_SOCKET = 1;
const SO_RCVTIMEO = 20;
const SO_SNDTIMEO = 21;
const MSG_NOSIGNAL = 0x4000;
const EINTR = 4;
const EAGAIN = 11;
const EINPROGRESS = 115;

export function available(): boolean {
  return libc() !== null;
}

function sockaddr(a: PluginAddress): Uint8Array {
  if (a.kind === 'unix') {
    const path = Buffer.from(a.path);
    if (path.length > 107) throw new TransportError('unreachable', `socket path ${a.path} is longer than 107 bytes`);
    const b = new Uint8Array(2 + path.length + 1);
    b[0] = AF_UNIX;
    b.set(path, 2);
    return b;
  }
  const host = a.host === 'localhost' ? '127.0.0.1' : a.host;
  const octets = host.split('.').map(Number);
  if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255))) throw new TransportError('unreachable', `tcp host ${a.host} is not an IPv4 address`);
  const b = new Uint8Array(16);
  b[0] = AF_INET;
  b[2] = a.port >> 8;
  b[3] = a.port & 0xff;
  b.set(octets, 4);
  return b;
}

const ERRNO: Record<number, string> = { 2: 'no such socket', 13: 'permission denied', 104: 'connection reset', 111: 'connection refused (nothing listens)', 113: 'no route to host' };

export function post(address: PluginAddress, request: Uint8Array, timeoutMs: number): HttpReply {
  const { libc: c, ptr, errno } = libc()!;
  const deadline = Date.now() + timeoutMs;
  const setTimeouts = () => {
    const left = Math.max(1, deadline - Date.now());
    const tv = new BigInt64Array([BigInt(Math.floor(left / 1000)), BigInt((left % 1000) * 1000)]);
    const p = ptr(new Uint8Array(tv.buffer));
    c.setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, p, 16);
    c.setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, p, 16);
  };
  const timedOut = () => new TransportError('timeout', `no answer within ${(timeoutMs / 1000).toFixed(1)} s`);
  const addr = sockaddr(address);
  const fd = c.socket(address.kind === 'unix' ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new TransportError('unreachable', `cannot make a socket (errno ${errno()})`);
  try {
    setTimeouts();
    if (c.connect(fd, ptr(addr), addr.length) !== 0) {
      const e = errno();
      if (e === EINPROGRESS || e === EAGAIN) throw timedOut();
      throw new TransportError('unreachable', `cannot connect: ${ERRNO[e] ?? `errno ${e}`}`);
    }
    for (let off = 0; off < request.length; ) {
      const n = Number(c.send(fd, ptr(request.subarray(off)), request.length - off, MSG_NOSIGNAL));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) throw timedOut();
        throw new TransportError('broken', `sending failed: ${ERRNO[e] ?? `errno ${e}`}`);
      }
      off += n;
    }
    const chunks: Buffer[] = [];
    const buf = new Uint8Array(65536);
    for (;;) {
      if (Date.now() >= deadline) throw timedOut();
      setTimeouts();
      const n = Number(c.recv(fd, ptr(buf), buf.length, 0));
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === EAGAIN) throw timedOut();
        throw new TransportError('broken', `reading failed: ${ERRNO[e] ?? `errno ${e}`}`);
      }
      if (n > 0) chunks.push(Buffer.from(buf.subarray(0, n)));
      const reply = parseResponse(Buffer.concat(chunks), n === 0);
      if (reply) return reply;
      if (n === 0) throw new TransportError('broken', chunks.length ? 'the connection closed in the middle of the answer' : 'the connection closed without an answer');
    }
  } finally {
    c.close(fd);
  }
}
