import { inNetns } from './netns.ts';
import { run, CommandError } from './spawn.ts';

/** `ip -j addr show` of one link. */
export interface IpAddrInfo {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
  scope?: string;
}

export interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  mtu: number;
  operstate?: string;
  link_type?: string;
  address?: string;
  master?: string;
  addr_info?: IpAddrInfo[];
}

export interface IpRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  prefsrc?: string;
}

/** Where ip runs: the node (undefined) or a pod's namespace path. */
export type Where = string | undefined;

/**
 * Applies iproute2 commands in one process, stopping at the first failure.
 * A trailing `show` line makes the batch answer with its JSON.
 */
export function ipBatch(lines: string[], where?: Where): string {
  const [tool, args] = inNetns(where, 'ip', ['-j', '-batch', '-']);
  const r = run(tool, args, lines.join('\n') + '\n');
  if (r.status !== 0) throw new CommandError(['ip', '-batch', ...lines.map((l) => `[${l}]`)], r);
  return r.stdout;
}

export function ipJson<T>(args: string[], where?: Where): T {
  const [tool, argv] = inNetns(where, 'ip', ['-j', ...args]);
  const r = run(tool, argv);
  if (r.status !== 0) throw new CommandError(['ip', ...args], r);
  return (r.stdout.trim() === '' ? [] : JSON.parse(r.stdout)) as T;
}

export function addrs(where?: Where, dev?: string): IpLink[] {
  return ipJson<IpLink[]>(dev ? ['addr', 'show', 'dev', dev] : ['addr', 'show'], where);
}

export function routes(family: 4 | 6, where?: Where): IpRoute[] {
  return ipJson<IpRoute[]>([`-${family}`, 'route', 'show'], where);
}

/** "a.b.c.d/len" of each address on a link. */
export function cidrsOf(link: IpLink): string[] {
  return (link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
}
