import { readJson } from '../cnm/store.ts';

/** Where service discovery keeps what it owns in a store (the VIPs of each network). */
export const discoveryDir = (dataDir: string) => `${dataDir}/discovery`;
export const vipsPath = (dataDir: string, network: string) => `${discoveryDir(dataDir)}/${network}.vips.json`;

/** Alias to its VIP addresses (one per family the network has). */
export type Vips = Record<string, string[]>;

export function vipsOf(dataDir: string, network: string): Vips {
  return readJson<Vips>(vipsPath(dataDir, network)) ?? {};
}
