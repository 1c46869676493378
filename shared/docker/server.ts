// `cnm plugin serve`: libnetwork's remote protocol served on a unix socket, each call handed to the network or
// IPAM door. Foreground, logs on stderr, stops cleanly on SIGTERM; all state is in the data dir, so a SIGKILL
// costs nothing but the stale socket and the staging namespace, which the next start replaces and reuses.
import { mkdirSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname } from 'node:path';
import { asCniError, CniError, ErrorCode } from '../cni/errors.ts';
import { Log } from '../cni/log.ts';
import type { Driver } from '../cnm/driver.ts';
import { PLUGIN_MEDIA_TYPE } from '../remote/protocol.ts';
import { IpamDoor } from './ipam-door.ts';
import { NetworkDoor } from './network-door.ts';

export interface ServeOptions {
  socket: string;
  driver: Driver;
  dataDir: string;
}

type Handler = (req: never) => unknown;

export function serve(o: ServeOptions): Promise<void> {
  const http = require('node:http') as typeof import('node:http');
  const log = new Log('cnm plugin serve');
  const networks = new NetworkDoor(o.driver, o.dataDir, log);
  const handlers: Record<string, Handler> = {
    'Plugin.Activate': () => ({ Implements: ['NetworkDriver', 'IpamDriver'] }),
    ...networks.calls,
    ...new IpamDoor(o.dataDir).calls,
  };

  const reply = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body) + '\n';
    res.writeHead(status, { 'Content-Type': PLUGIN_MEDIA_TYPE, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, body: string) => {
    const method = (req.url ?? '').replace(/^\//, '');
    const handler = handlers[method];
    if (req.method !== 'POST' || !handler) {
      log.warn(`${req.method} ${req.url}: not a call this plugin serves`);
      return reply(res, 404, { Err: `${req.url} is not a call this plugin serves` });
    }
    let request: unknown;
    try {
      request = body.trim() === '' ? {} : JSON.parse(body);
    } catch {
      return reply(res, 400, { Err: `${method}: the request body is not JSON` });
    }
    try {
      // Handlers are synchronous: one call at a time, in arrival order; the model locks what it shares with CNI plugins.
      const answer = handler(request as never);
      log.debug(`${method} ${body.trim()} -> ${JSON.stringify(answer)}`);
      reply(res, 200, answer);
    } catch (thrown) {
      const err = asCniError(thrown);
      log.error(`${method}: ${err.msg}${err.details ? ` (${err.details})` : ''}`);
      if (err.code === ErrorCode.Internal && thrown instanceof Error && thrown.stack) log.error(thrown.stack);
      reply(res, 500, { Err: err.details ? `${err.msg} (${err.details})` : err.msg });
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });

  mkdirSync(dirname(o.socket), { recursive: true });
  rmSync(o.socket, { force: true });
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new CniError(ErrorCode.IoFailure, `cannot listen on ${o.socket}: ${err.message}`)));
    server.listen(o.socket, () => {
      log.info(`serving the ${o.driver.name} driver and cnm-host-local IPAM on ${o.socket} (data dir ${o.dataDir})`);
      const stop = (signal: string) => {
        log.info(`${signal}: stopping`);
        server.close(() => {
          rmSync(o.socket, { force: true });
          networks.close();
          resolve();
        });
        server.closeAllConnections();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
  });
}
