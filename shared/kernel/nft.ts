import { run, CommandError, type RunResult } from './spawn.ts';
import { NetlinkBatch, type NftFamily } from './netlink/message.ts';
import { errnoText } from './libc.ts';
import { netlinkAvailable, NetlinkSocket, NETLINK_NETFILTER } from './netlink/socket.ts';

export interface NftTableRef {
  family: NftFamily;
  name: string;
}

const ENOENT = 2;

/**
 * Which of these tables exist, in order. Under Bun one netfilter netlink round trip (~0.1 ms, no process);
 * elsewhere one `nft list tables` (a process, 2-3 ms).
 */
export function nftTablesExist(tables: NftTableRef[]): boolean[] {
  if (tables.length === 0) return [];
  if (netlinkAvailable()) {
    const batch = new NetlinkBatch();
    for (const t of tables) batch.getNftTable(t.family, t.name);
    const sock = NetlinkSocket.open(undefined, NETLINK_NETFILTER);
    try {
      const errnos = sock.errnos(batch);
      const exist: boolean[] = [];
      for (let i = 0; i < errnos.length; i++) {
        const errno = errnos[i]!;
        if (errno !== 0 && errno !== ENOENT) throw new Error(`asking netfilter for table ${tables[i]!.family} ${tables[i]!.name}: ${errnoText(errno)}`);
        exist.push(errno === 0);
      }
      return exist;
    } finally {
      sock.close();
    }
  }
  const r = run('nft', ['list', 'tables']);
  if (r.status !== 0) throw new CommandError(['nft', 'list', 'tables'], r);
  const have = new Set(r.stdout.split('\n').map((l) => l.trim()));
  return tables.map((t) => have.has(`table ${t.family} ${t.name}`));
}

/** Applies an nft script as one transaction: all of it or none. */
export function nftApply(script: string): void {
  const r = nftTry(script);
  if (r.status !== 0) throw new CommandError(['nft', '-f', '-', `<<${script.trim().split('\n').length} lines>>`], r);
}

export function nftTry(script: string): RunResult {
  return run('nft', ['-f', '-'], script);
}

/** `nft -j list ...`, parsed; undefined when the object does not exist. */
export function nftList(args: string[]): NftJson | undefined {
  const r = run('nft', ['-j', 'list', ...args]);
  if (r.status !== 0) return undefined;
  return JSON.parse(r.stdout) as NftJson;
}

export interface NftJson {
  nftables: Array<Record<string, unknown>>;
}

/** Quotes a string for an nft script (interface names, comments). */
export function nftString(s: string): string {
  if (!/^[\w.:@\-/]*$/.test(s)) throw new Error(`refusing to put ${JSON.stringify(s)} into an nft script`);
  return `"${s}"`;
}
