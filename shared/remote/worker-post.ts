// The synchronous POST where Bun's FFI is missing (the SEA build): node:http runs in a worker thread and this
// thread sleeps on a shared flag until the worker has the answer or the timeout passes. The worker starts once
// per process (~50 ms) and serves every call after; never on the default build's path.
import type { Worker } from 'node:worker_threads';
import type { PluginAddress } from './discovery.ts';
import { PLUGIN_MEDIA_TYPE } from './protocol.ts';
import { TransportError, type HttpReply } from './transport.ts';

const WORKER = `
const { parentPort } = require('node:worker_threads');
const http = require('node:http');
parentPort.on('message', (w) => {
  const flag = new Int32Array(w.flag);
  const done = (m) => { w.port.postMessage(m); Atomics.store(flag, 0, 1); Atomics.notify(flag, 0); };
  const target = w.address.kind === 'unix' ? { socketPath: w.address.path } : { host: w.address.host, port: w.address.port };
  const req = http.request({ ...target, path: w.path, method: 'POST', agent: false,
    headers: { Host: '', Accept: '${PLUGIN_MEDIA_TYPE}', 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(w.body) } }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => done({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
    res.on('error', (e) => done({ kind: 'broken', error: e.message }));
  });
  req.on('error', (e) => done({ kind: e.code === 'ECONNREFUSED' || e.code === 'ENOENT' ? 'unreachable' : 'broken', error: e.code === 'ECONNREFUSED' ? 'connection refused (nothing listens)' : e.code === 'ENOENT' ? 'no such socket' : e.message }));
  req.end(w.body);
});
`;

let worker: Worker | undefined;

export function post(address: PluginAddress, path: string, body: string, timeoutMs: number): HttpReply {
  const wt = require('node:worker_threads') as typeof import('node:worker_threads');
  if (!worker) {
    worker = new wt.Worker(WORKER, { eval: true });
    worker.unref();
  }
  const { port1, port2 } = new wt.MessageChannel();
  const flag = new SharedArrayBuffer(4);
  try {
    worker.postMessage({ address, path, body, flag, port: port2 }, [port2]);
    if (Atomics.wait(new Int32Array(flag), 0, 0, timeoutMs) === 'timed-out') throw new TransportError('timeout', `no answer within ${(timeoutMs / 1000).toFixed(1)} s`);
    const m = wt.receiveMessageOnPort(port1)?.message as { status?: number; body?: string; kind?: TransportError['kind']; error?: string } | undefined;
    if (!m || m.error !== undefined) throw new TransportError(m?.kind ?? 'broken', m?.error ?? 'the worker gave no answer');
    return { status: m.status!, body: m.body! };
  } finally {
    port1.close();
  }
}
