import { existsSync, readFileSync, readlinkSync } from 'node:fs';

/** Facts about the node's links read from /sys: no process needed. */
const sys = (name: string, file = '') => `/sys/class/net/${name}${file ? `/${file}` : ''}`;

export function linkExists(name: string): boolean {
  return existsSync(sys(name));
}

export function isBridge(name: string): boolean {
  return existsSync(sys(name, 'bridge'));
}

export function linkMac(name: string): string | undefined {
  try {
    return readFileSync(sys(name, 'address'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The bridge (or other master) a link is enslaved to. */
export function linkMaster(name: string): string | undefined {
  try {
    return readlinkSync(sys(name, 'master')).split('/').pop();
  } catch {
    return undefined;
  }
}

export function bridgePortFlag(name: string, flag: 'hairpin_mode' | 'isolated'): boolean {
  try {
    return readFileSync(sys(name, `brport/${flag}`), 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A link's index (`iflink`: for a veth, its peer's index in the peer's namespace). */
export function linkIndex(name: string, which: 'ifindex' | 'iflink' = 'ifindex'): number {
  const n = Number(readFileSync(sys(name, which), 'utf8'));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`no ${which} for link ${name}`);
  return n;
}
