// Names and random values for the hot path without node:crypto, whose module costs 2-4 ms of start-up under Bun.

/** 64 bits of FNV-1a as 16 hex characters: stable names (veth, tables) from longer identifiers. */
export function shortHash(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ (h1 >>> 16), 0x85ebca6b) >>> 0;
  }
  return hex8(h1) + hex8(h2);
}

function hex8(n: number): string {
  const s = n.toString(16);
  return '00000000'.slice(s.length) + s;
}

/** A node link's name derived from the attachment (prefix + 10 hex), so a DEL after a killed ADD finds it. */
export function endpointLinkName(prefix: string, network: string, containerId: string, ifname: string): string {
  return `${prefix}${shortHash(`${network}/${containerId}/${ifname}`).slice(0, 10)}`;
}

/** Random bytes from Web Crypto (a global in Bun and Node, nothing to load). */
export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

/** n random bytes as hex: Docker-style ids (64 hex characters for 32 bytes). */
export function randomHex(n: number): string {
  return [...randomBytes(n)].map((b) => b.toString(16).padStart(2, '0')).join('');
}
