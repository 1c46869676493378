import type * as IpAddress from 'ip-address';

/**
 * Address arithmetic for IPv4 and IPv6 alike, on BigInt values. ip-address parses and validates IPv6 text;
 * it is loaded only when IPv6 text is read, because evaluating it costs ~3.5 ms of every invocation's
 * start-up. IPv4 text and all formatting are plain code.
 */
export type Family = 4 | 6;

export interface Ip {
  family: Family;
  value: bigint;
}

export interface Cidr {
  family: Family;
  /** The network address (host bits cleared). */
  network: bigint;
  /** The last address of the subnet. */
  last: bigint;
  prefix: number;
}

let ipAddress: typeof IpAddress | undefined;
const lib = (): typeof IpAddress => (ipAddress ??= require('ip-address') as typeof IpAddress);

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

export function parseIp(text: string): Ip | undefined {
  if (IPV4.test(text)) {
    const [a, b, c, d] = text.split('.').map(Number) as [number, number, number, number];
    return { family: 4, value: BigInt(((a << 24) >>> 0) + (b << 16) + (c << 8) + d) };
  }
  if (!text.includes(':') || text.includes('/') || text.includes('%')) return undefined;
  const { Address6 } = lib();
  if (!Address6.isValid(text)) return undefined;
  const a = new Address6(text);
  return a.is4() ? undefined : { family: 6, value: a.bigInt() };
}

export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  const bits = ip.family === 4 ? 32 : 128;
  if (prefix > bits) return undefined;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  const network = ip.value & ~hostMask;
  return { family: ip.family, network, last: network | hostMask, prefix };
}

/** RFC 5952 text: lower-case hex, no leading zeros, the longest run (2+) of zero groups as "::". */
function formatIpv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

export function formatIp(family: Family, value: bigint): string {
  if (family === 6) return formatIpv6(value);
  const n = Number(value);
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.family, c.network)}/${c.prefix}`;
}

export function contains(c: Cidr, ip: Ip): boolean {
  return c.family === ip.family && ip.value >= c.network && ip.value <= c.last;
}

export function familyOf(text: string): Family {
  return text.includes(':') ? 6 : 4;
}

/** Canonical text of an address ("fd00:0::1" and "fd00::1" are one address), or undefined when it is not one. */
export function canonicalIp(text: string): string | undefined {
  const ip = parseIp(text);
  return ip && formatIp(ip.family, ip.value);
}
