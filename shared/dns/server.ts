// `cnm dns`: one process per node (per run dir) answering on the gateway of every network with service
// discovery. Records are rebuilt from the stores on every change (inotify, plus a slow poll as a safety net)
// and swapped in whole: sockets stay open, no query is dropped. Gateways are bound as networks appear and
// unbound as they go; the server stops itself when no endpoint needs it.
import { createSocket, type Socket } from 'node:dgram';
import { watch, type FSWatcher } from 'node:fs';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import type { Log } from '../cni/log.ts';
import { listEndpoints, listNetworks } from '../cnm/inventory.ts';
import { claimPidFile, registeredStores, releasePidFile, storesDir } from '../discovery/server-control.ts';
import { listDir, removeFile } from '../cnm/store.ts';
import { answer, errorReply, RCODE } from './answer.ts';
import { forward, systemUpstreams } from './forward.ts';
import { buildZone, scopeOf, type StoreRecords, type Zone } from './zone.ts';
import { discoveryDir } from '../discovery/vip-state.ts';
import { remoteEndpoints } from '../discovery/remote.ts';

const POLL_MS = 2000;
const IDLE_GRACE_MS = 1000;

interface Listener {
  udp: Socket;
  tcp: Server;
}

export class DnsServer {
  private zone: Zone = { networks: [], byGateway: new Map(), podNetworks: new Map() };
  private readonly listeners = new Map<string, Listener>();
  private readonly watchers = new Map<string, FSWatcher>();
  private reloadTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private stopping = false;
  private resolvConf = systemUpstreams();

  constructor(
    private readonly runDir: string,
    private readonly log: Log,
    private readonly onExit: (code: number) => void,
  ) {}

  start(): boolean {
    if (!claimPidFile(this.runDir)) {
      this.log.warn(`another DNS server holds ${this.runDir}/pid: leaving it to that one`);
      return false;
    }
    this.log.warn(`serving the networks of ${this.runDir} (pid ${process.pid})`);
    this.reload();
    this.poller = setInterval(() => {
      this.resolvConf = systemUpstreams();
      this.reload();
    }, POLL_MS);
    return true;
  }

  /** SIGTERM: close every socket and watcher, give the PID file up. */
  stop(code = 0): void {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.poller);
    clearTimeout(this.reloadTimer);
    clearTimeout(this.idleTimer);
    for (const w of this.watchers.values()) w.close();
    for (const [addr, l] of this.listeners) this.unbind(addr, l);
    releasePidFile(this.runDir);
    this.log.warn('stopped');
    this.onExit(code);
  }

  private scheduleReload(): void {
    if (this.reloadTimer || this.stopping) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = undefined;
      this.reload();
    }, 5);
  }

  private readStores(): StoreRecords[] {
    return registeredStores(this.runDir).map((dataDir) => ({ dataDir, networks: listNetworks(dataDir), endpoints: listEndpoints(dataDir), remote: remoteEndpoints(dataDir) }));
  }

  reload(): void {
    if (this.stopping) return;
    let stores: StoreRecords[];
    try {
      stores = this.readStores();
      this.zone = buildZone(stores, this.runDir);
    } catch (err) {
      this.log.error(`reading the stores: ${(err as Error).message}`);
      return;
    }
    this.syncWatchers(stores.map((s) => s.dataDir));
    this.syncListeners();
    const names = this.zone.networks.reduce((n, z) => n + z.names.size, 0);
    this.log.debug(`${this.zone.networks.length} network(s), ${names} name(s), listening on ${[...this.listeners.keys()].join(', ') || 'nothing'}`);
    this.checkIdle();
  }

  private hasEndpoints(): boolean {
    return this.zone.podNetworks.size > 0;
  }

  /** No endpoint needs the server: after a grace period, give the PID file up, look once more, and go. */
  private checkIdle(): void {
    if (this.hasEndpoints()) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
      return;
    }
    this.idleTimer ??= setTimeout(() => {
      this.idleTimer = undefined;
      // An ADD writes its record before it looks for the PID file: once the file is gone, either the
      // look below sees the new record or that ADD starts a server of its own.
      releasePidFile(this.runDir);
      this.zone = buildZone(this.readStores(), this.runDir);
      if (this.hasEndpoints()) {
        if (claimPidFile(this.runDir)) return this.reload();
        this.log.warn('a new server took over');
        return this.stop(0);
      }
      for (const name of listDir(storesDir(this.runDir))) removeFile(`${storesDir(this.runDir)}/${name}`);
      this.log.warn('no endpoint needs a DNS server any more');
      this.stop(0);
    }, IDLE_GRACE_MS);
  }

  private syncWatchers(dataDirs: string[]): void {
    const want = new Set([storesDir(this.runDir)]);
    for (const d of dataDirs) {
      want.add(`${d}/networks`);
      want.add(`${d}/endpoints`);
      want.add(discoveryDir(d));
      for (const net of listDir(`${d}/endpoints`)) want.add(`${d}/endpoints/${net}`);
    }
    for (const [path, w] of this.watchers) {
      if (!want.has(path)) {
        w.close();
        this.watchers.delete(path);
      }
    }
    for (const path of want) {
      if (this.watchers.has(path)) continue;
      try {
        const w = watch(path, () => this.scheduleReload());
        w.on('error', () => {
          w.close();
          this.watchers.delete(path);
        });
        this.watchers.set(path, w);
      } catch {
        // not there yet: the poll finds it
      }
    }
  }

  private syncListeners(): void {
    const want = new Set(this.zone.byGateway.keys());
    for (const [addr, l] of this.listeners) if (!want.has(addr)) this.unbind(addr, l);
    for (const addr of want) if (!this.listeners.has(addr)) this.bind(addr);
  }

  private unbind(addr: string, l: Listener): void {
    this.listeners.delete(addr);
    l.udp.close();
    l.tcp.close();
    this.log.debug(`unbound ${addr}`);
  }

  private bind(addr: string): void {
    const udp = createSocket({ type: addr.includes(':') ? 'udp6' : 'udp4', reuseAddr: true });
    const tcp = createServer((conn) => this.serveTcp(addr, conn));
    const l: Listener = { udp, tcp };
    this.listeners.set(addr, l);
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      // The gateway is not on its bridge yet (or a v6 one is still tentative): the next poll tries again.
      this.log.debug(`cannot listen on ${addr}:53 yet: ${err.message}`);
      if (this.listeners.get(addr) === l) this.listeners.delete(addr);
      udp.close();
      tcp.close();
    };
    udp.on('error', fail);
    tcp.on('error', fail);
    udp.on('message', (msg, rinfo) => {
      const send = (reply: Buffer | undefined) => {
        if (reply && !this.stopping && this.listeners.get(addr) === l) udp.send(reply, rinfo.port, rinfo.address);
      };
      const reply = this.handle(msg, addr, rinfo.address, false);
      if (reply instanceof Promise) void reply.then(send);
      else send(reply);
    });
    udp.bind(53, addr, () => this.log.debug(`listening on ${addr}:53/udp`));
    tcp.listen(53, addr, () => this.log.debug(`listening on ${addr}:53/tcp`));
  }

  private serveTcp(addr: string, conn: TcpSocket): void {
    let buf = Buffer.alloc(0);
    conn.setTimeout(10_000, () => conn.destroy());
    conn.on('error', () => conn.destroy());
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        void Promise.resolve(this.handle(Buffer.from(msg), addr, conn.remoteAddress ?? '', true)).then((reply) => {
          if (!reply || conn.destroyed) return;
          const len = Buffer.alloc(2);
          len.writeUInt16BE(reply.length);
          conn.write(Buffer.concat([len, reply]));
        });
      }
    });
  }

  /**
   * One query: ours answered from the zone in scope, at once; the rest forwarded (a promise); undefined drops
   * it (not DNS).
   */
  handle(query: Buffer, gateway: string, source: string, tcp: boolean): Buffer | undefined | Promise<Buffer | undefined> {
    const scope = scopeOf(this.zone, gateway, source.replace(/^::ffff:/, ''));
    const reply = answer(query, scope, tcp);
    if (reply.kind === 'answer') return reply.message;
    if (query.length < 12) return undefined;
    return this.forwarded(query, scope, tcp);
  }

  private async forwarded(query: Buffer, scope: ReturnType<typeof scopeOf>, tcp: boolean): Promise<Buffer | undefined> {
    const own = new Set(this.zone.byGateway.keys());
    const configured = scope.find((n) => n.upstreams.length > 0)?.upstreams;
    const upstreams = (configured ?? this.resolvConf).filter((u) => !own.has(u.address));
    const forwarded = await forward(upstreams, query, tcp, (msg) => this.log.debug(`upstream: ${msg}`));
    return forwarded ?? errorReply(query, RCODE.SERVFAIL);
  }
}
