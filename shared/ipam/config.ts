import { invalidConfig } from '../cni/errors.ts';
import { asObject, optArray, optString, type Json } from '../cni/fields.ts';
import type { Route } from '../cni/result.ts';
import { contains, formatCidr, formatIp, parseCidr, parseIp, type Cidr, type Family } from './ip.ts';

/** One range of a range set: addresses rangeStart..rangeEnd of subnet, never the gateway. */
export interface Range {
  /** Where it was written, for messages: "ipam.ranges[0][1]". */
  field: string;
  subnet: Cidr;
  start: bigint;
  end: bigint;
  gateway?: bigint;
}

/** Ranges that together hand out one address per attachment (one set per address family, usually). */
export interface RangeSet {
  index: number;
  family: Family;
  ranges: Range[];
}

export interface HostLocalConf {
  ranges: RangeSet[];
  routes: Route[];
  /** Overrides where reservations live. */
  dataDir?: string;
  resolvConf?: string;
}

/** Parses the reference host-local's ipam section: `ranges`, or the older top-level `subnet` form. */
export function parseHostLocalConf(ipam: Json): HostLocalConf {
  const rawSets = optArray(ipam, 'ranges', 'ipam.');
  let sets: RangeSet[];
  if (rawSets && rawSets.length > 0) {
    sets = [];
    for (let i = 0; i < rawSets.length; i++) {
      const rawSet = rawSets[i];
      const field = `ipam.ranges[${i}]`;
      if (!Array.isArray(rawSet) || rawSet.length === 0) throw invalidConfig(`${field} must be a non-empty array of ranges`);
      const ranges: Range[] = [];
      for (let j = 0; j < rawSet.length; j++) ranges.push(parseRange(asObject(rawSet[j], `${field}[${j}]`), `${field}[${j}]`));
      const family = ranges[0]!.subnet.family;
      for (const r of ranges) {
        if (r.subnet.family !== family) throw invalidConfig(`${r.field} mixes IPv${r.subnet.family} into an IPv${family} range set`, 'put IPv4 and IPv6 ranges in separate range sets');
      }
      sets.push({ index: i, family, ranges });
    }
  } else if (ipam.subnet !== undefined) {
    sets = [{ index: 0, family: 4, ranges: [parseRange(ipam, 'ipam')] }];
    sets[0]!.family = sets[0]!.ranges[0]!.subnet.family;
  } else {
    throw invalidConfig('ipam has neither "ranges" nor "subnet"', 'give ranges: [[{"subnet": "10.22.0.0/16"}]]');
  }
  const all: Range[] = [];
  for (const s of sets) all.push(...s.ranges);
  rejectOverlaps(all);
  const conf: HostLocalConf = { ranges: sets, routes: parseRoutes(ipam) };
  conf.dataDir = optString(ipam, 'dataDir', 'ipam.');
  conf.resolvConf = optString(ipam, 'resolvConf', 'ipam.');
  return conf;
}

function parseRange(raw: Json, field: string): Range {
  const subnetText = optString(raw, 'subnet', `${field}.`);
  if (!subnetText) throw invalidConfig(`${field}.subnet is missing`);
  const subnet = parseCidr(subnetText);
  if (!subnet) throw invalidConfig(`${field}.subnet ${JSON.stringify(subnetText)} is not a CIDR`, 'write it as address/prefix, e.g. 10.22.0.0/16');
  const bits = subnet.family === 4 ? 32 : 128;
  if (subnet.prefix > bits - 2) throw invalidConfig(`${field}.subnet ${subnetText} is too small to hand out addresses`, `use a prefix of at most /${bits - 2}`);

  const addr = (key: string): bigint | undefined => {
    const text = optString(raw, key, `${field}.`);
    if (text === undefined) return undefined;
    const ip = parseIp(text);
    if (!ip) throw invalidConfig(`${field}.${key} ${JSON.stringify(text)} is not an IP address`);
    if (ip.family !== subnet.family) {
      throw invalidConfig(`${field}.${key} ${text} is IPv${ip.family} but subnet ${formatCidr(subnet)} is IPv${subnet.family}`);
    }
    if (!contains(subnet, ip)) throw invalidConfig(`${field}.${key} ${text} is outside subnet ${formatCidr(subnet)}`);
    return ip.value;
  };

  // The network address is never handed out, nor the IPv4 broadcast address.
  const first = subnet.network + 1n;
  const lastUsable = subnet.family === 4 ? subnet.last - 1n : subnet.last;
  const start = addr('rangeStart') ?? first;
  const end = addr('rangeEnd') ?? lastUsable;
  for (const [key, v] of [['rangeStart', start], ['rangeEnd', end]] as const) {
    if (v < first || v > lastUsable) throw invalidConfig(`${field}.${key} ${formatIp(subnet.family, v)} is the network or broadcast address of ${formatCidr(subnet)}`);
  }
  if (start > end) throw invalidConfig(`${field}.rangeStart ${formatIp(subnet.family, start)} is after rangeEnd ${formatIp(subnet.family, end)}`);
  const gateway = addr('gateway') ?? first;
  return { field, subnet, start, end, gateway };
}

function rejectOverlaps(ranges: Range[]): void {
  for (let i = 0; i < ranges.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = ranges[i]!;
      const b = ranges[j]!;
      if (a.subnet.family === b.subnet.family && a.start <= b.end && b.start <= a.end) {
        throw invalidConfig(`${a.field} overlaps ${b.field}`, 'ranges of one ipam section may not share addresses');
      }
    }
  }
}

function parseRoutes(ipam: Json): Route[] {
  const raw = optArray(ipam, 'routes', 'ipam.') ?? [];
  const routes: Route[] = [];
  for (let i = 0; i < raw.length; i++) {
    const o = asObject(raw[i], `ipam.routes[${i}]`);
    const dst = optString(o, 'dst', `ipam.routes[${i}].`);
    if (!dst || !parseCidr(dst)) throw invalidConfig(`ipam.routes[${i}].dst ${JSON.stringify(dst ?? '')} is not a CIDR`);
    const gw = optString(o, 'gw', `ipam.routes[${i}].`);
    if (gw !== undefined && !parseIp(gw)) throw invalidConfig(`ipam.routes[${i}].gw ${JSON.stringify(gw)} is not an IP address`);
    routes.push(gw ? { dst, gw } : { dst });
  }
  return routes;
}

/** Size of a range set, minus its gateways: how many attachments it can serve. */
export function capacity(set: RangeSet): bigint {
  return set.ranges.reduce((n, r) => n + (r.end - r.start + 1n) - (r.gateway !== undefined && r.gateway >= r.start && r.gateway <= r.end ? 1n : 0n), 0n);
}

export function describeSet(set: RangeSet): string {
  return set.ranges.map((r) => `${formatCidr(r.subnet)} ${formatIp(r.subnet.family, r.start)}-${formatIp(r.subnet.family, r.end)}`).join(', ');
}
