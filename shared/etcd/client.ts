// An etcd v3 client over the JSON gateway on node:http(s): a first range costs one HTTP round trip and no
// proto parsing (the npm etcd3 package parses its .proto at require time; README, "The etcd client").
import type { ClientRequest, IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import {
  decodeKv,
  LineSplitter,
  rangeBody,
  txnBody,
  watchBody,
  type Compare,
  type Kv,
  type Op,
  type WireEvent,
  type WireKeepAliveResponse,
  type WireLeaseGrantResponse,
  type WireRangeResponse,
  type WireTxnResponse,
  type WireWatchResponse,
  b64,
  prefixEnd,
} from './wire.ts';

export interface EtcdTls {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface EtcdOptions {
  endpoints: string[];
  tls?: EtcdTls;
  /** Per request; a watch has none. */
  timeoutMs?: number;
}

/** etcd could not be reached, or answered with an error. */
export class EtcdError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

export interface RangeResult {
  kvs: Kv[];
  revision: number;
}

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** The kvs of each get op, in order. */
  gets: Kv[][];
}

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: Kv;
  prev?: Kv;
}

export interface WatchHandlers {
  /** Events of one revision batch, and the revision they bring the watcher up to. */
  onEvents(events: WatchEvent[], revision: number): void;
  /** The start revision was compacted away: re-list, then watch again from the list's revision + 1. */
  onCompacted(compactRevision: number): void;
  /** The stream ended or failed; the watcher reconnects by itself only if the caller does. */
  onClose(err: Error | undefined): void;
}

export interface Watch {
  cancel(): void;
}

interface Transport {
  request: (url: URL, opts: object, cb: (res: IncomingMessage) => void) => ClientRequest;
  agentOpts: object;
}

export class EtcdClient {
  private readonly urls: URL[];
  private current = 0;
  private transport: Transport | undefined;

  constructor(private readonly opts: EtcdOptions) {
    if (opts.endpoints.length === 0) throw new EtcdError('no etcd endpoints');
    this.urls = opts.endpoints.map((e) => new URL(e));
  }

  /** node:https only when an endpoint needs it: node:http alone is cheaper to load. */
  private transportFor(url: URL): Transport {
    if (this.transport) return this.transport;
    if (url.protocol === 'https:') {
      const tls = this.opts.tls ?? {};
      const read = (p?: string) => (p ? readFileSync(p) : undefined);
      this.transport = { request: require('node:https').request, agentOpts: { ca: read(tls.ca), cert: read(tls.cert), key: read(tls.key) } };
    } else {
      this.transport = { request: require('node:http').request, agentOpts: {} };
    }
    return this.transport;
  }

  /** One POST; on a connection failure the next endpoint is tried, each once. */
  private async post<T>(path: string, body: unknown): Promise<T> {
    let lastErr: Error | undefined;
    for (let i = 0; i < this.urls.length; i++) {
      const url = this.urls[(this.current + i) % this.urls.length]!;
      try {
        const r = await this.postTo<T>(url, path, body);
        this.current = (this.current + i) % this.urls.length;
        return r;
      } catch (err) {
        lastErr = err as Error;
        if (err instanceof EtcdError && err.status !== undefined && err.status < 500) throw err;
      }
    }
    throw lastErr ?? new EtcdError('etcd unreachable');
  }

  private postTo<T>(base: URL, path: string, body: unknown): Promise<T> {
    const t = this.transportFor(base);
    const payload = JSON.stringify(body);
    const url = new URL(path, base);
    return new Promise<T>((resolve, reject) => {
      const req = t.request(
        url,
        { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }, timeout: this.opts.timeoutMs ?? 5000, ...t.agentOpts },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 300) {
              reject(new EtcdError(`etcd ${url.origin}${path}: HTTP ${res.statusCode}: ${text.trim().slice(0, 300)}`, res.statusCode));
              return;
            }
            try {
              resolve(JSON.parse(text) as T);
            } catch {
              reject(new EtcdError(`etcd ${url.origin}${path}: not JSON: ${text.slice(0, 200)}`));
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new EtcdError(`etcd ${url.origin}${path}: no answer in ${this.opts.timeoutMs ?? 5000} ms`)));
      req.on('error', (err) => reject(err instanceof EtcdError ? err : new EtcdError(`etcd ${url.origin}: ${err.message}`)));
      req.end(payload);
    });
  }

  async get(key: string): Promise<Kv | undefined> {
    return (await this.range(key)).kvs[0];
  }

  async range(key: string, opts: { prefix?: boolean; revision?: number } = {}): Promise<RangeResult> {
    const r = await this.post<WireRangeResponse>('/v3/kv/range', rangeBody(key, opts));
    return { kvs: (r.kvs ?? []).map(decodeKv), revision: Number(r.header?.revision ?? 0) };
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    const r = await this.post<{ header?: { revision?: string } }>('/v3/kv/put', { key: b64(key), value: b64(value), ...(lease && lease !== '0' ? { lease } : {}) });
    return Number(r.header?.revision ?? 0);
  }

  async delete(key: string, opts: { prefix?: boolean } = {}): Promise<number> {
    const r = await this.post<{ deleted?: string }>('/v3/kv/deleterange', { key: b64(key), ...(opts.prefix ? { range_end: prefixEnd(key) } : {}) });
    return Number(r.deleted ?? 0);
  }

  async txn(compare: Compare[], success: Op[], failure: Op[] = []): Promise<TxnResult> {
    const r = await this.post<WireTxnResponse>('/v3/kv/txn', txnBody(compare, success, failure));
    return {
      succeeded: r.succeeded === true,
      revision: Number(r.header?.revision ?? 0),
      gets: (r.responses ?? []).filter((x) => x.response_range).map((x) => (x.response_range!.kvs ?? []).map(decodeKv)),
    };
  }

  async leaseGrant(ttlSeconds: number): Promise<{ id: string; ttl: number }> {
    const r = await this.post<WireLeaseGrantResponse>('/v3/lease/grant', { TTL: String(ttlSeconds) });
    if (!r.ID || r.error) throw new EtcdError(`lease grant: ${r.error ?? 'no ID'}`);
    return { id: r.ID, ttl: Number(r.TTL ?? ttlSeconds) };
  }

  /** Renews a lease once; returns its remaining TTL, 0 when the lease no longer exists. */
  async leaseKeepAlive(id: string): Promise<number> {
    const r = await this.post<WireKeepAliveResponse>('/v3/lease/keepalive', { ID: id });
    if (r.error) throw new EtcdError(`lease keepalive: ${r.error.message ?? 'failed'}`);
    return Number(r.result?.TTL ?? 0);
  }

  async leaseRevoke(id: string): Promise<void> {
    try {
      await this.post('/v3/lease/revoke', { ID: id });
    } catch (err) {
      if (!(err instanceof EtcdError && /not found/.test(err.message))) throw err;
    }
  }

  /** Watches every key under prefix from startRevision on, over one streaming request. */
  watch(prefix: string, startRevision: number, h: WatchHandlers): Watch {
    const base = this.urls[this.current]!;
    this.current = (this.current + 1) % this.urls.length;
    const t = this.transportFor(base);
    const url = new URL('/v3/watch', base);
    const split = new LineSplitter();
    let closed = false;
    const close = (err: Error | undefined) => {
      if (closed) return;
      closed = true;
      req.destroy();
      h.onClose(err);
    };
    const req = t.request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, ...t.agentOpts }, (res) => {
      if ((res.statusCode ?? 500) >= 300) {
        close(new EtcdError(`etcd watch: HTTP ${res.statusCode}`, res.statusCode));
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        for (const line of split.feed(chunk)) {
          if (closed) return;
          let msg: WireWatchResponse;
          try {
            msg = JSON.parse(line) as WireWatchResponse;
          } catch {
            close(new EtcdError(`etcd watch: not JSON: ${line.slice(0, 200)}`));
            return;
          }
          if (msg.error) {
            close(new EtcdError(`etcd watch: ${msg.error.message ?? 'error'}`));
            return;
          }
          const result = msg.result ?? {};
          if (result.compact_revision && result.compact_revision !== '0') {
            closed = true;
            req.destroy();
            h.onCompacted(Number(result.compact_revision));
            return;
          }
          if (result.canceled) {
            close(new EtcdError(`etcd watch canceled: ${result.cancel_reason ?? ''}`));
            return;
          }
          const events = (result.events ?? []).map(decodeEvent);
          // A catch-up arrives in batches stamped with the store's current revision, so only an event's own
          // revision says how far the watcher got; an empty answer (created, progress) covers the header's.
          const revision = events.length ? Math.max(...events.map((e) => e.kv.modRevision)) : Number(result.header?.revision ?? 0);
          h.onEvents(events, revision);
        }
      });
      res.on('end', () => close(new EtcdError('etcd watch stream ended')));
      res.on('error', (err) => close(err));
    });
    req.on('error', (err) => close(new EtcdError(`etcd watch ${base.origin}: ${err.message}`)));
    // The request body stays open: etcd's gateway reads create requests from it for as long as it lasts.
    req.end(JSON.stringify(watchBody(prefix, startRevision)));
    return { cancel: () => close(undefined) };
  }
}

function decodeEvent(e: WireEvent): WatchEvent {
  const ev: WatchEvent = { type: e.type === 'DELETE' ? 'delete' : 'put', kv: decodeKv(e.kv ?? {}) };
  if (e.prev_kv) ev.prev = decodeKv(e.prev_kv);
  return ev;
}
