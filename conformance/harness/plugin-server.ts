// `cnm plugin serve` as a test starts it (by PID, data dir and socket under the test's own /tmp dir), and a
// misbehaving front for it: a proxy that passes every call through except one, which it breaks.
import { execa, type ResultPromise } from 'execa';
import { existsSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { bin } from './bins.ts';

export interface PluginServer {
  socket: string;
  dataDir: string;
  pid: number;
  /** SIGTERM, and waits for the exit; returns the exit code. */
  stop(): Promise<number | undefined>;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<number | undefined>;
}

const running = new Set<ResultPromise>();

async function connectable(socket: string): Promise<boolean> {
  if (!existsSync(socket)) return false;
  return new Promise((resolve) => {
    const c = connect(socket, () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

/** Polls until the socket answers; generous, as the machine is shared. */
export async function waitForSocket(socket: string, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await connectable(socket))) {
    if (Date.now() > deadline) throw new Error(`${what} did not listen on ${socket}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts `cnm plugin serve`; `wrap` runs it inside something (nsenter into dockerd's namespaces, say). */
export async function startPluginServer(o: { dataDir: string; socket?: string; name?: string; driver?: string; wrap?: string[]; socketSeenAt?: string }): Promise<PluginServer> {
  const args = ['--data-dir', o.dataDir, 'plugin', 'serve', ...(o.socket ? ['--socket', o.socket] : ['--name', o.name!]), ...(o.driver ? ['--driver', o.driver] : [])];
  const [cmd, argv] = o.wrap ? [o.wrap[0]!, [...o.wrap.slice(1), bin('cnm'), ...args]] : [bin('cnm'), args];
  const child = execa(cmd, argv, { reject: false, buffer: false, env: { CNM_LOG_LEVEL: 'debug' } });
  running.add(child);
  child.stderr!.on('data', (d: Buffer) => {
    if (process.env.CNM_TEST_VERBOSE) process.stderr.write(d);
  });
  const socket = o.socketSeenAt ?? o.socket!;
  await waitForSocket(socket, 'cnm plugin serve');
  const stopWith = async (signal: NodeJS.Signals) => {
    child.kill(signal);
    const r = await child;
    running.delete(child);
    return r.exitCode;
  };
  return { socket, dataDir: o.dataDir, pid: child.pid!, stop: () => stopWith('SIGTERM'), kill: () => stopWith('SIGKILL') };
}

const proxies = new Set<{ close(): Promise<void> }>();

/** Stops every server and proxy a test started (by PID for the servers). */
export async function stopAllPluginServers(): Promise<void> {
  for (const p of proxies) await p.close();
  for (const child of running) child.kill('SIGKILL');
  await Promise.allSettled([...running]);
  running.clear();
}

/** How the proxy breaks its call; `changed-address` answers CreateEndpoint with an address it was not given. */
export type Fault = 'err' | '404' | 'not-json' | 'hang' | 'changed-address';

/** A plugin at `socket` that forwards every call to `upstream` except `method`, which it answers with `fault`. */
export async function startFaultyProxy(socket: string, upstream: string, method: string, fault: Fault): Promise<{ close(): Promise<void> }> {
  const hung: Array<() => void> = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === `/${method}`) {
        if (fault === 'hang') return void hung.push(() => res.destroy());
        if (fault === 'err') return void res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ Err: 'injected failure' }));
        if (fault === '404') return void res.writeHead(404).end('404 page not found\n');
        if (fault === 'changed-address') return void res.writeHead(200).end(JSON.stringify({ Interface: { Address: '172.20.99.99/24' } }));
        return void res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html>not json</html>');
      }
      const up = request({ socketPath: upstream, path: req.url, method: 'POST', headers: { 'Content-Length': body.length } }, (r) => {
        res.writeHead(r.statusCode ?? 502, { 'Content-Type': 'application/json' });
        r.pipe(res);
      });
      up.on('error', () => res.writeHead(502).end());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  const proxy = {
    close: () =>
      new Promise<void>((resolve) => {
        proxies.delete(proxy);
        for (const h of hung.splice(0)) h();
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  proxies.add(proxy);
  return proxy;
}
