import { Address4, Address6 } from 'ip-address';

/** Address arithmetic for IPv4 and IPv6 alike, on ip-address's parsing and BigInt values. */
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

export function parseIp(text: string): Ip | undefined {
  if (text.includes('/')) return undefined;
  if (Address4.isValid(text)) return { family: 4, value: new Address4(text).bigInt() };
  if (Address6.isValid(text)) {
    const a = new Address6(text);
    return a.is4() ? undefined : { family: 6, value: a.bigInt() };
  }
  return undefined;
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

export function formatIp(family: Family, value: bigint): string {
  return family === 4 ? Address4.fromBigInt(value).correctForm() : Address6.fromBigInt(value).correctForm();
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
