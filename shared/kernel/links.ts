import { existsSync, readFileSync, readlinkSync } from './fs.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { sleepSync } from './sleep.ts';
import { CommandError, run, runDetached } from './spawn.ts';

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

export function linkMtu(name: string): number {
  return Number(readFileSync(sys(name, 'mtu'), 'utf8'));
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

/**
 * How a link got its MAC (/sys addr_assign_type): a bridge made without one has 1 (random) and then takes its
 * lowest port's, so its MAC changes when that port goes; 3 (set) means someone gave it one.
 */
export function macAssignType(name: string): number | undefined {
  try {
    return Number(readFileSync(sys(name, 'addr_assign_type'), 'utf8'));
  } catch {
    return undefined;
  }
}

export const MAC_SET = 3;

/** Whether the link is administratively up (IFF_UP in /sys flags). */
export function linkUp(name: string): boolean {
  try {
    return (Number(readFileSync(sys(name, 'flags'), 'utf8')) & 1) === 1;
  } catch {
    return false;
  }
}

export function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${key.split('.').join('/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A link's index (`iflink`: for a veth, its peer's index in the peer's namespace). */
export function linkIndex(name: string, which: 'ifindex' | 'iflink' = 'ifindex'): number {
  let text: string;
  try {
    text = readFileSync(sys(name, which), 'utf8');
  } catch {
    throw new CniError(ErrorCode.KernelFailure, `link ${name} does not exist on this node (no ${sys(name)})`);
  }
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`no ${which} for link ${name}`);
  return n;
}

/** Links whose deletion runs in a detached `ip`, not yet seen gone. */
const deleting: string[] = [];

/**
 * Starts deleting a node link and returns at once; settleLinkDeletions() waits until it is gone from the node's
 * view (unlisted: the name is free, /sys has no entry, a veth's peer is gone from its namespace too). `ip link
 * del` itself returns only after the kernel has also waited out an RCU grace period and the device's last
 * references (~20-40 ms here); that wait runs on in the detached `ip`, off the pod's critical path, and the
 * `ip` process starts while the caller goes on with its other work.
 */
export function startLinkDeletion(name: string): void {
  if (deleting.includes(name)) return;
  runDetached('ip', ['link', 'del', name]);
  deleting.push(name);
}

/** Whether startLinkDeletion() was asked for this link and the link has not been seen gone yet. */
export function deletionStarted(name: string): boolean {
  return deleting.includes(name);
}

/**
 * Returns once every link startLinkDeletion() named is unlisted, polling /sys every 0.1 ms for the first 50 ms (the
 * kernel unlists a link ~2 ms after `ip` starts). A deletion that does not show within the timeout is done
 * synchronously, so its error is seen.
 */
export function settleLinkDeletions(timeoutMs = 3000): void {
  const started = Date.now();
  for (const name of deleting.splice(0)) {
    while (linkExists(name)) {
      const waited = Date.now() - started;
      if (waited > timeoutMs) {
        const r = run('ip', ['link', 'del', name]);
        if (r.status !== 0 && linkExists(name)) throw new CommandError(['ip', 'link', 'del', name], r);
        break;
      }
      sleepSync(waited < 50 ? 0.1 : 5);
    }
  }
}
