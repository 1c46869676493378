import { CniError, ErrorCode } from './errors.ts';
import { atLeast, type CniVersion } from './version.ts';

/** DNS settings, the same in every version. */
export interface Dns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface Interface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface IpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface Route {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

/** The result shape of spec 1.1.0, which every plugin works in; other versions are converted at the edge. */
export interface Result {
  cniVersion: string;
  interfaces?: Interface[];
  ips?: IpConfig[];
  routes?: Route[];
  dns?: Dns;
}

/** 0.3.x / 0.4.0 shape: ips carry a version field. */
interface IpConfig03 extends IpConfig {
  version: '4' | '6';
}

/** 0.1.0 / 0.2.0 shape. */
interface IpBlock02 {
  ip: string;
  gateway?: string;
  routes?: Array<{ dst: string; gw?: string }>;
}

export interface Result02 {
  cniVersion: string;
  ip4?: IpBlock02;
  ip6?: IpBlock02;
  dns?: Dns;
}

/** A result's addresses without their prefix lengths ("10.1.0.5", not "10.1.0.5/24"). A loop: see convertResult. */
export function plainAddresses(ips: IpConfig[]): string[] {
  const out: string[] = [];
  for (const { address } of ips) {
    const slash = address.indexOf('/');
    out.push(slash < 0 ? address : address.slice(0, slash));
  }
  return out;
}

export function isIPv6(addr: string): boolean {
  return addr.includes(':');
}

/** Writes a 1.1.0 result in the version the config asked for. */
export function convertResult(result: Result, to: CniVersion): Record<string, unknown> {
  if (!atLeast(to, '0.3.0')) return toResult02(result, to);
  const keep1_1 = atLeast(to, '1.1.0');
  const out: Record<string, unknown> = { cniVersion: to };
  // Loops, not map: a plugin's first Array.prototype.map or filter costs JavaScriptCore a compile (30-90 µs each).
  if (result.interfaces?.length) {
    const interfaces: unknown[] = (out.interfaces = []);
    for (const i of result.interfaces) interfaces.push(keep1_1 ? { ...i } : pick(i, ['name', 'mac', 'sandbox']));
  }
  if (result.ips?.length) {
    const v1 = atLeast(to, '1.0.0');
    const ips: unknown[] = (out.ips = []);
    for (const ip of result.ips) ips.push(v1 ? { ...ip } : ({ version: isIPv6(ip.address) ? '6' : '4', ...ip } satisfies IpConfig03));
  }
  if (result.routes?.length) {
    const routes: unknown[] = (out.routes = []);
    for (const r of result.routes) routes.push(keep1_1 ? { ...r } : pick(r, ['dst', 'gw']));
  }
  if (result.dns && Object.keys(result.dns).length) out.dns = result.dns;
  return out;
}

/**
 * 0.1.0 and 0.2.0 hold one address per family: the first of each is kept and the rest dropped, as libcni's own
 * conversion does, so a result with several (the host driver's, on a node with many links) still reaches an old
 * runtime.
 */
function toResult02(result: Result, to: CniVersion): Record<string, unknown> {
  const out: Result02 = { cniVersion: to };
  for (const ip of result.ips ?? []) {
    const key = isIPv6(ip.address) ? 'ip6' : 'ip4';
    if (!out[key]) out[key] = { ip: ip.address, ...(ip.gateway ? { gateway: ip.gateway } : {}) };
  }
  for (const route of result.routes ?? []) {
    const block = isIPv6(route.dst) ? out.ip6 : out.ip4;
    if (block) (block.routes ??= []).push(pick(route, ['dst', 'gw']));
  }
  if (result.dns && Object.keys(result.dns).length) out.dns = result.dns;
  return out as unknown as Record<string, unknown>;
}

/** Reads a result of any version (a prevResult, or an IPAM plugin's answer) into the 1.1.0 shape. */
export function parseResult(raw: unknown): Result {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(ErrorCode.DecodeFailure, 'result is not a JSON object');
  }
  const r = raw as Record<string, unknown>;
  const cniVersion = typeof r.cniVersion === 'string' ? r.cniVersion : '0.1.0';
  if (!atLeast(cniVersion, '0.3.0')) return fromResult02(r as unknown as Result02);
  const out: Result = { cniVersion };
  if (Array.isArray(r.interfaces)) out.interfaces = (r.interfaces as Interface[]).map((i) => ({ ...i }));
  if (Array.isArray(r.ips)) {
    out.ips = (r.ips as IpConfig03[]).map(({ version: _v, ...ip }) => {
      if (typeof ip.address !== 'string') throw new CniError(ErrorCode.DecodeFailure, 'result ips[].address is missing');
      return ip;
    });
  }
  if (Array.isArray(r.routes)) out.routes = (r.routes as Route[]).map((x) => ({ ...x }));
  if (r.dns && typeof r.dns === 'object') out.dns = r.dns as Dns;
  return out;
}

function fromResult02(r: Result02): Result {
  const out: Result = { cniVersion: r.cniVersion ?? '0.2.0', ips: [], routes: [] };
  for (const block of [r.ip4, r.ip6]) {
    if (!block) continue;
    if (typeof block.ip !== 'string') throw new CniError(ErrorCode.DecodeFailure, 'result ip4/ip6 has no "ip"');
    out.ips!.push({ address: block.ip, ...(block.gateway ? { gateway: block.gateway } : {}) });
    for (const route of block.routes ?? []) out.routes!.push({ ...route });
  }
  if (r.dns) out.dns = r.dns;
  return out;
}

function pick<T extends object, K extends keyof T>(obj: T, keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>;
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}
