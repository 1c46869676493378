import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { b64, LineSplitter, prefixEnd, rangeBody, txnBody, unb64, watchBody } from '../shared/etcd/wire.ts';
import { cidrsOverlap, keys, parseKey, specDifferences, subnetAddresses, subnetCandidates, type NetworkSpec } from '../shared/overlay/cluster.ts';
import { nodeRuleset, overlayNetworkRuleset, peerDiff, vxlanCreateBatch, type PeerEntry } from '../shared/overlay/plan.ts';
import { overlayOptions, parseOverlayConf } from '../shared/overlay/options.ts';
import { ClusterModel } from '../shared/overlay/agent/model.ts';
import { kernelNeedsOffloadOff } from '../shared/overlay/agent/kernel.ts';
import { CniError } from '../shared/cni/errors.ts';

const spec: NetworkSpec = { name: 'pods', vni: 7, network: '10.240.0.0/16', subnetLen: 24, port: 4789, ipMasq: true, icc: true, internal: false };

test('the gateway wire: base64 keys, a prefix range ends at the next key, a create-if-absent txn compares create_revision 0', () => {
  assert.is(unb64(b64('/cnm-cni/nodes/a')), '/cnm-cni/nodes/a');
  assert.is(Buffer.from(prefixEnd('/a/'), 'base64').toString(), '/a0');
  assert.equal(rangeBody('/p/', { prefix: true }), { key: b64('/p/'), range_end: b64('/p0') });
  const t = txnBody([{ key: '/k', createRevision: 0 }], [{ put: '/k', value: 'v', lease: '7668682473368642055' }], [{ get: '/k' }]);
  assert.equal(t.compare, [{ key: b64('/k'), target: 'CREATE', result: 'EQUAL', create_revision: '0' }]);
  assert.equal(t.success, [{ request_put: { key: b64('/k'), value: b64('v'), lease: '7668682473368642055' } }], 'lease IDs stay strings: they exceed 2^53');
  assert.equal(t.failure, [{ request_range: { key: b64('/k') } }]);
  assert.equal(watchBody('/p/', 42).create_request.start_revision, '42');
});

test('watch lines are split on newlines across chunks', () => {
  const s = new LineSplitter();
  assert.equal(s.feed('{"a":1}\n{"b"'), ['{"a":1}']);
  assert.equal(s.feed(':2}\n\n'), ['{"b":2}']);
});

test('the key layout parses back; node subnets skip the first and start with the one held before', () => {
  assert.equal(parseKey('/cnm-cni', keys.subnet('/cnm-cni', 'pods', 'node-1')), { kind: 'subnet', net: 'pods', node: 'node-1' });
  assert.equal(parseKey('/cnm-cni/', keys.endpoint('/cnm-cni', 'pods', 'n', 'c:eth0')), { kind: 'endpoint', net: 'pods', node: 'n', id: 'c:eth0' });
  assert.is(parseKey('/cnm-cni', '/other/nodes/a'), undefined);
  assert.is(keys.claim('/p', 'pods', '10.240.3.0/24'), '/p/claims/pods/10.240.3.0_24');
  assert.equal(subnetCandidates(spec, new Set(['10.240.1.0/24']), undefined, 2), ['10.240.2.0/24', '10.240.3.0/24']);
  assert.equal(subnetCandidates(spec, new Set(), '10.240.9.0/24', 2), ['10.240.9.0/24', '10.240.1.0/24']);
  assert.equal(subnetCandidates(spec, new Set(), '10.99.9.0/24', 1), ['10.240.1.0/24'], 'a previous subnet outside the network is not offered');
  assert.equal(subnetAddresses('10.240.3.0/24'), { vtep: '10.240.3.0', gateway: '10.240.3.1', prefix: 24 });
  assert.equal(specDifferences(spec, { ...spec, vni: 8 }), ['vni 8 (the cluster has 7)']);
  assert.ok(cidrsOverlap('10.240.0.0/16', '10.240.8.0/21'));
  assert.not.ok(cidrsOverlap('10.240.0.0/21', '10.240.8.0/21'));
});

const peer = (n: number, underlay = `192.168.1.${n}`, mac = `02:00:00:00:00:0${n}`): PeerEntry => ({ subnet: `10.240.${n}.0/24`, vtep: `10.240.${n}.0`, underlay, mac });

test('peers: exactly three entries each, nothing added twice, a moved node loses its old entries first', () => {
  const fresh = peerDiff('vx', { neigh: [], fdb: [], routes: [] }, [peer(2)]);
  assert.equal(fresh, {
    ip: ['neigh replace 10.240.2.0 lladdr 02:00:00:00:00:02 dev vx nud permanent', 'route replace 10.240.2.0/24 via 10.240.2.0 dev vx onlink'],
    bridge: ['fdb replace 02:00:00:00:00:02 dev vx dst 192.168.1.2 self permanent'],
  });
  const have = { neigh: [{ dst: '10.240.2.0', mac: '02:00:00:00:00:02' }], fdb: [{ mac: '02:00:00:00:00:02', dst: '192.168.1.2' }], routes: [{ dst: '10.240.2.0/24', via: '10.240.2.0' }] };
  assert.equal(peerDiff('vx', have, [peer(2)]), { ip: [], bridge: [] }, 'in step: nothing to do');
  assert.equal(peerDiff('vx', have, [peer(2, '192.168.1.99')]).bridge, ['fdb del 02:00:00:00:00:02 dev vx dst 192.168.1.2 self', 'fdb replace 02:00:00:00:00:02 dev vx dst 192.168.1.99 self permanent']);
  assert.equal(peerDiff('vx', have, []), { ip: ['route del 10.240.2.0/24 dev vx', 'neigh del 10.240.2.0 dev vx'], bridge: ['fdb del 02:00:00:00:00:02 dev vx dst 192.168.1.2 self'] });
});

test('the VXLAN device: learning off, the outer source pinned, the VTEP address a /32', () => {
  const lines = vxlanCreateBatch({ name: 'cnmox7', vni: 7, port: 4789, underlay: '192.168.1.1', mac: '02:00:00:00:00:01', mtu: 1450, subnet: '10.240.1.0/24' });
  assert.match(lines[0]!, 'type vxlan id 7 local 192.168.1.1 dstport 4789 nolearning');
  assert.is(lines[1], 'addr replace 10.240.1.0/32 dev cnmox7');
});

test('nft: VXLAN only from members, no traffic between overlay networks, masquerade leaves the cluster alone', () => {
  const other = { ...spec, name: 'b', vni: 8, network: '10.241.0.0/16', port: 8472 };
  const node = nodeRuleset('cnm_overlay', ['192.168.1.2', '192.168.1.1'], [spec, other]);
  assert.match(node, 'elements = { 192.168.1.1, 192.168.1.2 }');
  assert.match(node, 'udp dport { 4789, 8472 } ip saddr != @members drop');
  assert.match(node, 'ip saddr 10.240.0.0/16 ip daddr { 10.241.0.0/16 } drop');
  const o = overlayOptions(parseOverlayConf('pods', { etcdEndpoints: ['http://e:2379'], network: '10.240.0.0/16', vni: 7, ipMasq: true, icc: false }), 1450);
  const t = overlayNetworkRuleset('pods', o, '10.240.1.0/24');
  assert.match(t, 'ip saddr 10.240.0.0/16 ip daddr != 10.240.0.0/16 ip daddr != 224.0.0.0/4 masquerade');
  assert.match(t, 'iifname "cnmob7" ip saddr 10.240.0.0/16 ip daddr 10.240.0.0/16 drop');
  assert.match(t, 'set subnets4 { type ipv4_addr; flags interval; elements = { 10.240.1.0/24 }; }');
});

test('config: defaults, and refusals that say what to fix', () => {
  const c = parseOverlayConf('pods', { etcdEndpoints: ['http://e:2379'], network: '10.240.0.0/16' });
  assert.equal({ vni: c.spec.vni, port: c.spec.port, len: c.spec.subnetLen, prefix: c.etcd.prefix }, { vni: 1, port: 4789, len: 24, prefix: '/cnm-cni' });
  const refuses = (raw: Record<string, unknown>, what: string) => {
    try {
      parseOverlayConf('pods', { etcdEndpoints: ['http://e:2379'], network: '10.240.0.0/16', ...raw });
      assert.unreachable(what);
    } catch (err) {
      assert.instance(err, CniError);
      assert.match((err as CniError).msg, what);
    }
  };
  refuses({ etcdEndpoints: undefined }, 'etcdEndpoints');
  refuses({ etcdEndpoints: ['ftp://x'] }, 'http');
  refuses({ network: '10.240.0.0/16', subnetLen: 16 }, 'subnetLen');
  refuses({ ipam: { type: 'cnm-host-local' } }, 'ipam');
  refuses({ internal: true, ipMasq: true }, 'contradict');
});

test('the agent model follows puts and deletes; members are every leased underlay address', () => {
  const m = new ClusterModel('/p');
  const kv = (key: string, value: unknown) => ({ key, value: JSON.stringify(value), createRevision: 1, modRevision: 1, lease: '1' });
  m.load([kv('/p/networks/pods', spec), kv('/p/subnets/pods/a', { node: 'a', subnet: '10.240.1.0/24', underlay: '192.168.1.1', vtepMac: 'x' })]);
  assert.ok(m.apply([{ type: 'put', kv: kv('/p/subnets/pods/b', { node: 'b', subnet: '10.240.2.0/24', underlay: '192.168.1.2', vtepMac: 'y' }) }]));
  assert.equal(m.members().sort(), ['192.168.1.1', '192.168.1.2']);
  assert.ok(m.apply([{ type: 'delete', kv: { ...kv('/p/subnets/pods/a', ''), value: '' } }]));
  assert.equal([...m.leasesOf('pods').keys()], ['b']);
  assert.not.ok(m.apply([{ type: 'put', kv: kv('/p/claims/pods/10.240.2.0_24', 'b') }]), 'claims do not touch the data plane');
});

test('the agent model keeps endpoints for their names only: other nodes\' named endpoints, in key order; no data-plane change', () => {
  const m = new ClusterModel('/p');
  const kv = (key: string, value: unknown) => ({ key, value: JSON.stringify(value), createRevision: 1, modRevision: 1, lease: '1' });
  const e = (node: string, id: string, names?: string[]) => kv(`/p/endpoints/pods/${node}/${id}:eth0`, { node, containerId: id, ifname: 'eth0', ips: ['10.240.1.2/24'], ...(names ? { names } : {}) });
  m.load([kv('/p/networks/pods', spec), e('b', 'c2', ['bravo']), e('a', 'c1', ['alpha'])]);
  assert.not.ok(m.apply([{ type: 'put', kv: e('c', 'c3', ['charlie']) }, { type: 'put', kv: e('c', 'c4') }]), 'endpoints do not touch the data plane');
  assert.equal(m.namedRemotes('pods', 'a').map((r) => r.names), [['bravo'], ['charlie']], "own and unnamed endpoints left out");
  m.apply([{ type: 'delete', kv: { ...e('b', 'c2'), value: '' } }]);
  assert.equal(m.namedRemotes('pods', 'a'), [{ node: 'c', ips: ['10.240.1.2/24'], names: ['charlie'], aliases: [] }]);
});

test('tx checksum offload goes off on kernels before 5.7 only', () => {
  assert.ok(kernelNeedsOffloadOff('5.4.0-150-generic'));
  assert.not.ok(kernelNeedsOffloadOff('5.7.1'));
  assert.not.ok(kernelNeedsOffloadOff('6.18.44'));
});

test.run();
