import { execa, type ResultPromise } from 'execa';
import type { TestNetns } from './netns.ts';

/**
 * Real traffic between test namespaces: a small node server that answers each TCP connection or UDP
 * datagram with the peer address it saw, and a client that prints the answer. Bounded by timeouts.
 */
const SERVER = `
const [proto, host, port] = process.argv.slice(1);
if (proto === 'tcp') {
  const s = require('net').createServer((c) => { c.end(c.remoteAddress.replace(/^::ffff:/, '') + '\\n'); });
  s.listen({ host, port: Number(port) }, () => console.log('ready'));
} else {
  const s = require('dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (_m, r) => s.send(r.address + '\\n', r.port, r.address));
  s.bind(Number(port), host, () => console.log('ready'));
}
setTimeout(() => process.exit(0), 120000);
`;

const CLIENT = `
const [proto, host, port] = process.argv.slice(1);
const fail = (why) => { console.log('FAIL ' + why); process.exit(1); };
setTimeout(() => fail('timeout'), 2500);
if (proto === 'tcp') {
  const c = require('net').connect({ host, port: Number(port) });
  let data = '';
  c.on('data', (d) => { data += d; });
  c.on('end', () => { console.log(data.trim()); process.exit(0); });
  c.on('error', (e) => fail(e.code));
} else {
  const s = require('dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (m) => { console.log(String(m).trim()); process.exit(0); });
  s.send('hi', Number(port), host, (e) => e && fail(e.code));
}
`;

export type Proto = 'tcp' | 'udp';

export interface Server {
  stop(): Promise<void>;
}

const running = new Set<ResultPromise>();

/** A namespace a runtime made (a path, no name under /var/run/netns). */
export function pathNetns(path: string): TestNetns {
  return { name: '', path };
}

function inNamespace(ns: TestNetns | undefined, args: string[]): [string, string[]] {
  if (!ns) return [process.execPath, args];
  return ns.name ? ['ip', ['netns', 'exec', ns.name, process.execPath, ...args]] : ['nsenter', [`--net=${ns.path}`, '--', process.execPath, ...args]];
}

/** Starts a server in a namespace (or on the node when ns is undefined) and waits until it listens. */
export async function serve(ns: TestNetns | undefined, proto: Proto, host: string, port: number): Promise<Server> {
  const [cmd, args] = inNamespace(ns, ['-e', SERVER, proto, host, String(port)]);
  const child = execa(cmd, args, { reject: false, buffer: false });
  running.add(child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server ${proto} ${host}:${port} did not start`)), 5000);
    child.stdout!.on('data', (d: Buffer) => {
      if (String(d).includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (d: Buffer) => process.stderr.write(d));
    void child.then(() => {
      clearTimeout(timer);
      reject(new Error(`server ${proto} ${host}:${port} exited`));
    });
  });
  return {
    stop: async () => {
      child.kill('SIGKILL');
      await child;
      running.delete(child);
    },
  };
}

/** Connects from a namespace; returns the address the server saw us as, or undefined when it failed. */
export async function reach(ns: TestNetns | undefined, proto: Proto, host: string, port: number): Promise<string | undefined> {
  const [cmd, args] = inNamespace(ns, ['-e', CLIENT, proto, host, String(port)]);
  const r = await execa(cmd, args, { reject: false, timeout: 5000 });
  const line = r.stdout.trim();
  return r.exitCode === 0 && line && !line.startsWith('FAIL') ? line : undefined;
}

export async function stopAllServers(): Promise<void> {
  for (const child of running) child.kill('SIGKILL');
  await Promise.allSettled([...running]);
  running.clear();
}
