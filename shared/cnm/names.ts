// Names and random values for the hot path without node:crypto, whose module costs 2-4 ms of start-up under Bun,
// and without the Math object, which costs ~65 µs to make at its first touch (measured) and is needed nowhere else
// on a plugin's path.
import { libc } from '../kernel/libc.ts';

const HEX = '0123456789abcdef';

/** The low 32 bits of a * b, as Math.imul gives them: both partial products stay below 2^53. */
function mul32(a: number, b: number): number {
  return (((((a >>> 16) * b) & 0xffff) << 16) + (a & 0xffff) * b) | 0;
}

/** 64 bits of FNV-1a as 16 hex characters: stable names (veth, tables) from longer identifiers. */
export function shortHash(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = mul32(h1 ^ c, 0x01000193) >>> 0;
    h2 = mul32(h2 ^ c, 0x01000193) >>> 0;
    h2 = mul32(h2 ^ (h1 >>> 16), 0x85ebca6b) >>> 0;
  }
  return hex8(h1) + hex8(h2);
}

function hex8(n: number): string {
  return hexByte(n >>> 24) + hexByte((n >>> 16) & 255) + hexByte((n >>> 8) & 255) + hexByte(n & 255);
}

/** A byte as two lower-case hex digits. */
export function hexByte(b: number): string {
  return HEX[b >> 4]! + HEX[b & 15]!;
}

/** A node link's name derived from the attachment (prefix + 10 hex), so a DEL after a killed ADD finds it. */
export function endpointLinkName(prefix: string, network: string, containerId: string, ifname: string): string {
  return `${prefix}${shortHash(`${network}/${containerId}/${ifname}`).slice(0, 10)}`;
}

/** Random bytes: getrandom(2) through libc under Bun (Web Crypto's first call costs ~0.1 ms), else Web Crypto. */
export function randomBytes(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  const c = libc();
  if (c && Number(c.libc.getrandom(c.ptr(bytes), n, 0)) === n) return bytes;
  return globalThis.crypto.getRandomValues(bytes);
}

/** n random bytes as hex: Docker-style ids (64 hex characters for 32 bytes). */
export function randomHex(n: number): string {
  let hex = '';
  for (const b of randomBytes(n)) hex += hexByte(b);
  return hex;
}
