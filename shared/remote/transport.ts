// One HTTP/1.1 POST over a unix (or tcp) socket, synchronously: the CNM core is synchronous, as libnetwork's
// driver interface is. Under Bun the socket is libc's, through FFI (a call costs well under a millisecond);
// elsewhere (the SEA build) node:http runs in a worker thread while this thread waits on it.
import * as ffi from './ffi-socket.ts';
import { post as workerPost } from './worker-post.ts';
import type { PluginAddress } from './discovery.ts';
import { PLUGIN_MEDIA_TYPE } from './protocol.ts';

export interface HttpReply {
  status: number;
  body: string;
}

/** Why no reply came: nothing to connect to, no answer in time, or the connection broke. */
export class TransportError extends Error {
  constructor(
    readonly kind: 'unreachable' | 'timeout' | 'broken',
    message: string,
  ) {
    super(message);
  }
}

export function requestBytes(path: string, body: string, host: string): Uint8Array {
  const head = `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: ${PLUGIN_MEDIA_TYPE}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  return Buffer.from(head + body);
}

/** Parses a whole HTTP/1.1 response (the server closed the connection after it); undefined while incomplete. */
export function parseResponse(raw: Buffer, ended: boolean): HttpReply | undefined {
  const split = raw.indexOf('\r\n\r\n');
  if (split < 0) return undefined;
  const head = raw.subarray(0, split).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? NaN);
  if (!Number.isInteger(status)) throw new TransportError('broken', `the answer is not HTTP: ${JSON.stringify(head[0]?.slice(0, 60))}`);
  const headers = new Map(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  let body = raw.subarray(split + 4);
  if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
    const chunks: Buffer[] = [];
    let off = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', off);
      if (eol < 0) return ended ? { status, body: Buffer.concat(chunks).toString('utf8') } : undefined;
      const size = parseInt(body.subarray(off, eol).toString('latin1'), 16);
      if (!(size >= 0)) throw new TransportError('broken', 'a malformed chunked body');
      if (size === 0) return { status, body: Buffer.concat(chunks).toString('utf8') };
      if (body.length < eol + 2 + size) return ended ? { status, body: Buffer.concat(chunks).toString('utf8') } : undefined;
      chunks.push(body.subarray(eol + 2, eol + 2 + size));
      off = eol + 2 + size + 2;
    }
  }
  const length = headers.get('content-length');
  if (length !== undefined) {
    if (body.length < Number(length)) return ended ? { status, body: body.toString('utf8') } : undefined;
    body = body.subarray(0, Number(length));
  } else if (!ended) {
    return undefined;
  }
  return { status, body: body.toString('utf8') };
}

/** POSTs `body` to `path`; throws TransportError when no whole answer came within timeoutMs. */
export function postSync(address: PluginAddress, path: string, body: string, timeoutMs: number): HttpReply {
  if (ffi.available()) return ffi.post(address, requestBytes(path, body, address.kind === 'tcp' ? `${address.host}:${address.port}` : ''), timeoutMs);
  return workerPost(address, path, body, timeoutMs);
}
