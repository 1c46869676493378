// cnm-overlay + cnm agent on a cluster of namespaces: a real etcd, three nodes on a test-made underlay, pods of
// each node, real TCP/UDP between them. One cluster serves the whole suite (etcd starts once); each test uses
// networks of its own.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { readdirSync, readFileSync } from 'node:fs';
import { bin } from './harness/bins.ts';
import { filesUnder } from './harness/datadir.ts';
import {
  createNode,
  etcdCall,
  pidAlive,
  renumber,
  runIn,
  stopAgent,
  livePids,
  ourNamespaces,
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
 * An overlay network of its own: a /21 of 172.23.0.0/16 (of 172.24.0.0/16 with `second`; room for 7 nodes), since
 * every network stays routed on every node while the suite runs.
 */
function overlayNet(options: Record<string, unknown> = {}, second = false): Net {
  const n = netSeq++;
  const cidr = `172.${second ? 24 : 23}.${(n % 32) * 8}.0/21`;
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

/** Pods added and not yet deleted, with their network: the last test deletes them as a runtime would. */
const live = new Map<Pod, Net>();

async function addPod(node: Node, net: Net, conf: object = net.conf): Promise<Pod> {
  const ns = await createPod(node, `p${idSeq}`);
  const id = `o${process.pid}x${idSeq++}`;
  const r = await invokeOn(node, 'cnm-overlay', { command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0' }, { ...conf, dataDir: node.dataDir });
  if (r.exitCode !== 0) throw new Error(`ADD on ${node.name} failed: ${r.stdout} ${r.stderr}\n${agentLog(node)}`);
  // Results before 0.3.0 carry {ip4: {ip}} instead of ips.
  const address = (r.json!.ips as Array<{ address: string }> | undefined)?.[0]?.address ?? (r.json!.ip4 as { ip: string }).ip;
  const pod: Pod = { node, ns, id, ip: address.split('/')[0]!, result: r.json! };
  live.set(pod, net);
  return pod;
}

async function delPod(p: Pod, net: Net): Promise<void> {
  const r = await invokeOn(p.node, 'cnm-overlay', { command: 'DEL', containerId: p.id, netns: p.ns.path, ifname: 'eth0' }, { ...net.conf, dataDir: p.node.dataDir });
  assert.is(r.exitCode, 0, `DEL: ${r.stdout} ${r.stderr}`);
  live.delete(p);
}

/** Remote peers a node's VXLAN device of a network holds: [neighbours, fdb entries, routes]. */
async function entries(node: Node, vni: number): Promise<[number, number, number]> {
  const dev = `cnmox${vni}`;
  const neigh = await ipIn<Array<{ state?: string[] }>>(node.ns, ['neigh', 'show', 'dev', dev]);
  const routes = await ipIn<unknown[]>(node.ns, ['route', 'show', 'dev', dev]);
  const fdb = await execa('ip', ['netns', 'exec', node.ns.name, 'bridge', '-j', 'fdb', 'show', 'dev', dev], { reject: false });
  const f = fdb.stdout.trim() ? (JSON.parse(fdb.stdout) as Array<{ dst?: string }>).filter((x) => x.dst) : [];
  return [neigh.filter((n) => (n.state ?? []).includes('PERMANENT')).length, f.length, routes.length];
}

/** The subnet a node holds of a network, from etcd. */
async function subnetOf(node: Node, net: Net): Promise<string | undefined> {
  const kv = (await etcdKeys(`${PREFIX}/subnets/${net.name}/${node.name}`))[0];
  return kv ? (JSON.parse(kv.value) as { subnet: string }).subnet : undefined;
}

async function cnm(node: Node, args: string[]) {
  return runIn(node.ns, bin('cnm'), [...args, '--data-dir', node.dataDir]);
}

/** The tail of a node's agent log, for a failure message. */
function agentLog(node: Node): string {
  return `${node.name}'s agent log:\n${(node.agent?.logs ?? []).join('').split('\n').slice(-25).join('\n')}`;
}

/** Waits until every listed node holds exactly `peers` remote nodes' entries (one of each kind) on the network. */
async function converged(ns: Node[], net: Net, peers: number, timeoutMs = 10_000): Promise<number> {
  const want = JSON.stringify([peers, peers, peers]);
  const behind: Node[] = [];
  try {
    return await waitFor(`${peers} peers on ${ns.map((n) => n.name).join(',')}`, async () => {
      behind.length = 0;
      for (const n of ns) if (JSON.stringify(await entries(n, net.vni)) !== want) behind.push(n);
      return behind.length === 0;
    }, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${behind.map(agentLog).join('\n')}`);
  }
}

async function agentState(node: Node): Promise<{ leased: boolean; etcdUp: boolean } | undefined> {
  // leased: what STATUS decides from leaseExpires.
  try {
    const { readFileSync } = await import('node:fs');
    const a = JSON.parse(readFileSync(`${node.dataDir}/overlay/agent.json`, 'utf8')) as { leaseExpires: number; etcdUp: boolean };
    return { leased: a.leaseExpires > Date.now(), etcdUp: a.etcdUp };
  } catch {
    return undefined;
  }
}

test.before(async () => {
  ({ etcd, outside } = await createUnderlay());
  for (const name of ['n1', 'n2', 'n3']) nodes.push(await createNode(name));
  for (const n of nodes) await startAgent(n, PREFIX);
  for (const n of nodes) await waitFor(`${n.name}'s agent to hold its lease`, async () => (await agentState(n))?.leased === true);
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
  const b2 = await addPod(nodes[1]!, net);
  assert.is(await reach(b2.ns, 'tcp', b.ip, 8080), b2.ip, 'same node, same bridge');
  for (const p of [a, b, c, b2]) await delPod(p, net);
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

test("an ADD puts back the network's bridge and table an operator removed; the agent puts back its VXLAN device", async () => {
  const net = overlayNet();
  const n1 = nodes[0]!;
  const [a, b] = [await addPod(n1, net), await addPod(nodes[1]!, net)];
  await serve(b.ns, 'tcp', b.ip, 8080);
  await waitFor('a -> b', async () => (await reach(a.ns, 'tcp', b.ip, 8080)) === a.ip);
  await execa('ip', ['-n', n1.ns.name, 'link', 'del', `cnmob${net.vni}`]);
  await execa('ip', ['-n', n1.ns.name, 'link', 'del', `cnmox${net.vni}`]);
  await execa('ip', ['netns', 'exec', n1.ns.name, 'nft', 'delete', 'table', 'inet', `cnm_${net.name}`]);
  const c = await addPod(n1, net);
  await waitFor('the agent to recreate the VXLAN device', async () => (await ipIn<unknown[]>(n1.ns, ['link', 'show', `cnmox${net.vni}`])).length === 1);
  await converged(nodes, net, 2);
  await waitFor('c -> b', async () => (await reach(c.ns, 'tcp', b.ip, 8080)) === c.ip);
  assert.is(await reach(a.ns, 'tcp', b.ip, 8080), a.ip, 'the running pod is back on the recreated bridge');
  const tables = await execa('ip', ['netns', 'exec', n1.ns.name, 'nft', 'list', 'tables']);
  assert.match(tables.stdout, `cnm_${net.name}`);
});

test('a fourth node joins (its pods reachable from the others) and leaves (its entries gone everywhere)', async () => {
  const net = overlayNet();
  const a = await addPod(nodes[0]!, net);
  await converged(nodes, net, 2);
  const n4 = await createNode('n4');
  const started = Date.now();
  await startAgent(n4, PREFIX);
  await converged([...nodes, n4], net, 3);
  const joined = Date.now() - started;
  const d = await addPod(n4, net);
  await serve(d.ns, 'tcp', d.ip, 8080);
  await waitFor('n1 pod -> n4 pod', async () => (await reach(a.ns, 'tcp', d.ip, 8080)) === a.ip);
  console.log(`  node join: ${joined} ms from the agent's start to entries on every node (incl. process start; machine shared, noisy)`);
  const node = await cnm(nodes[0]!, ['node', 'ls', '--json']);
  assert.ok((JSON.parse(node.stdout) as Array<{ name: string }>).some((n) => n.name === 'n4'), `node ls: ${node.stdout}${node.stderr}`);
  await delPod(d, net);
  await stopAgent(n4);
  const rm = await cnm(nodes[0]!, ['node', 'rm', 'n4']);
  assert.is(rm.exitCode, 0, rm.stderr);
  await converged(nodes, net, 2);
  assert.equal(await etcdKeys(`${PREFIX}/subnets/${net.name}/n4`), []);
  await delPod(a, net);
});

test('etcd stopped: cross-node traffic goes on, an ADD on a node holding its lease works; the agent reconnects and publishes what changed', async () => {
  const net = overlayNet();
  const [a, b] = [await addPod(nodes[0]!, net), await addPod(nodes[1]!, net)];
  await converged(nodes, net, 2);
  await serve(b.ns, 'tcp', b.ip, 8080);
  await etcd.stop();
  try {
    assert.is(await reach(a.ns, 'tcp', b.ip, 8080), a.ip, 'traffic while etcd is down');
    const c = await addPod(nodes[0]!, net);
    assert.is(await reach(c.ns, 'tcp', b.ip, 8080), c.ip, 'a pod added while etcd is down talks across nodes');
    await waitFor('the agent to notice', async () => (await agentState(nodes[0]!))?.etcdUp === false);
    assert.ok(pidAlive(nodes[0]!.agent!.pid), 'the agent rides the outage out');
  } finally {
    await etcd.start();
  }
  await waitFor('the agent to reconnect', async () => (await agentState(nodes[0]!))?.etcdUp === true, 15_000);
  await waitFor('the endpoint added during the outage to be published', async () => (await etcdKeys(`${PREFIX}/endpoints/${net.name}/n1/`)).length === 2, 10_000);
});

test('an agent cut off from etcd catches up on what changed meanwhile (a node that joined)', async () => {
  const net = overlayNet();
  await addPod(nodes[0]!, net);
  await converged(nodes, net, 2);
  const n3 = nodes[2]!;
  const cut = await execa('ip', ['netns', 'exec', n3.ns.name, 'nft', '-f', '-'], { input: 'table inet cnmo_cut {\n chain out {\n type filter hook output priority 0; policy accept;\n tcp dport 2379 reject with tcp reset\n }\n}\n', reject: false });
  assert.is(cut.exitCode, 0, cut.stderr);
  const n5 = await createNode('n5');
  try {
    await startAgent(n5, PREFIX);
    await converged([nodes[0]!, nodes[1]!], net, 3);
    assert.equal(await entries(n3, net.vni), [2, 2, 2], 'the cut-off node has not heard yet');
  } finally {
    await execa('ip', ['netns', 'exec', n3.ns.name, 'nft', 'delete', 'table', 'inet', 'cnmo_cut'], { reject: false });
  }
  await converged([n3], net, 3, 15_000);
  await stopAgent(n5);
  assert.is((await cnm(nodes[0]!, ['node', 'rm', 'n5'])).exitCode, 0);
  await converged(nodes, net, 2);
});

test('an agent SIGKILLed and restarted: no duplicate entries, traffic unharmed', async () => {
  const net = overlayNet();
  const [a, b] = [await addPod(nodes[0]!, net), await addPod(nodes[1]!, net)];
  await converged(nodes, net, 2);
  await serve(b.ns, 'tcp', b.ip, 8080);
  const before = await subnetOf(nodes[1]!, net);
  await stopAgent(nodes[1]!, 'SIGKILL');
  assert.is(await reach(a.ns, 'tcp', b.ip, 8080), a.ip, 'traffic without the agent');
  await startAgent(nodes[1]!, PREFIX);
  const back = await waitFor('traffic after the restart', async () => (await reach(a.ns, 'tcp', b.ip, 8080)) === a.ip);
  console.log(`  traffic after an agent restart: ${back} ms`);
  await waitFor('the restarted agent to hold its lease', async () => (await agentState(nodes[1]!))?.leased === true);
  await converged(nodes, net, 2);
  assert.is(await subnetOf(nodes[1]!, net), before, 'same subnet');
});

test('a node whose lease is revoked is gone from every peer at once; its agent takes the same subnet back', async () => {
  const net = overlayNet();
  await addPod(nodes[0]!, net);
  await converged(nodes, net, 2);
  const n3 = nodes[2]!;
  const subnet = await subnetOf(n3, net);
  await stopAgent(n3, 'SIGKILL');
  assert.is((await cnm(nodes[0]!, ['node', 'rm', 'n3'])).exitCode, 0);
  await converged([nodes[0]!, nodes[1]!], net, 1);
  await startAgent(n3, PREFIX);
  await converged(nodes, net, 2);
  assert.is(await subnetOf(n3, net), subnet, 'the same subnet back');
  // With the agent running: it notices the loss and takes a new lease and the same subnet.
  const lease = (await etcdKeys(`${PREFIX}/nodes/n3`))[0]!.lease;
  await etcdCall('/v3/lease/revoke', { ID: lease });
  await waitFor('a new lease', async () => {
    const kv = (await etcdKeys(`${PREFIX}/nodes/n3`))[0];
    return !!kv && kv.lease !== lease;
  }, 15_000);
  await converged(nodes, net, 2);
  assert.is(await subnetOf(n3, net), subnet);
});

test('a node restarted with a new underlay address is reachable again, with the same subnet, on every peer', async () => {
  const net = overlayNet();
  const [a, b] = [await addPod(nodes[0]!, net), await addPod(nodes[1]!, net)];
  await converged(nodes, net, 2);
  await serve(b.ns, 'tcp', b.ip, 8080);
  const n2 = nodes[1]!;
  const subnet = await subnetOf(n2, net);
  await stopAgent(n2);
  await renumber(n2, '192.168.23.50');
  await startAgent(n2, PREFIX);
  await waitFor('peers to use the new address', async () => {
    const fdb = await execa('ip', ['netns', 'exec', nodes[0]!.ns.name, 'bridge', '-j', 'fdb', 'show', 'dev', `cnmox${net.vni}`]);
    const dsts = (JSON.parse(fdb.stdout) as Array<{ dst?: string }>).map((f) => f.dst).filter(Boolean);
    return dsts.includes('192.168.23.50') && !dsts.includes('192.168.23.11');
  });
  await converged(nodes, net, 2);
  await waitFor('a -> b again', async () => (await reach(a.ns, 'tcp', b.ip, 8080)) === a.ip);
  assert.is(await subnetOf(n2, net), subnet);
});

test('three nodes started at the same moment take three different subnets', async () => {
  const net = overlayNet();
  await addPod(nodes[0]!, net);
  const fresh = [await createNode('n6'), await createNode('n7'), await createNode('n8')];
  await Promise.all(fresh.map((n) => startAgent(n, PREFIX)));
  await converged([...nodes, ...fresh], net, 5, 20_000);
  const subnets = await Promise.all(fresh.map((n) => subnetOf(n, net)));
  assert.is(new Set(subnets).size, 3, subnets.join(' '));
  for (const n of fresh) {
    await stopAgent(n);
    const rm = await cnm(nodes[0]!, ['node', 'rm', n.name]);
    assert.is(rm.exitCode, 0, `${rm.stderr}\n${agentLog(n)}`);
  }
  await converged(nodes, net, 2);
});

test('an ADD killed half-way, then DEL, leaves nothing', async () => {
  const net = overlayNet();
  const warm = await addPod(nodes[0]!, net);
  await delPod(warm, net);
  const node = nodes[0]!;
  const pod = await createPod(node, 'kill');
  let killed = 0;
  for (let i = 0; i < 20; i++) {
    const id = `okill${i}`;
    const env = { PATH: '/usr/sbin:/sbin', CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: pod.path, CNI_IFNAME: 'eth0' };
    const child = execa('ip', ['netns', 'exec', node.ns.name, bin('cnm-overlay')], { input: JSON.stringify({ ...net.conf, dataDir: node.dataDir }), env, extendEnv: false, reject: false });
    await new Promise((r) => setTimeout(r, Math.random() * 15));
    child.kill('SIGKILL');
    if ((await child).signal === 'SIGKILL') killed++;
    const d = await invokeOn(node, 'cnm-overlay', { command: 'DEL', containerId: id, netns: pod.path, ifname: 'eth0' }, { ...net.conf, dataDir: node.dataDir });
    assert.is(d.exitCode, 0, d.stdout);
    assert.equal(filesUnder(`${node.dataDir}/endpoints/${net.name}`), []);
    assert.equal(filesUnder(`${node.dataDir}/ipam/${net.name}`).filter((f) => !/last_reserved/.test(f)), []);
    assert.equal((await ipIn<Array<{ ifname: string }>>(pod, ['link', 'show'])).map((l) => l.ifname), ['lo']);
  }
  assert.ok(killed >= 2, `some ADDs were killed before they answered (${killed}/20)`);
});

test('every cniVersion; CHECK sees the device, the endpoint and its addresses; GC; STATUS 50/51', async () => {
  const net = overlayNet();
  const node = nodes[0]!;
  for (const v of ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
    const p = await addPod(node, net, { ...net.conf, cniVersion: v });
    assert.ok(p.ip.startsWith('172.23.'), `${v}: ${JSON.stringify(p.result)}`);
    await delPod(p, { ...net, conf: { ...net.conf, cniVersion: v } });
  }
  const p = await addPod(node, net);
  const call = (command: string, extra: object = {}) => invokeOn(node, 'cnm-overlay', { command, containerId: p.id, netns: p.ns.path, ifname: 'eth0' }, { ...net.conf, dataDir: node.dataDir, ...extra });
  assert.is((await call('CHECK', { prevResult: p.result })).exitCode, 0);
  await execa('ip', ['-n', node.ns.name, 'link', 'set', `cnmox${net.vni}`, 'down']);
  await execa('ip', ['-n', p.ns.name, 'addr', 'flush', 'dev', 'eth0']);
  const bad = await call('CHECK', { prevResult: p.result });
  assert.is(bad.json?.code, 104, bad.stdout);
  await execa('ip', ['-n', node.ns.name, 'link', 'set', `cnmox${net.vni}`, 'up']);
  assert.is((await call('STATUS')).exitCode, 0);
  const gc = await call('GC', { 'cni.dev/valid-attachments': [] });
  assert.is(gc.exitCode, 0, gc.stdout);
  assert.equal(filesUnder(`${node.dataDir}/endpoints/${net.name}`), []);
  await stopAgent(node);
  const noAgent = await call('STATUS');
  assert.is(noAgent.json?.code, 50, noAgent.stdout);
  assert.match(String(noAgent.json?.msg), 'no cnm agent');
  await startAgent(node, PREFIX);
  await waitFor('agent up', async () => (await agentState(node))?.leased === true);
  assert.is((await call('STATUS')).exitCode, 0);
  await etcd.stop();
  try {
    const lease = await waitFor('lease lost', async () => {
      const r = await call('STATUS');
      return r.json?.code === 51;
    }, 20_000).catch(() => -1);
    assert.ok(lease >= 0, 'STATUS says 51 once the node has lost its lease');
  } finally {
    await etcd.start();
  }
  await waitFor('lease back', async () => (await call('STATUS')).exitCode === 0, 20_000);
});

test('a config that disagrees with the cluster, or has an ipam section, is refused with what to fix', async () => {
  const net = overlayNet();
  const p = await addPod(nodes[0]!, net);
  const pod = await createPod(nodes[1]!, 'bad');
  const r = await invokeOn(nodes[1]!, 'cnm-overlay', { command: 'ADD', containerId: 'bad1', netns: pod.path, ifname: 'eth0' }, { ...net.conf, vni: 999, dataDir: nodes[1]!.dataDir });
  assert.is(r.json?.code, 7, r.stdout);
  assert.match(String(r.json?.msg), 'vni');
  const r2 = await invokeOn(nodes[1]!, 'cnm-overlay', { command: 'ADD', containerId: 'bad2', netns: pod.path, ifname: 'eth0' }, { ...net.conf, ipam: { type: 'cnm-host-local' }, dataDir: nodes[1]!.dataDir });
  assert.is(r2.json?.code, 7, r2.stdout);
  const other = overlayNet();
  const r3 = await invokeOn(nodes[1]!, 'cnm-overlay', { command: 'ADD', containerId: 'bad3', netns: pod.path, ifname: 'eth0' }, { ...other.conf, network: net.conf.network, dataDir: nodes[1]!.dataDir });
  assert.is(r3.json?.code, 7, r3.stdout);
  assert.match(String(r3.json?.msg), 'would share CIDR');
  await delPod(p, net);
});

test('cnm network ls/inspect show the overlay network as global: nodes, subnets, VTEPs, endpoints per node', async () => {
  const net = overlayNet();
  const [a, b] = [await addPod(nodes[0]!, net), await addPod(nodes[1]!, net)];
  await waitFor('endpoints published', async () => (await etcdKeys(`${PREFIX}/endpoints/${net.name}/`)).length === 2);
  const ls = await cnm(nodes[2]!, ['network', 'ls', '--cluster', '--json']);
  const row = (JSON.parse(ls.stdout) as Array<{ name: string; scope: string; nodes: number; endpoints: number }>).find((n) => n.name === net.name);
  assert.equal({ scope: row?.scope, nodes: row?.nodes, endpoints: row?.endpoints }, { scope: 'global', nodes: 3, endpoints: 2 }, ls.stdout);
  const insp = await cnm(nodes[2]!, ['network', 'inspect', net.name, '--cluster', '--json']);
  const doc = JSON.parse(insp.stdout) as { nodes: Array<{ node: string; subnet: string; vtepMac: string; endpoints: Array<{ ips: string[] }> }> };
  const n1 = doc.nodes.find((n) => n.node === 'n1')!;
  assert.ok(n1.vtepMac && n1.subnet && n1.endpoints[0]!.ips[0]!.startsWith(a.ip), insp.stdout);
  await delPod(a, net);
  await delPod(b, net);
  await waitFor('endpoints withdrawn', async () => (await etcdKeys(`${PREFIX}/endpoints/${net.name}/`)).length === 0);
});

test('cnm install --driver overlay writes a conflist whose network works', async () => {
  const node = nodes[1]!;
  const dir = `${node.dataDir}/install`;
  const name = `cnmo${process.pid}inst`;
  const r = await cnm(node, ['install', '--bin-dir', `${dir}/bin`, '--conf-dir', `${dir}/net.d`, '--link', '--network', name, '--driver', 'overlay', '--subnet', '172.24.248.0/21', '--etcd-endpoints', ETCD_URL, '--etcd-prefix', PREFIX]);
  assert.is(r.exitCode, 0, r.stderr);
  const list = JSON.parse(readFileSync(`${dir}/net.d/${readdirSync(`${dir}/net.d`)[0]}`, 'utf8')) as { name: string; cniVersion: string; plugins: Array<Record<string, unknown>> };
  const plugin = list.plugins[0]!;
  assert.equal({ type: plugin.type, network: plugin.network, etcdEndpoints: plugin.etcdEndpoints, ipam: plugin.ipam }, { type: 'cnm-overlay', network: '172.24.248.0/21', etcdEndpoints: [ETCD_URL], ipam: undefined });
  const net: Net = { name, vni: 4000, conf: { ...plugin, vni: 4000, name, cniVersion: list.cniVersion } };
  const [a, b] = [await addPod(nodes[0]!, net), await addPod(node, net)];
  await serve(b.ns, 'tcp', b.ip, 8080);
  await waitFor('a -> b', async () => (await reach(a.ns, 'tcp', b.ip, 8080)) === a.ip);
  await delPod(a, net);
  await delPod(b, net);
});

test('after the suite: no namespace, process, or etcd key under the prefix is left', async () => {
  for (const [p, net] of [...live]) await delPod(p, net);
  for (const n of nodes) await waitFor(`${n.name}'s endpoints withdrawn`, async () => (await etcdKeys(`${PREFIX}/endpoints/`)).every((k) => !k.key.includes(`/${n.name}/`)));
  for (const n of nodes) await stopAgent(n);
  for (const n of nodes) await execa('ip', ['netns', 'exec', nodes[0]!.ns.name, bin('cnm'), 'node', 'rm', n.name, '--etcd-endpoints', ETCD_URL, '--etcd-prefix', PREFIX], { reject: false });
  const nets = (await etcdKeys(`${PREFIX}/networks/`)).map((k) => k.key.split('/').pop()!);
  assert.ok(nets.length > 0);
  const rm = await execa('ip', ['netns', 'exec', nodes[0]!.ns.name, bin('cnm'), 'network', 'rm', ...nets, '--etcd-endpoints', ETCD_URL, '--etcd-prefix', PREFIX], { reject: false });
  assert.is(rm.exitCode, 0, rm.stderr);
  assert.equal((await etcdKeys(`${PREFIX}/`)).map((k) => k.key), [], 'nothing under the prefix');
  await execa('ip', ['netns', 'exec', `${NS_PREFIX}etcd`, 'true']);
  await stopAllServers();
  const etcdPid = etcd.pid;
  await destroyCluster();
  assert.equal(await ourNamespaces(), []);
  assert.equal(livePids(), []);
  assert.not.ok(pidAlive(etcdPid), 'etcd stopped');
  assert.equal(readdirSync('/tmp').filter((d) => d.startsWith(`cnmo-data-${process.pid}-`)), []);
});

test.run();
