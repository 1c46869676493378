// rtnetlink sockets through Bun's FFI (libc's socket/send/recv/setns): a message batch costs ~1 ms in-process
// where an `ip` process costs ~3. Only under Bun; elsewhere (the SEA build) available() is false and callers
// use iproute2.
import { CniError, ErrorCode } from '../../cni/errors.ts';
import { i32le, u16le, u32le } from '../bytes.ts';
import { cString, errnoText, libc, type LibcHandle } from '../libc.ts';
import type { NetlinkBatch } from './message.ts';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const O_RDONLY_CLOEXEC = 0x80000;
const CLONE_NEWNET = 0x40000000;
const NLMSG_ERROR = 2;
/** The netlink families opened here: rtnetlink (links, addresses, routes) and nfnetlink (nftables). */
export const NETLINK_ROUTE = 0;
export const NETLINK_NETFILTER = 12;

function load(): LibcHandle | null {
  return process.env.CNM_NETLINK === '0' ? null : libc();
}

/** Whether this runtime can speak netlink itself (Bun, with CNM_NETLINK not set to 0). */
export function netlinkAvailable(): boolean {
  return load() !== null;
}

/** Where replies are read, one for every batch: a fresh 64 KiB each costs its zeroing. */
let replyBuffer: Uint8Array | undefined;

/** An rtnetlink socket in the node's namespace or in a pod's. */
export class NetlinkSocket {
  private constructor(
    private readonly fd: number,
    /** The namespace's fd when it was opened by path (kept for IFLA_NET_NS_FD). */
    readonly netnsFd: number,
  ) {}

  /** A socket in the namespace at `netns` (the node's own when undefined). */
  static open(netns?: string, protocol = NETLINK_ROUTE): NetlinkSocket {
    const f = load();
    if (!f) throw new Error('netlink needs Bun');
    const { libc, ptr } = f;
    const openNs = (path: string) => {
      const p = cString(path);
      const fd = libc.open(ptr(p), O_RDONLY_CLOEXEC, 0);
      if (fd < 0) throw new CniError(ErrorCode.IoFailure, `cannot open network namespace ${path}`);
      return fd;
    };
    if (!netns) {
      const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
      if (fd < 0) throw new CniError(ErrorCode.KernelFailure, 'cannot open a netlink socket');
      return new NetlinkSocket(fd, -1);
    }
    const home = openNs('/proc/self/ns/net');
    const target = openNs(netns);
    try {
      // A socket belongs to the namespace it is made in: enter, make it, come back.
      if (libc.setns(target, CLONE_NEWNET) !== 0) throw new CniError(ErrorCode.KernelFailure, `cannot enter network namespace ${netns}`);
      const fd = libc.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
      if (libc.setns(home, CLONE_NEWNET) !== 0) throw new CniError(ErrorCode.KernelFailure, 'cannot return to the node\'s network namespace');
      if (fd < 0) throw new CniError(ErrorCode.KernelFailure, `cannot open a netlink socket in ${netns}`);
      return new NetlinkSocket(fd, target);
    } finally {
      libc.close(home);
    }
  }

  /** Sends a batch and reads one ACK per message; the first refusal is thrown, naming its message. */
  run(batch: NetlinkBatch): void {
    const errnos = this.errnos(batch);
    let seq = 0;
    while (seq < errnos.length && errnos[seq] === 0) seq++;
    if (seq < errnos.length) throw new CniError(ErrorCode.KernelFailure, `netlink ${batch.what[seq] ?? `message ${seq}`}: ${errnoText(errnos[seq]!)}`);
  }

  /**
   * Sends a batch and returns each message's errno (0: done), in order. Replies other than ACKs (a GET's
   * answer) are skipped: a probe asks only whether the object is there.
   */
  errnos(batch: NetlinkBatch): number[] {
    const { libc, ptr } = load()!;
    const out = batch.bytes;
    if (Number(libc.send(this.fd, ptr(out), out.length, 0)) !== out.length) throw new CniError(ErrorCode.KernelFailure, 'netlink send failed');
    const buf = (replyBuffer ??= new Uint8Array(65536));
    const result: number[] = [];
    for (let i = 0; i < batch.count; i++) result.push(0);
    let acked = 0;
    while (acked < batch.count) {
      const n = Number(libc.recv(this.fd, ptr(buf), buf.length, 0));
      if (n <= 0) throw new CniError(ErrorCode.KernelFailure, 'netlink recv failed');
      for (let off = 0; off + 16 <= n; ) {
        const len = u32le(buf, off);
        if (u16le(buf, off + 4) === NLMSG_ERROR) {
          acked++;
          const seq = u32le(buf, off + 8); // the ACK carries the request's sequence number
          if (seq < result.length) result[seq] = -i32le(buf, off + 16);
        }
        if (len < 16) break;
        off += (len + 3) & ~3;
      }
    }
    return result;
  }

  close(): void {
    const { libc } = load()!;
    libc.close(this.fd);
    if (this.netnsFd >= 0) libc.close(this.netnsFd);
  }
}
