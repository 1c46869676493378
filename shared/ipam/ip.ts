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

/** Dotted-quad IPv4 as a number: four decimal octets (0-255, no leading zeros), or undefined. */
function parseIpv4(text: string): number | undefined {
  let value = 0;
  let octet = -1;
  let digits = 0;
  let dots = 0;
  // One step past the end, read as a '.', closes the last octet.
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || octet > 255) return undefined;
      value = value * 256 + octet;
      if (++dots > 4) return undefined;
      octet = -1;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (octet === 0) return undefined;
      octet = (octet < 0 ? 0 : octet * 10) + c - 48;
      if (++digits > 3) return undefined;
    } else return undefined;
  }
  return dots === 4 ? value : undefined;
}

/** One to three ASCII digits as a number, or undefined. */
function smallDecimal(text: string): number | undefined {
  if (text.length < 1 || text.length > 3) return undefined;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    n = n * 10 + c - 48;
  }
  return n;
}

export function parseIp(text: string): Ip | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 4, value: BigInt(v4) };
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
  const prefix = smallDecimal(prefixText);
  if (!ip || prefix === undefined) return undefined;
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
