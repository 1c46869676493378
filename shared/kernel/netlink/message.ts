// rtnetlink messages, built as bytes: what `ip` would send, without starting `ip`. Pure (no sockets), so the
// encoding is unit-tested anywhere; socket.ts sends them.

import { putU16le, putU32le } from '../bytes.ts';
import { utf8Into } from '../libc.ts';
export const RTM = { NEWLINK: 16, DELLINK: 17, GETLINK: 18, NEWADDR: 20, NEWROUTE: 24 } as const;
export const NLM_F = { REQUEST: 0x1, ACK: 0x4, REPLACE: 0x100, EXCL: 0x200, CREATE: 0x400 } as const;
export const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28 } as const;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_F_NODAD = 0x02;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
export const IFF_UP = 0x1;
const AF_INET = 2;
const AF_INET6 = 10;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;
const NFNL_SUBSYS_NFTABLES = 10;
const NFT_MSG_GETTABLE = 1;
const NFTA_TABLE_NAME = 1;
const NFPROTO: Record<NftFamily, number> = { inet: 1, bridge: 7 };

export type NftFamily = 'inet' | 'bridge';

/** An address as bytes: 4 for IPv4, 16 for IPv6 (text as `ip` takes it). */
export function addressBytes(text: string): { family: number; bytes: Uint8Array } {
  if (!text.includes(':')) {
    const bytes = new Uint8Array(4);
    const parts = text.split('.');
    for (let i = 0; i < 4; i++) bytes[i] = Number(parts[i]);
    return { family: AF_INET, bytes };
  }
  const [head, tail = ''] = text.split('::') as [string, string?];
  const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = text.includes('::') ? groups(tail) : [];
  const all = text.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill(0), ...t] : h;
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 255;
  });
  return { family: AF_INET6, bytes };
}

function macBytes(mac: string): Uint8Array {
  const parts = mac.split(':');
  const bytes = new Uint8Array(parts.length);
  for (let i = 0; i < parts.length; i++) bytes[i] = parseInt(parts[i]!, 16);
  return bytes;
}

/** Several netlink messages in one buffer, sent with one send() and answered with one ACK each. */
export class NetlinkBatch {
  private buf = new Uint8Array(8192);
  private off = 0;
  private open: number[] = [];
  private seq = 0;
  /** What each message was, by sequence number, for error messages. */
  readonly what: string[] = [];

  get bytes(): Uint8Array {
    return this.buf.subarray(0, this.off);
  }

  get count(): number {
    return this.seq;
  }

  private u8(v: number) {
    this.buf[this.off++] = v;
  }
  private u16(v: number) {
    putU16le(this.buf, this.off, v);
    this.off += 2;
  }
  private u32(v: number) {
    putU32le(this.buf, this.off, v);
    this.off += 4;
  }
  private align() {
    this.off = (this.off + 3) & ~3;
  }
  private raw(bytes: Uint8Array) {
    this.buf.set(bytes, this.off);
    this.off += bytes.length;
  }

  private begin(type: number, flags: number, what: string) {
    this.open.push(this.off);
    this.u32(0);
    this.u16(type);
    this.u16(NLM_F.REQUEST | NLM_F.ACK | flags);
    this.u32(this.seq++);
    this.u32(0);
    this.what.push(what);
  }
  private end() {
    const start = this.open.pop()!;
    putU32le(this.buf, start, this.off - start);
    this.align();
  }
  private attr(type: number, body: () => void) {
    const start = this.off;
    this.u16(0);
    this.u16(type);
    body();
    putU16le(this.buf, start, this.off - start);
    this.align();
  }
  private str(type: number, s: string) {
    this.attr(type, () => {
      this.off += utf8Into(s, this.buf, this.off);
      this.u8(0);
    });
  }
  private ifinfo(index = 0, flags = 0, change = 0) {
    this.u8(0);
    this.u8(0);
    this.u16(0);
    this.u32(index);
    this.u32(flags);
    this.u32(change);
  }

  /**
   * `ip link add NAME [mtu M] [master INDEX] [up] type veth peer name PEER [address MAC] [mtu M] netns FD`: the
   * kernel attaches a new link to its master and brings it up in the same request.
   */
  addVeth(name: string, peer: string, peerNetnsFd: number, opts: { mtu?: number | null; peerMac?: string; masterIndex?: number; up?: boolean }): this {
    this.begin(RTM.NEWLINK, NLM_F.CREATE | NLM_F.EXCL, `link add ${name}${opts.masterIndex ? ' master' : ''}${opts.up ? ' up' : ''} type veth peer name ${peer}`);
    this.ifinfo(0, opts.up ? IFF_UP : 0, opts.up ? IFF_UP : 0);
    this.str(IFLA.IFNAME, name);
    if (opts.mtu) this.attr(IFLA.MTU, () => this.u32(opts.mtu!));
    if (opts.masterIndex) this.attr(IFLA.MASTER, () => this.u32(opts.masterIndex!));
    this.attr(IFLA.LINKINFO, () => {
      this.str(IFLA_INFO_KIND, 'veth');
      this.attr(IFLA_INFO_DATA, () =>
        this.attr(VETH_INFO_PEER, () => {
          this.ifinfo();
          this.str(IFLA.IFNAME, peer);
          if (opts.mtu) this.attr(IFLA.MTU, () => this.u32(opts.mtu!));
          if (opts.peerMac) this.attr(IFLA.ADDRESS, () => this.raw(macBytes(opts.peerMac!)));
          this.attr(IFLA.NET_NS_FD, () => this.u32(peerNetnsFd));
        }),
      );
    });
    this.end();
    return this;
  }

  /** `ip link set dev NAME [master M] up` (by index). */
  setLink(index: number, name: string, opts: { masterIndex?: number; up?: boolean }): this {
    this.begin(RTM.NEWLINK, 0, `link set dev ${name}${opts.masterIndex ? ' master' : ''}${opts.up ? ' up' : ''}`);
    this.ifinfo(index, opts.up ? IFF_UP : 0, opts.up ? IFF_UP : 0);
    if (opts.masterIndex) this.attr(IFLA.MASTER, () => this.u32(opts.masterIndex!));
    this.end();
    return this;
  }

  /** `ip addr add|replace ADDRESS/PREFIX dev INDEX [nodad]` */
  addAddress(index: number, cidr: string, opts: { replace?: boolean; nodad?: boolean } = {}): this {
    const [addr, prefix] = cidr.split('/') as [string, string];
    const { family, bytes } = addressBytes(addr);
    this.begin(RTM.NEWADDR, NLM_F.CREATE | (opts.replace ? NLM_F.REPLACE : NLM_F.EXCL), `addr ${opts.replace ? 'replace' : 'add'} ${cidr}`);
    this.u8(family);
    this.u8(Number(prefix));
    this.u8(opts.nodad && family === AF_INET6 ? IFA_F_NODAD : 0);
    this.u8(RT_SCOPE_UNIVERSE);
    this.u32(index);
    this.attr(IFA_LOCAL, () => this.raw(bytes));
    this.attr(IFA_ADDRESS, () => this.raw(bytes));
    this.end();
    return this;
  }

  /** `ip route add DST [via GW] dev INDEX` */
  addRoute(index: number, dst: string, gw?: string): this {
    const [net, prefix] = dst.split('/') as [string, string];
    const d = addressBytes(net);
    this.begin(RTM.NEWROUTE, NLM_F.CREATE | NLM_F.EXCL, `route add ${dst}${gw ? ` via ${gw}` : ''}`);
    this.u8(d.family);
    this.u8(Number(prefix));
    this.u8(0);
    this.u8(0);
    this.u8(RT_TABLE_MAIN);
    this.u8(RTPROT_BOOT);
    this.u8(gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
    this.u8(RTN_UNICAST);
    this.u32(0);
    if (Number(prefix) > 0) this.attr(RTA_DST, () => this.raw(d.bytes));
    if (gw) this.attr(RTA_GATEWAY, () => this.raw(addressBytes(gw).bytes));
    this.attr(RTA_OIF, () => this.u32(index));
    this.end();
    return this;
  }

  /** `nft list table FAMILY NAME`, for a NETLINK_NETFILTER socket: ENOENT when the table is missing. */
  getNftTable(family: NftFamily, name: string): this {
    this.begin((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE, 0, `nft list table ${family} ${name}`);
    this.u8(NFPROTO[family]);
    this.u8(0);
    this.u16(0);
    this.str(NFTA_TABLE_NAME, name);
    this.end();
    return this;
  }

  /** `ip link del NAME` */
  delLink(name: string): this {
    this.begin(RTM.DELLINK, 0, `link del ${name}`);
    this.ifinfo();
    this.str(IFLA.IFNAME, name);
    this.end();
    return this;
  }
}
