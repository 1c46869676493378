import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bridgeMac, createBridgeBatch } from '../shared/bridge/network.ts';
import type { BridgeOptions } from '../shared/bridge/options.ts';
import { CniError, ErrorCode, inStep, step } from '../shared/cni/errors.ts';
import { CommandError } from '../shared/kernel/spawn.ts';
import { NetlinkBatch } from '../shared/kernel/netlink/message.ts';

test('a bridge MAC is its own: locally administered, unicast, the same for the same bridge, different for another', () => {
  const mac = bridgeMac('cnm0');
  assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  const first = parseInt(mac.slice(0, 2), 16);
  assert.is(first & 0x02, 0x02, 'locally administered');
  assert.is(first & 0x01, 0, 'unicast');
  assert.is(bridgeMac('cnm0'), mac, 'a recreated bridge gets the MAC it had');
  assert.is.not(bridgeMac('cnm1'), mac);
});

test('a bridge is made with its MAC in the same line that makes it', () => {
  const o = { bridge: 'cnm0', mtu: 1400, vlan: null, promiscMode: false } as unknown as BridgeOptions;
  assert.equal(createBridgeBatch(o), [`link add cnm0 address ${bridgeMac('cnm0')} mtu 1400 type bridge`, 'link set dev cnm0 up']);
});

test('asking netfilter for a table: one nftables GETTABLE per table, with its family and name', () => {
  const b = new NetlinkBatch().getNftTable('inet', 'cnm_pods').getNftTable('bridge', 'cnm_pods');
  const dv = new DataView(b.bytes.buffer, b.bytes.byteOffset, b.bytes.byteLength);
  assert.is(b.count, 2);
  assert.is(dv.getUint16(4, true), (10 << 8) | 1, 'NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE');
  assert.is(dv.getUint8(16), 1, 'NFPROTO_INET');
  const second = (dv.getUint32(0, true) + 3) & ~3;
  assert.is(dv.getUint8(second + 16), 7, 'NFPROTO_BRIDGE');
  assert.ok(new TextDecoder().decode(b.bytes).includes('cnm_pods\0'));
  assert.equal(b.what, ['nft list table inet cnm_pods', 'nft list table bridge cnm_pods']);
});

test('a failure inside a step names the step and carries a code for what it was, never a bare errno', () => {
  const osError = Object.assign(new Error("ENOENT: no such file or directory, open '/sys/class/net/cnm0/ifindex'"), { errno: -2, code: 'ENOENT' });
  const e = inStep('creating bridge cnm0', osError);
  assert.is(e.code, ErrorCode.IoFailure);
  assert.is(e.msg, "creating bridge cnm0: ENOENT: no such file or directory, open '/sys/class/net/cnm0/ifindex'");
  const cmd = inStep('creating bridge cnm0', new CommandError(['ip', '-batch', '-'], { status: 2, stdout: '', stderr: 'RTNETLINK answers: File exists' }));
  assert.is(cmd.code, ErrorCode.KernelFailure);
  assert.match(cmd.msg, /^creating bridge cnm0: ip -batch - failed \(exit 2\): RTNETLINK answers: File exists$/);
  const own = new CniError(ErrorCode.InvalidConfig, 'vlan 5 needs bridge VLAN filtering');
  assert.is(inStep('creating bridge cnm0', own), own, 'an error that already says what to fix stays as it is');
  assert.throws(() => step('network pods: bridge cnm0 is missing and could not be recreated', () => { throw new Error('boom'); }, ErrorCode.KernelFailure), (err: CniError) => err.code === 100 && err.msg === 'network pods: bridge cnm0 is missing and could not be recreated: boom');
});

test.run();
