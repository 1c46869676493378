import * as packet from 'dns-packet';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CniError } from '../shared/cni/errors.ts';
import type { Json } from '../shared/cni/fields.ts';
import type { AttachmentSpec } from '../shared/cnm/requests.ts';
import type { EndpointRecord, NetworkRecord } from '../shared/cnm/records.ts';
import { endpointNames } from '../shared/discovery/names.ts';
import { parseDiscovery } from '../shared/discovery/options.ts';
import { backendsOf, vipAddressBatch, vipRuleset } from '../shared/discovery/vip-plan.ts';
import { answer, errorReply, reverseAddress } from '../shared/dns/answer.ts';
import { buildZone, scopeOf } from '../shared/dns/zone.ts';

const isCni7 = (words: string) => (e: unknown) => e instanceof CniError && e.code === 7 && e.msg.includes(words);

test('serviceDiscovery: true takes the defaults; an object sets domain, ttl and upstreams', () => {
  assert.equal(parseDiscovery({ serviceDiscovery: true }), { domain: 'cnm.internal', ttl: 5, upstreams: [], vip: false, runDir: '/run/cnm/dns' });
  const d = parseDiscovery({ serviceDiscovery: { domain: 'Pods.Example.', ttl: 30, upstreams: ['192.0.2.1', '192.0.2.2:5353', '[2001:db8::1]:53'] }, vip: true })!;
  assert.is(d.domain, 'pods.example');
  assert.equal(d.upstreams, [{ address: '192.0.2.1', port: 53 }, { address: '192.0.2.2', port: 5353 }, { address: '2001:db8::1', port: 53 }]);
  assert.is(d.vip, true);
  assert.is(parseDiscovery({}), undefined);
  assert.is(parseDiscovery({ serviceDiscovery: false }), undefined);
});

test('bad serviceDiscovery settings are error 7 naming the key', () => {
  for (const [raw, words] of [
    [{ serviceDiscovery: 'yes' }, 'serviceDiscovery'],
    [{ serviceDiscovery: { domain: 'bad domain' } }, 'serviceDiscovery.domain'],
    [{ serviceDiscovery: { ttl: -1 } }, 'ttl'],
    [{ serviceDiscovery: { upstreams: ['dns.example'] } }, 'upstreams[0]'],
    [{ serviceDiscovery: { upstreams: ['192.0.2.1:99999'] } }, 'upstreams[0]'],
    [{ serviceDiscovery: { domian: 'x' } }, 'domian'],
    [{ serviceDiscovery: { runDir: 'relative' } }, 'runDir'],
    [{ vip: true }, 'vip'],
  ] as const) {
    assert.throws(() => parseDiscovery(raw), isCni7(words), JSON.stringify(raw));
  }
});

const att = (containerId: string, labels: Array<[string, string]> = [], runtime: Json = {}): AttachmentSpec => ({ containerId, ifname: 'eth0', netns: '/x', labels, runtime });

test('an endpoint is named by K8S_POD_NAME (and NAME.NAMESPACE), the container ID\'s first 12 characters, and its aliases', () => {
  const n = endpointNames('pods', att('0123456789abcdef', [['K8S_POD_NAME', 'Frontend'], ['K8S_POD_NAMESPACE', 'shop']], { aliases: { pods: ['Web', 'api'], other: ['x'] } }));
  assert.equal(n, { names: ['frontend', 'frontend.shop', '0123456789ab'], aliases: ['web', 'api'] });
  assert.equal(endpointNames('pods', att('abc')), { names: ['abc'], aliases: [] });
});

test('aliases that are not DNS names are error 7', () => {
  assert.throws(() => endpointNames('pods', att('abc', [], { aliases: { pods: ['has space'] } })), isCni7('has space'));
  assert.throws(() => endpointNames('pods', att('abc', [], { aliases: ['x'] })), isCni7('runtimeConfig.aliases'));
});

const discovery = { domain: 'cnm.internal', ttl: 7, upstreams: [], vip: false, runDir: '/run/x' };
const net = (name: string, d: object | null = discovery): NetworkRecord => ({ name, driver: 'bridge', options: d ? { serviceDiscovery: d } : {}, state: {}, subnets: [], created: '' });
const ep = (network: string, containerId: string, ip: string, names: string[], aliases: string[] = []): EndpointRecord => ({
  network, containerId, ifname: 'eth0', netns: '', state: 'ready', driver: 'bridge', interfaces: [], routes: [], driverState: {}, created: '',
  ips: [{ address: `${ip}/24`, gateway: ip.replace(/\.\d+$/, '.1') }], names, aliases,
});

const store = {
  dataDir: '/tmp/nonexistent-store',
  networks: [net('a'), net('b'), net('plain', null)],
  endpoints: [
    ep('a', 'c1', '10.1.0.2', ['one'], ['web']),
    ep('a', 'c2', '10.1.0.3', ['two'], ['web']),
    ep('b', 'c3', '10.2.0.2', ['three']),
    ep('b', 'c1', '10.2.0.9', ['one']),
    ep('plain', 'c4', '10.3.0.2', ['four']),
  ],
};

const query = (name: string, type: packet.RecordType = 'A') => packet.encode({ id: 7, type: 'query', flags: packet.RECURSION_DESIRED, questions: [{ type, name }] });
/** dns-packet decodes the rcode, which its types leave out. */
type Decoded = packet.DecodedPacket & { rcode: string };
const decoded = (r: ReturnType<typeof answer>): Decoded => {
  assert.is(r.kind, 'answer');
  return packet.decode((r as { message: Buffer }).message) as Decoded;
};

test('the zone: names per network, gateways from the endpoints, only networks of this run dir', () => {
  const zone = buildZone([store], '/run/x');
  assert.equal(zone.networks.map((n) => n.name), ['a', 'b']);
  assert.equal([...zone.byGateway.keys()].sort(), ['10.1.0.1', '10.2.0.1']);
  assert.equal(buildZone([store], '/run/other').networks, []);
});

test('a pod sees the names of its own networks only; the node at a gateway sees that network', () => {
  const zone = buildZone([store], '/run/x');
  assert.equal(scopeOf(zone, '10.1.0.1', '10.1.0.3').map((n) => n.name), ['a']);
  assert.equal(scopeOf(zone, '10.1.0.1', '10.1.0.2').map((n) => n.name), ['a', 'b'], 'c1 is on both');
  assert.equal(scopeOf(zone, '10.2.0.1', '10.2.0.2').map((n) => n.name), ['b']);
  assert.equal(scopeOf(zone, '10.2.0.1', '10.2.0.1').map((n) => n.name), ['b']);
  const r = decoded(answer(query('two.cnm.internal'), scopeOf(zone, '10.2.0.1', '10.2.0.2')));
  assert.is(r.rcode, 'NXDOMAIN', 'a name of network a is not seen from b');
});

test('remote endpoints (other nodes of an overlay network) answer by name and PTR, share aliases, bind no gateway and scope no source', () => {
  const remote = new Map([['a', [{ node: 'n2', ips: ['10.1.1.2/24'], names: ['far'], aliases: ['web'] }]]]);
  const zone = buildZone([{ ...store, remote }], '/run/x');
  const a = zone.networks.find((n) => n.name === 'a')!;
  assert.equal(a.names.get('far'), { v4: ['10.1.1.2'], v6: [] });
  assert.equal(a.names.get('web')!.v4.sort(), ['10.1.0.2', '10.1.0.3', '10.1.1.2']);
  assert.is(a.ptr.get('10.1.1.2'), 'far.cnm.internal');
  assert.equal(a.gateways.sort(), ['10.1.0.1'], "the remote node's gateway is not this node's to bind");
  assert.equal(scopeOf(zone, '10.1.0.1', '10.1.1.2').map((n) => n.name), ['a'], 'a remote address is no pod of this node');
  assert.is(zone.networks.find((n) => n.name === 'b')!.names.get('far'), undefined, 'network b does not see them');
});

test('A answers with every address of an alias, shuffled, the TTL set; AAAA of a v4-only name is empty; unknown names in the domain are NXDOMAIN; others are forwarded', () => {
  const scope = scopeOf(buildZone([store], '/run/x'), '10.1.0.1', '10.1.0.3');
  const orders = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const r = decoded(answer(query('web.cnm.internal'), scope));
    assert.is(r.rcode, 'NOERROR');
    assert.ok(r.flag_aa && r.flag_rd);
    const ips = r.answers!.map((a) => (a as { data: string }).data);
    assert.equal([...ips].sort(), ['10.1.0.2', '10.1.0.3']);
    assert.is((r.answers![0] as { ttl: number }).ttl, 7);
    orders.add(ips.join());
  }
  assert.is(orders.size, 2, 'both orders seen');
  assert.equal(decoded(answer(query('one'), scope)).answers!.map((a) => (a as { data: string }).data), ['10.1.0.2'], 'bare names too');
  assert.equal(decoded(answer(query('one.cnm.internal', 'AAAA'), scope)).answers, []);
  assert.is(decoded(answer(query('nobody.cnm.internal'), scope)).rcode, 'NXDOMAIN');
  assert.equal(answer(query('example.org'), scope), { kind: 'forward' });
});

test('PTR names the endpoint; reverse names of both families parse', () => {
  const scope = scopeOf(buildZone([store], '/run/x'), '10.1.0.1', '10.1.0.3');
  const r = decoded(answer(query('2.0.1.10.in-addr.arpa', 'PTR'), scope));
  assert.equal(r.answers!.map((a) => (a as { data: string }).data), ['one.cnm.internal']);
  assert.equal(answer(query('9.9.9.9.in-addr.arpa', 'PTR'), scope), { kind: 'forward' });
  assert.is(reverseAddress('1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa'), '2001:db8::1');
  assert.is(reverseAddress('1.2.3.in-addr.arpa'), undefined);
});

test('SERVFAIL keeps the id and the question', () => {
  const q = query('example.org');
  const r = packet.decode(errorReply(q, 2)!) as Decoded;
  assert.is(r.rcode, 'SERVFAIL');
  assert.is(r.id, 7);
  assert.is(r.questions![0]!.name, 'example.org');
});

test('VIP plan: one DNAT per VIP over its family\'s endpoints, numgen; the table goes when nothing is behind a VIP', () => {
  const b = backendsOf({ web: ['10.1.0.200', 'fd00::200'] }, { web: ['10.1.0.3', '10.1.0.2', 'fd00::2'] });
  assert.equal(b, [{ vip: '10.1.0.200', targets: ['10.1.0.2', '10.1.0.3'] }, { vip: 'fd00::200', targets: ['fd00::2'] }]);
  const rules = vipRuleset('pods', b);
  assert.match(rules, 'ip daddr 10.1.0.200 dnat ip to numgen inc mod 2 map { 0 : 10.1.0.2, 1 : 10.1.0.3 }');
  assert.match(rules, 'ip6 daddr fd00::200 dnat ip6 to numgen inc mod 1 map { 0 : fd00::2 }');
  assert.is(vipRuleset('pods', []), 'table inet cnm_pods_vip {}\ndelete table inet cnm_pods_vip\n');
  assert.equal(vipAddressBatch('br0', ['10.1.0.9'], ['10.1.0.200']), ['addr del 10.1.0.9/32 dev br0', 'addr replace 10.1.0.200/32 dev br0']);
});

test.run();
