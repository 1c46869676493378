// cnm-overlay + cnm agent on a cluster of namespaces: a real etcd, three nodes on a test-made underlay, pods of
// each node, real TCP/UDP between them. One cluster serves the whole suite (etcd starts once); each test uses
// networks of its own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  createNode,
  createPod,
  createUnderlay,
  destroyCluster,
  etcdKeys,
  invokeOn,
  ipIn,
  NS_PREFIX,
  OUTSIDE_IP,
  ETCD_URL,
  startAgent,
  waitFor,
  type Etcd,
  type Node,
} from './harness/cluster.ts';
import type { TestNetns } from './harness/netns.ts';
import { reach, serve, stopAllServers } from './harness/traffic.ts';

const PREFIX = `/cnmo-${process.pid}-t`;
let etcd: Etcd;
let outside: TestNetns;
const nodes: Node[] = [];
let netSeq = 0;
let idSeq = 0;

interface Net {
  name: string;
  vni: number;
  conf: Record<string, unknown>;
}

/**
 * An overlay network of its own: a /20 of 172.23.0.0/16 (of 172.24.0.0/16 with `second`), since every network stays
 * routed on every node while the suite runs.
 */
function overlayNet(options: Record<string, unknown> = {}, second = false): Net {
  const n = netSeq++;
  const cidr = `172.${second ? 24 : 23}.${(n % 16) * 16}.0/20`;
  const name = `cnmo${process.pid}n${n}`;
  const vni = 100 + n;
  return { name, vni, conf: { cniVersion: '1.1.0', name, type: 'cnm-overlay', etcdEndpoints: [ETCD_URL], etcdPrefix: PREFIX, network: cidr, vni, ipMasq: true, ...options } };
}

interface Pod {
  node: Node;
  ns: TestNetns;
  id: string;
  ip: string;
  result: Record<string, unknown>;
}

async function addPod(node: Node, net: Net, conf: object = net.conf): Promise<Pod> {
  const ns = await createPod(node, `p${idSeq}`);
  const id = `o${process.pid}x${idSeq++}`;
  const r = await invokeOn(node, 'cnm-overlay', { command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0' }, { ...conf, dataDir: node.dataDir });
  if (r.exitCode !== 0) throw new Error(`ADD on ${node.name} failed: ${r.stdout} ${r.stderr}`);
  const ips = r.json!.ips as Array<{ address: string }>;
  return { node, ns, id, ip: ips[0]!.address.split('/')[0]!, result: r.json! };
}

async function delPod(p: Pod, net: Net): Promise<void> {
  const r = await invokeOn(p.node, 'cnm-overlay', { command: 'DEL', containerId: p.id, netns: p.ns.path, ifname: 'eth0' }, { ...net.conf, dataDir: p.node.dataDir });
  assert.is(r.exitCode, 0, `DEL: ${r.stdout} ${r.stderr}`);
}

/** Remote peers a node's VXLAN device of a network holds: [neighbours, fdb entries, routes]. */
async function entries(node: Node, vni: number): Promise<[number, number, number]> {
  const dev = `cnmox${vni}`;
  const neigh = await ipIn<Array<{ state?: string[] }>>(node.ns, ['neigh', 'show', 'dev', dev]);
  const routes = await ipIn<unknown[]>(node.ns, ['route', 'show', 'dev', dev]);
  const { execa } = await import('execa');
  const fdb = await execa('ip', ['netns', 'exec', node.ns.name, 'bridge', '-j', 'fdb', 'show', 'dev', dev], { reject: false });
  const f = fdb.stdout.trim() ? (JSON.parse(fdb.stdout) as Array<{ dst?: string }>).filter((x) => x.dst) : [];
  return [neigh.filter((n) => (n.state ?? []).includes('PERMANENT')).length, f.length, routes.length];
}

test.before(async () => {
  ({ etcd, outside } = await createUnderlay());
  for (const name of ['n1', 'n2', 'n3']) nodes.push(await createNode(name));
  for (const n of nodes) await startAgent(n, PREFIX);
});

test.after(async () => {
  await stopAllServers();
  await destroyCluster();
});

test('pods on different nodes exchange TCP and UDP; each node holds exactly one set of entries per remote node', async () => {
  const net = overlayNet();
  const [a, b, c] = [await addPod(nodes[0]!, net), await addPod(nodes[1]!, net), await addPod(nodes[2]!, net)];
  assert.ok(a.ip.startsWith('172.23.') && b.ip.startsWith('172.23.'), `${a.ip} ${b.ip}`);
  assert.is.not(a.ip.split('.')[2], b.ip.split('.')[2], 'each node serves its own subnet');
  for (const n of nodes) await waitFor(`${n.name}'s entries`, async () => JSON.stringify(await entries(n, net.vni)) === '[2,2,2]');
  await serve(b.ns, 'tcp', b.ip, 8080);
  await serve(c.ns, 'udp', c.ip, 8081);
  await waitFor('TCP a -> b', async () => (await reach(a.ns, 'tcp', b.ip, 8080)) === a.ip);
  await waitFor('UDP a -> c', async () => (await reach(a.ns, 'udp', c.ip, 8081)) === a.ip);
  assert.is(await reach(c.ns, 'tcp', b.ip, 8080), c.ip);
  for (const p of [a, b, c]) await delPod(p, net);
});

test('a pod reaches a remote node and is reached from it; it reaches an outside host through masquerade', async () => {
  const net = overlayNet();
  const a = await addPod(nodes[0]!, net);
  const [n1, n2] = [nodes[0]!, nodes[1]!];
  await serve(n2.ns, 'tcp', n2.underlay, 8090);
  assert.ok(await reach(a.ns, 'tcp', n2.underlay, 8090), 'pod -> remote node');
  await serve(a.ns, 'tcp', a.ip, 8091);
  await waitFor('remote node -> pod', async () => (await reach(n2.ns, 'tcp', a.ip, 8091)) !== undefined);
  await serve(outside, 'tcp', OUTSIDE_IP, 8092);
  assert.is(await reach(a.ns, 'tcp', OUTSIDE_IP, 8092), n1.underlay, 'the outside host sees the node, not the pod');
  await delPod(a, net);
});

test('icc false holds across nodes: pods of the network cannot reach each other, anywhere; the outside still can be', async () => {
  const net = overlayNet({ icc: false });
  const [a, a2, b] = [await addPod(nodes[0]!, net), await addPod(nodes[0]!, net), await addPod(nodes[1]!, net)];
  await serve(b.ns, 'tcp', b.ip, 8080);
  await serve(a2.ns, 'tcp', a2.ip, 8080);
  await serve(outside, 'tcp', OUTSIDE_IP, 8093);
  assert.ok(await reach(a.ns, 'tcp', OUTSIDE_IP, 8093), 'the way out stays open');
  assert.is(await reach(a.ns, 'tcp', b.ip, 8080), undefined, 'a pod on another node');
  assert.is(await reach(a.ns, 'tcp', a2.ip, 8080), undefined, 'a pod on the same node');
  for (const p of [a, a2, b]) await delPod(p, net);
});

test('internal holds across nodes: pods talk to each other, never beyond the cluster network', async () => {
  const net = overlayNet({ internal: true, ipMasq: false });
  const [a, b] = [await addPod(nodes[0]!, net), await addPod(nodes[2]!, net)];
  await serve(b.ns, 'tcp', b.ip, 8080);
  await serve(outside, 'tcp', OUTSIDE_IP, 8094);
  await serve(nodes[2]!.ns, 'tcp', nodes[2]!.underlay, 8095);
  await waitFor('a -> b', async () => (await reach(a.ns, 'tcp', b.ip, 8080)) === a.ip);
  assert.is(await reach(a.ns, 'tcp', OUTSIDE_IP, 8094), undefined, 'no way out');
  assert.is(await reach(a.ns, 'tcp', nodes[2]!.underlay, 8095), undefined, 'no node beyond the network');
  for (const p of [a, b]) await delPod(p, net);
});

test('two overlay networks (two VNIs) are isolated from each other', async () => {
  const [x, y] = [overlayNet(), overlayNet({}, true)];
  const [x1, x2, y2] = [await addPod(nodes[0]!, x), await addPod(nodes[1]!, x), await addPod(nodes[1]!, y)];
  await serve(x2.ns, 'tcp', x2.ip, 8080);
  await serve(y2.ns, 'tcp', y2.ip, 8080);
  await waitFor('x1 -> x2', async () => (await reach(x1.ns, 'tcp', x2.ip, 8080)) === x1.ip);
  assert.is(await reach(x1.ns, 'tcp', y2.ip, 8080), undefined, 'x1 -> y2 (other VNI, other node)');
  await delPod(x1, x);
  await delPod(x2, x);
  await delPod(y2, y);
});

test.run();
