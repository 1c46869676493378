import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addressBytes, NetlinkBatch, RTM } from '../shared/kernel/netlink/message.ts';

/** The messages of a batch: [type, flags, seq, total length]. */
function headers(bytes: Uint8Array): Array<[number, number, number, number]> {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Array<[number, number, number, number]> = [];
  for (let off = 0; off < bytes.length; ) {
    const len = dv.getUint32(off, true);
    out.push([dv.getUint16(off + 4, true), dv.getUint16(off + 6, true), dv.getUint32(off + 8, true), len]);
    off += (len + 3) & ~3;
  }
  return out;
}

test('addresses become their bytes, IPv6 with :: expanded', () => {
  assert.equal([...addressBytes('10.1.2.3').bytes], [10, 1, 2, 3]);
  assert.is(addressBytes('10.1.2.3').family, 2);
  assert.equal([...addressBytes('fd00::5').bytes], [0xfd, 0, ...Array(13).fill(0), 5]);
  assert.equal([...addressBytes('::1').bytes], [...Array(15).fill(0), 1]);
  assert.equal([...addressBytes('2001:db8:0:1:2:3:4:5').bytes.slice(0, 4)], [0x20, 0x01, 0x0d, 0xb8]);
  assert.is(addressBytes('::').family, 10);
});

test('a batch holds one acknowledged request per step, numbered, 4-byte aligned, each named for errors', () => {
  const b = new NetlinkBatch().addVeth('cnmv1', 'eth0', 7, { mtu: 1400, peerMac: '02:00:00:00:00:01' }).setLink(5, 'cnmv1', { masterIndex: 3, up: true }).addAddress(3, '10.0.0.1/24', { replace: true }).addRoute(9, '0.0.0.0/0', '10.0.0.1');
  const h = headers(b.bytes);
  assert.equal(h.map(([type]) => type), [RTM.NEWLINK, RTM.NEWLINK, RTM.NEWADDR, RTM.NEWROUTE]);
  assert.equal(h.map(([, , seq]) => seq), [0, 1, 2, 3]);
  for (const [, flags] of h) assert.ok((flags & 0x5) === 0x5, 'REQUEST and ACK on every message');
  assert.ok(h[2]![1] & 0x100, 'addr replace carries NLM_F_REPLACE');
  assert.ok(h[0]![1] & 0x200, 'link add carries NLM_F_EXCL');
  assert.is(b.bytes.length % 4, 0);
  assert.is(b.count, 4);
  assert.equal(b.what, ['link add cnmv1 type veth peer name eth0', 'link set dev cnmv1 master up', 'addr replace 10.0.0.1/24', 'route add 0.0.0.0/0 via 10.0.0.1']);
});

test('a veth can be made on its master and up in its one request', () => {
  const b = new NetlinkBatch().addVeth('cnmv1', 'eth0', 7, { masterIndex: 3, up: true });
  const bytes = b.bytes;
  // struct ifinfomsg after the 16-byte header: family, pad, type u16, index i32 at 20, flags u32 at 24, change u32 at 28.
  assert.is(bytes[24]! & 1, 1, 'IFF_UP in ifi_flags');
  assert.is(bytes[28]! & 1, 1, 'IFF_UP in ifi_change');
  // IFLA_MASTER (10) right after IFLA_IFNAME ("cnmv1\0", 4 + 6 bytes, padded to 12): len 8, type 10, value 3.
  assert.equal([...bytes.subarray(44, 52)], [8, 0, 10, 0, 3, 0, 0, 0]);
  assert.equal(b.what, ['link add cnmv1 master up type veth peer name eth0']);
  const plain = new NetlinkBatch().addVeth('cnmv1', 'eth0', 7, {}).bytes;
  assert.is(plain[24]! | plain[28]!, 0, 'without up, no flags change');
});

test('an IPv6 address without DAD sets IFA_F_NODAD; IPv4 never does', () => {
  const v6 = new NetlinkBatch().addAddress(2, 'fd00::5/64', { nodad: true }).bytes;
  assert.is(v6[16], 10, 'AF_INET6');
  assert.is(v6[17], 64, 'prefix length');
  assert.is(v6[18], 0x02, 'IFA_F_NODAD');
  const v4 = new NetlinkBatch().addAddress(2, '10.0.0.5/24', { nodad: true }).bytes;
  assert.is(v4[18], 0);
});

test.run();
