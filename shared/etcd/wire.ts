// etcd v3's JSON gateway (grpc-gateway over the KV, Lease and Watch services), as types and pure body builders.
// Keys and values travel base64; int64 fields are JSON strings; proto3 omits fields at their default (a failed
// txn has no `succeeded`, an empty range no `kvs`). Lease IDs exceed 2^53, so they stay strings end to end.

export function b64(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64');
}

export function unb64(s: string | undefined): string {
  return s ? Buffer.from(s, 'base64').toString('utf8') : '';
}

/** The first key after every key starting with prefix: a range [prefix, prefixEnd) is "everything under prefix". */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) return Buffer.concat([bytes.subarray(0, i), Buffer.from([bytes[i]! + 1])]).toString('base64');
  }
  return Buffer.from([0]).toString('base64');
}

/** A key-value as the gateway sends it. */
export interface WireKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

/** A key-value decoded: strings for key and value, numbers for revisions (they stay far below 2^53). */
export interface Kv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** "0" when the key has no lease. */
  lease: string;
}

export function decodeKv(w: WireKv): Kv {
  return {
    key: unb64(w.key),
    value: unb64(w.value),
    createRevision: Number(w.create_revision ?? 0),
    modRevision: Number(w.mod_revision ?? 0),
    lease: w.lease ?? '0',
  };
}

export interface ResponseHeader {
  revision?: string;
}

export interface WireRangeResponse {
  header?: ResponseHeader;
  kvs?: WireKv[];
  count?: string;
}

export interface WireRangeRequest {
  key: string;
  range_end?: string;
  revision?: string;
  keys_only?: boolean;
  count_only?: boolean;
  limit?: string;
}

export interface WirePutRequest {
  key: string;
  value: string;
  lease?: string;
}

export interface WireDeleteRequest {
  key: string;
  range_end?: string;
}

export type WireCompare =
  | { key: string; target: 'CREATE'; result: 'EQUAL' | 'NOT_EQUAL' | 'GREATER' | 'LESS'; create_revision: string }
  | { key: string; target: 'MOD'; result: 'EQUAL' | 'NOT_EQUAL' | 'GREATER' | 'LESS'; mod_revision: string }
  | { key: string; target: 'VALUE'; result: 'EQUAL' | 'NOT_EQUAL'; value: string }
  | { key: string; target: 'LEASE'; result: 'EQUAL' | 'NOT_EQUAL'; lease: string };

export type WireOp = { request_put: WirePutRequest } | { request_delete_range: WireDeleteRequest } | { request_range: WireRangeRequest };

export interface WireTxnRequest {
  compare: WireCompare[];
  success: WireOp[];
  failure: WireOp[];
}

export interface WireTxnResponse {
  header?: ResponseHeader;
  succeeded?: boolean;
  responses?: Array<{ response_range?: WireRangeResponse }>;
}

export interface WireLeaseGrantResponse {
  ID?: string;
  TTL?: string;
  error?: string;
}

export interface WireKeepAliveResponse {
  result?: { ID?: string; TTL?: string };
  error?: { message?: string };
}

export interface WireWatchCreate {
  create_request: { key: string; range_end?: string; start_revision?: string; progress_notify?: boolean; prev_kv?: boolean };
}

export interface WireEvent {
  type?: 'PUT' | 'DELETE';
  kv?: WireKv;
  prev_kv?: WireKv;
}

export interface WireWatchResponse {
  result?: {
    header?: ResponseHeader;
    watch_id?: string;
    created?: boolean;
    canceled?: boolean;
    compact_revision?: string;
    cancel_reason?: string;
    events?: WireEvent[];
  };
  error?: { message?: string; code?: number };
}

/** An op of a transaction, in decoded terms. */
export type Op = { put: string; value: string; lease?: string } | { delete: string } | { get: string };

export type Compare =
  | { key: string; createRevision: number }
  | { key: string; value: string }
  | { key: string; modRevision: number };

function compareWire(c: Compare): WireCompare {
  if ('value' in c) return { key: b64(c.key), target: 'VALUE', result: 'EQUAL', value: b64(c.value) };
  if ('createRevision' in c) return { key: b64(c.key), target: 'CREATE', result: 'EQUAL', create_revision: String(c.createRevision) };
  return { key: b64(c.key), target: 'MOD', result: 'EQUAL', mod_revision: String(c.modRevision) };
}

function opWire(op: Op): WireOp {
  if ('put' in op) return { request_put: { key: b64(op.put), value: b64(op.value), ...(op.lease && op.lease !== '0' ? { lease: op.lease } : {}) } };
  if ('delete' in op) return { request_delete_range: { key: b64(op.delete) } };
  return { request_range: { key: b64(op.get) } };
}

/** A transaction body: every compare holds (all EQUAL) → success ops, else failure ops. */
export function txnBody(compare: Compare[], success: Op[], failure: Op[] = []): WireTxnRequest {
  return { compare: compare.map(compareWire), success: success.map(opWire), failure: failure.map(opWire) };
}

export function rangeBody(key: string, opts: { prefix?: boolean; revision?: number; limit?: number } = {}): WireRangeRequest {
  const body: WireRangeRequest = { key: b64(key) };
  if (opts.prefix) body.range_end = prefixEnd(key);
  if (opts.revision) body.revision = String(opts.revision);
  if (opts.limit) body.limit = String(opts.limit);
  return body;
}

export function watchBody(prefix: string, startRevision: number): WireWatchCreate {
  return { create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(startRevision), progress_notify: true, prev_kv: true } };
}

/**
 * Splits a chunked stream of newline-delimited JSON into whole lines; feed() returns the complete lines and keeps
 * the tail for the next chunk.
 */
export class LineSplitter {
  private tail = '';
  feed(chunk: string): string[] {
    const parts = (this.tail + chunk).split('\n');
    this.tail = parts.pop() ?? '';
    return parts.filter((l) => l.trim() !== '');
  }
}
