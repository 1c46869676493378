// Service discovery on cnm-overlay networks, on the cluster harness (a real etcd, two nodes as namespaces, each
// with its agent and, started by the first ADD needing it, its own `cnm dns`): pods on different nodes resolve
// each other by name with dig through their gateways, names go with their pod's DEL, isolated overlay networks
// never see each other's names, and names keep answering from the last known state while etcd is down.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import {
  createNode,
  createPod,
  createUnderlay,
  dataDir,
  destroyCluster,
  ETCD_URL,
  invokeOn,
  startAgent,
  waitFor,
  type Etcd,
  type Node,
} from './harness/cluster.ts';
import { alive, dig, digUntil, serverPid, until } from './harness/discovery.ts';
import type { TestNetns } from './harness/netns.ts';
import { filesUnder } from './harness/datadir.ts';

const PREFIX = `/cnmo-${process.pid}-d`;
let etcd: Etcd;
const nodes: Node[] = [];
/** Each node's DNS run dir: one server per node, as on a real cluster. */
const runDirs = new Map<Node, string>();
let netSeq = 0;
let idSeq = 0;

interface Net {
  name: string;
  conf: Record<string, unknown>;
}

/** An overlay network with service discovery: a /20 of 172.26.0.0/16 each. */
function discoveryNet(options: Record<string, unknown> = {}): Net {
  const n = netSeq++;
  const name = `cnmo${process.pid}d${n}`;
  return { name, conf: { cniVersion: '1.1.0', name, type: 'cnm-overlay', etcdEndpoints: [ETCD_URL], etcdPrefix: PREFIX, network: `172.26.${n * 16}.0/20`, vni: 300 + n, ...options } };
}

/** The config a node's runtime hands the plugin: its data dir and its DNS server's run dir. */
const confOn = (node: Node, net: Net) => ({ ...net.conf, dataDir: node.dataDir, serviceDiscovery: { runDir: runDirs.get(node)! } });

interface Pod {
  node: Node;
  net: Net;
  ns: TestNetns;
  id: string;
  ip: string;
  gateway: string;
  result: Record<string, unknown>;
}

const live = new Set<Pod>();

async function addPod(node: Node, net: Net, name: string): Promise<Pod> {
  const ns = await createPod(node, `d${idSeq}`);
  const id = `od${process.pid}x${idSeq++}`;
  const r = await invokeOn(node, 'cnm-overlay', { command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', args: `K8S_POD_NAME=${name}` }, confOn(node, net));
  if (r.exitCode !== 0) throw new Error(`ADD on ${node.name} failed: ${r.stdout} ${r.stderr}`);
  const ip = (r.json!.ips as Array<{ address: string; gateway: string }>)[0]!;
  const pod: Pod = { node, net, ns, id, ip: ip.address.split('/')[0]!, gateway: ip.gateway, result: r.json! };
  live.add(pod);
  return pod;
}

async function delPod(p: Pod): Promise<void> {
  const r = await invokeOn(p.node, 'cnm-overlay', { command: 'DEL', containerId: p.id, netns: p.ns.path, ifname: 'eth0' }, confOn(p.node, p.net));
  assert.is(r.exitCode, 0, `DEL: ${r.stdout} ${r.stderr}`);
  live.delete(p);
}

const resolves = (ip: string) => (d: { answers: string[] }) => d.answers.includes(ip);

test.before(async () => {
  ({ etcd } = await createUnderlay());
  for (const name of ['n1', 'n2']) {
    const node = await createNode(name);
    nodes.push(node);
    runDirs.set(node, dataDir(`${name}-dns`));
    await startAgent(node, PREFIX);
  }
  for (const n of nodes) await waitFor(`${n.name}'s agent to hold its lease`, () => existsSync(`${n.dataDir}/overlay/agent.json`) && JSON.parse(readFileSync(`${n.dataDir}/overlay/agent.json`, 'utf8')).leaseExpires > Date.now(), 15_000);
});

test.after(async () => {
  await etcd.start().catch(() => undefined);
  for (const p of [...live]) await delPod(p).catch(() => undefined);
  // The DNS servers were started detached by the plugin: stopped by their PIDs before the namespaces go.
  for (const dir of runDirs.values()) {
    const pid = serverPid(dir);
    if (pid && alive(pid)) process.kill(pid, 'SIGTERM');
  }
  await destroyCluster();
});

test('pods on two nodes resolve each other by name and PTR through their gateways; an isolated overlay network sees none of it; a name goes with its pod\'s DEL; the last DEL on each node stops its server', async () => {
  const [n1, n2] = [nodes[0]!, nodes[1]!];
  const net = discoveryNet();
  const other = discoveryNet();
  const alpha = await addPod(n1, net, 'alpha');
  const bravo = await addPod(n2, net, 'bravo');
  const charlie = await addPod(n2, other, 'charlie');
  const delta = await addPod(n1, other, 'delta');
  assert.equal(alpha.result.dns, { nameservers: [alpha.gateway], search: ['cnm.internal'] }, "the result's dns names the node's gateway and the domain");
  assert.is.not(alpha.gateway, bravo.gateway, 'each node answers on its own gateway');

  const far = await digUntil(alpha.ns, alpha.gateway, 'bravo.cnm.internal', resolves(bravo.ip));
  assert.equal(far.answers, [bravo.ip], `n1 resolves a pod of n2: ${far.raw}`);
  assert.equal((await digUntil(bravo.ns, bravo.gateway, 'alpha', resolves(alpha.ip))).answers, [alpha.ip], 'and n2 one of n1, by its bare name');
  assert.equal((await dig(alpha.ns, alpha.gateway, `${bravo.id.slice(0, 12)}.cnm.internal`)).answers, [bravo.ip], 'by container ID');
  assert.equal((await dig(alpha.ns, alpha.gateway, bravo.ip, 'PTR')).answers, ['bravo.cnm.internal.'], 'PTR of a remote pod');

  assert.equal((await digUntil(delta.ns, delta.gateway, 'charlie.cnm.internal', resolves(charlie.ip))).answers, [charlie.ip], 'the other network resolves its own remote pods');
  assert.is((await dig(alpha.ns, alpha.gateway, 'charlie.cnm.internal')).status, 'NXDOMAIN', 'a remote name of another network');
  assert.is((await dig(alpha.ns, alpha.gateway, 'delta.cnm.internal')).status, 'NXDOMAIN', 'a local name of another network');
  assert.is((await dig(charlie.ns, charlie.gateway, 'alpha.cnm.internal')).status, 'NXDOMAIN', 'and the other way');

  // Names answer from the store the agent mirrors: an etcd outage takes none away.
  await etcd.stop();
  assert.equal((await dig(alpha.ns, alpha.gateway, 'bravo.cnm.internal')).answers, [bravo.ip], 'while etcd is down');
  await etcd.start();

  await delPod(bravo);
  const gone = await digUntil(alpha.ns, alpha.gateway, 'bravo.cnm.internal', (d) => d.status === 'NXDOMAIN', 'A', 30_000);
  assert.is(gone.status, 'NXDOMAIN', `n1 forgets bravo after its DEL on n2: ${gone.raw}`);
  assert.equal((await dig(alpha.ns, alpha.gateway, 'alpha.cnm.internal')).answers, [alpha.ip], 'its own names stay');

  const servers = nodes.map((n) => serverPid(runDirs.get(n)!)!);
  assert.ok(servers.every((pid) => pid && alive(pid)), 'one server per node');
  for (const p of [alpha, charlie, delta]) await delPod(p);
  assert.ok(await until(() => servers.every((pid) => !alive(pid))), 'the last DEL on each node stops its server');
});

test('"vip": true on cnm-overlay is error 7 naming it, nothing left', async () => {
  const n1 = nodes[0]!;
  const net = discoveryNet({ vip: true });
  const ns = await createPod(n1, 'vip');
  const r = await invokeOn(n1, 'cnm-overlay', { command: 'ADD', containerId: `od${process.pid}vip`, netns: ns.path, ifname: 'eth0' }, confOn(n1, net));
  assert.is.not(r.exitCode, 0, r.stdout);
  const err = JSON.parse(r.stdout) as { code: number; msg: string };
  assert.is(err.code, 7);
  assert.ok(err.msg.includes('vip'), err.msg);
  assert.equal(filesUnder(`${n1.dataDir}/endpoints/${net.name}`), [], 'no endpoint record');
  assert.not.ok(existsSync(`${n1.dataDir}/networks/${net.name}.json`), 'no network record');
  assert.is(serverPid(runDirs.get(n1)!), undefined, 'no DNS server');
});

test.run();
