import { statSync, type FileStat } from './fs.ts';
import { CommandError, run } from './spawn.ts';

/** The node's own namespace: the one this plugin process runs in. */
export const NODE_NETNS = '/proc/self/ns/net';

export type NetnsState = 'present' | 'missing' | 'not-a-namespace' | { error: string };

function statOf(path: string): FileStat | NodeJS.ErrnoException {
  try {
    return statSync(path);
  } catch (err) {
    return err as NodeJS.ErrnoException;
  }
}

/** Whether a CNI_NETNS path names a live namespace (nsfs files all share one device). */
export function netnsState(path: string): NetnsState {
  const st = statOf(path);
  if (st instanceof Error) return st.code === 'ENOENT' || st.code === 'ENOTDIR' ? 'missing' : { error: st.message };
  const node = statSync(NODE_NETNS);
  return st.dev === node.dev ? 'present' : 'not-a-namespace';
}

/** True when two namespace paths (bind mounts or /proc/PID/ns/net) name one namespace. */
export function sameNetns(a: string, b: string): boolean {
  const sa = statSync(a);
  const sb = statSync(b);
  return sa.dev === sb.dev && sa.ino === sb.ino;
}

export function isNodeNetns(path: string): boolean {
  return sameNetns(path, NODE_NETNS);
}

const NAMED = /^\/(?:var\/)?run\/netns\/([^/]+)$/;

/**
 * The command that runs a tool inside a namespace (as given, for the node's own). iproute2 enters a named
 * namespace itself (`ip -n NAME`, one process instead of two); any other path goes through nsenter.
 */
export function inNetns(netns: string | undefined, tool: string, args: string[]): [string, string[]] {
  if (!netns) return [tool, args];
  const named = tool === 'ip' ? NAMED.exec(netns)?.[1] : undefined;
  if (named) return ['ip', ['-n', named, ...args]];
  return ['nsenter', [`--net=${netns}`, '--', tool, ...args]];
}

/** Makes a named namespace (/run/netns/NAME) and returns its path. */
export function addNamedNetns(name: string): string {
  const r = run('ip', ['netns', 'add', name]);
  if (r.status !== 0) throw new CommandError(['ip', 'netns', 'add', name], r);
  return `/var/run/netns/${name}`;
}

/** Removes a named namespace; one that is already gone is fine. */
export function deleteNamedNetns(name: string): void {
  run('ip', ['netns', 'delete', name]);
}
