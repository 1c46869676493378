// Everything that is not ours goes to the upstream resolvers, one after another, each within its share of a
// budget shorter than a client's own timeout (glibc and dig wait 5 s), so a client gets SERVFAIL rather than
// silence; a refused upstream (ICMP port unreachable on a connected socket) is passed over at once.
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { canonicalIp } from '../ipam/ip.ts';
import type { Upstream } from '../discovery/options.ts';

/** The whole time a query may spend on upstreams. */
export const FORWARD_BUDGET_MS = 2500;

/** The node's resolvers: /etc/resolv.conf's nameserver lines. */
export function systemUpstreams(path = '/etc/resolv.conf'): Upstream[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .map((a) => (a ? canonicalIp(a.split('%')[0]!) : undefined))
    .filter((a): a is string => !!a)
    .map((address) => ({ address, port: 53 }));
}

/**
 * Settles once: whichever of reply, error or timeout comes first wins, the socket is closed once, and anything
 * the socket does after that is ignored (a late connect callback, a late ICMP error).
 */
function once(up: Upstream, timeoutMs: number, close: () => void, resolve: (b: Buffer) => void, reject: (e: Error) => void) {
  let settled = false;
  const timer = setTimeout(() => finish(new Error(`${up.address}:${up.port} timed out`)), timeoutMs);
  const finish = (err: Error | undefined, msg?: Buffer) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    try {
      close();
    } catch {
      // already closed by an error
    }
    if (err) reject(err);
    else resolve(msg!);
  };
  return { finish, settled: () => settled };
}

function viaUdp(up: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = createSocket(up.address.includes(':') ? 'udp6' : 'udp4');
    const { finish, settled } = once(up, timeoutMs, () => sock.close(), resolve, reject);
    sock.on('error', (err) => finish(err));
    sock.on('message', (msg) => {
      if (msg.length >= 2 && msg.readUInt16BE(0) === query.readUInt16BE(0)) finish(undefined, msg);
    });
    sock.connect(up.port, up.address, () => {
      if (settled()) return;
      sock.send(query, (err) => err && finish(err));
    });
  });
}

function viaTcp(up: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: up.address, port: up.port });
    let buf = Buffer.alloc(0);
    const { finish } = once(up, timeoutMs, () => sock.destroy(), resolve, reject);
    sock.on('error', (err) => finish(err));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) finish(undefined, buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
    sock.on('end', () => finish(new Error(`${up.address}:${up.port} closed the connection`)));
  });
}

/** The first upstream's answer, or undefined when every one failed (the caller answers SERVFAIL). */
export async function forward(upstreams: Upstream[], query: Buffer, tcp: boolean, onError: (msg: string) => void): Promise<Buffer | undefined> {
  if (upstreams.length === 0) return undefined;
  const share = Math.max(200, Math.floor(FORWARD_BUDGET_MS / upstreams.length));
  for (const up of upstreams) {
    try {
      const reply = tcp ? await viaTcp(up, query, share) : await viaUdp(up, query, share);
      return reply;
    } catch (err) {
      onError((err as Error).message);
    }
  }
  return undefined;
}
