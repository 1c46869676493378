import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseBridgeOptions, parsePortMappings } from '../shared/bridge/options.ts';
import { addElementsScript, endpointElements, hostBatch, hostVethName, isolationRuleset, networkRuleset, removeElementsScript } from '../shared/bridge/plan.ts';
import { podBatch, randomMac } from '../shared/cnm/pod-plan.ts';
import { CniError } from '../shared/cni/errors.ts';

const opts = (raw: object = {}) => parseBridgeOptions({ bridge: 'br0', ...raw });

test('defaults: bridge cnm0, icc on, nothing else', () => {
  const o = parseBridgeOptions({});
  assert.is(o.bridge, 'cnm0');
  assert.is(o.icc, true);
  assert.is(o.ipMasq, false);
  assert.is(o.isGateway, false);
});

test('isDefaultGateway implies isGateway, as in the reference bridge', () => {
  assert.is(opts({ isDefaultGateway: true }).isGateway, true);
});

test('bad options are error 7 naming the key', () => {
  for (const [raw, words] of [
    [{ mtu: 20 }, 'mtu'],
    [{ bridge: 'a-very-long-bridge-name' }, 'bridge'],
    [{ icc: 'no' }, 'icc'],
    [{ internal: true, ipMasq: true }, 'internal'],
    [{ vlan: 5000 }, 'vlan'],
  ] as const) {
    assert.throws(() => opts(raw), (e: unknown) => e instanceof CniError && e.code === 7 && e.msg.includes(words), JSON.stringify(raw));
  }
});

test('port mappings default to tcp and every address; a hostIP is canonical', () => {
  const runtime = { portMappings: [{ hostPort: 8080, containerPort: 80 }, { hostPort: 53, containerPort: 53, protocol: 'UDP', hostIP: 'fd00:0::1' }] };
  assert.equal(parsePortMappings(runtime), [
    { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
    { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: 'fd00::1' },
  ]);
});

test('port mappings are read whatever the case of their keys, as containerd sends them', () => {
  const runtime = { portMappings: [{ HostPort: 8080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }] };
  assert.equal(parsePortMappings(runtime), [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
});

test('the host veth name is stable for an attachment and fits an interface name', () => {
  const a = hostVethName('pods', 'c1', 'eth0');
  assert.is(a, hostVethName('pods', 'c1', 'eth0'));
  assert.is.not(a, hostVethName('pods', 'c1', 'eth1'));
  assert.ok(a.length <= 15 && a.startsWith('cnmv'));
  // Pinned: a DEL after an upgrade must find the veth an older release named.
  assert.is(a, 'cnmvea998d2651');
});

test('the host batch makes the pair with the pod end already in the pod, then the port, then the gateway', () => {
  const lines = hostBatch({ bridge: 'br0', hostVeth: 'cnmv1', ifname: 'eth0', netns: '/var/run/netns/p', mac: '02:00:00:00:00:01', mtu: 1400, hairpin: true, isolated: true, vlan: null, gatewayAddrs: ['10.0.0.1/24'] });
  assert.equal(lines, [
    'link add cnmv1 mtu 1400 type veth peer name eth0 address 02:00:00:00:00:01 mtu 1400 netns /var/run/netns/p',
    'link set dev cnmv1 master br0',
    'link set dev cnmv1 type bridge_slave hairpin on isolated on',
    'link set dev cnmv1 up',
    'addr replace 10.0.0.1/24 dev br0',
    'link set dev br0 up',
  ]);
});

test('the pod batch: addresses (IPv6 without DAD), up, the default routes, then IPAM routes without duplicates', () => {
  const lines = podBatch({
    ifname: 'eth0',
    ips: [{ address: '10.0.0.5/24' }, { address: 'fd00::5/64' }],
    routes: [{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16' }],
    enabledad: false,
    gateways: { 4: '10.0.0.1', 6: 'fd00::1' },
    defaultRoute: true,
  });
  assert.equal(lines, [
    'addr add 10.0.0.5/24 dev eth0',
    'addr add fd00::5/64 dev eth0 nodad',
    'link set dev eth0 up',
    'route add 0.0.0.0/0 via 10.0.0.1 dev eth0',
    'route add ::/0 via fd00::1 dev eth0',
    'route add 192.168.0.0/16 via 10.0.0.1 dev eth0',
  ]);
});

test('the network ruleset replaces its table whole, carries its subnets; masquerade only with ipMasq; internal adds the forward drops', () => {
  const plain = networkRuleset('pods', opts(), ['10.0.0.0/24', 'fd00::/64']);
  assert.ok(plain.startsWith('table inet cnm_pods {}\ndelete table inet cnm_pods\n'));
  assert.match(plain, 'set subnets4 { type ipv4_addr; flags interval; elements = { 10.0.0.0/24 }; }');
  assert.match(plain, 'set subnets6 { type ipv6_addr; flags interval; elements = { fd00::/64 }; }');
  assert.not.match(plain, 'ip daddr != 224.0.0.0/4 masquerade');
  assert.match(plain, 'oifname "br0" ct status dnat ip saddr @subnets4 masquerade');
  assert.match(networkRuleset('pods', opts({ ipMasq: true }), []), 'ip saddr @subnets4 oifname != "br0" ip daddr != 224.0.0.0/4 masquerade');
  assert.match(networkRuleset('pods', opts({ internal: true }), []), 'iifname "br0" oifname != "br0" drop');
  assert.match(networkRuleset('pods', opts({ macspoofchk: true }), []), 'table bridge cnm_pods {');
});

test('isolation: each bridge drops what it forwards to another; no bridges, no table', () => {
  const r = isolationRuleset('cnm_isolation', ['b', 'a', 'a']);
  assert.match(r, 'set bridges { type ifname; elements = { "a", "b" } }');
  assert.match(r, 'iifname "a" oifname != "a" oifname @bridges drop');
  assert.is(isolationRuleset('cnm_isolation', []), 'table inet cnm_isolation {}\ndelete table inet cnm_isolation\n');
});

test('an ordinary pod adds no nft element; hostPorts go per family with create; removal tolerates absence', () => {
  const plain = endpointElements('pods', opts({ ipMasq: true }), ['10.0.0.5/24'], ['10.0.0.0/24'], [], 'cnmv1', '02:00:00:00:00:01');
  assert.is(addElementsScript(plain), '', 'no nft process for a pod without hostPorts');
  const el = endpointElements('pods', opts({ ipMasq: true }), ['10.0.0.5/24', 'fd00::5/64'], ['10.0.0.0/24'], [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }, { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '192.0.2.2' }], 'cnmv1', '02:00:00:00:00:01');
  assert.equal(addElementsScript(el).trim().split('\n'), [
    'add element inet cnm_pods subnets6 { fd00::/64 }',
    'create element inet cnm_pods hostports4 { tcp . 8080 : 10.0.0.5 . 80 }',
    'create element inet cnm_pods hostports6 { tcp . 8080 : fd00::5 . 80 }',
    'create element inet cnm_pods hostports4ip { 192.0.2.2 . udp . 53 : 10.0.0.5 . 53 }',
  ]);
  const rm = removeElementsScript(el).trim().split('\n');
  assert.is(rm[0], 'add element inet cnm_pods hostports4 { tcp . 8080 : 10.0.0.5 . 80 }');
  assert.is(rm[1], 'delete element inet cnm_pods hostports4 { tcp . 8080 }');
  assert.ok(rm.includes('delete element inet cnm_pods hostports4ip { 192.0.2.2 . udp . 53 }'));
  assert.not.ok(rm.some((l) => l.includes('subnets')), 'subnets stay with the network');
});

test('a random MAC is a locally administered unicast one, and they differ', () => {
  const macs = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const mac = randomMac();
    assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.is(parseInt(mac.slice(0, 2), 16) & 0x03, 0x02, mac);
    macs.add(mac);
  }
  assert.is(macs.size, 200);
});

test.run();
