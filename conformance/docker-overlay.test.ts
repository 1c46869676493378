// Docker containers and pods on one overlay network: a cluster of two nodes (cluster harness: namespaces, a real
// etcd, `cnm agent` per node); node A runs a private dockerd whose network plugin is `cnm plugin serve --driver
// overlay` on A's agent data dir, node B a pod plugged in by cnm-overlay. The container and the pod reach each
// other across the VXLAN; `docker network rm` and the pod's DEL leave nothing on either node.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin } from './harness/bins.ts';
import {
  createNode,
  createPod,
  createUnderlay,
  deletePod,
  destroyCluster,
  ETCD_URL,
  etcdKeys,
  invokeOn,
  ipIn,
  livePids,
  ourNamespaces,
  runIn,
  startAgent,
  stopAgent,
  waitFor,
  type Node,
} from './harness/cluster.ts';
import { filesUnder } from './harness/datadir.ts';
import { startDockerdWithPlugin, stopDockerdWithPlugin, type Dockerd } from './harness/dockerd.ts';
import { stopAllPluginServers } from './harness/plugin-server.ts';
import type { TestNetns } from './harness/netns.ts';

const PREFIX = `/cnmo-${process.pid}-d`;
const PLUGIN = `cnmr${process.pid}o`;
const IMAGE = 'cnmr/busybox:1';
const NET = `cnmr${process.pid}ov`;
const CIDR = '172.27.0.0/17';
const VNI = 27;
let dir = '';
let a: Node;
let b: Node;
let dockerd: Dockerd | undefined;

const podConf = (node: Node) => ({ cniVersion: '1.1.0', name: NET, type: 'cnm-overlay', etcdEndpoints: [ETCD_URL], etcdPrefix: PREFIX, network: CIDR, vni: VNI, dataDir: node.dataDir });

test.before(async () => {
  dir = mkdtempSync(`/tmp/cnmr-${process.pid}-docker-overlay-`);
  await createUnderlay();
  a = await createNode('a');
  b = await createNode('b');
  for (const n of [a, b]) {
    await startAgent(n, PREFIX);
    await waitFor(`${n.name}'s agent`, () => existsSync(`${n.dataDir}/overlay/agent.json`), 20_000);
  }
  ({ dockerd } = await startDockerdWithPlugin(dir, a.ns, { image: IMAGE, plugin: PLUGIN, dataDir: a.dataDir, driver: 'overlay' }));
});

test.after(async () => {
  await stopDockerdWithPlugin(dockerd);
  await destroyCluster();
  rmSync(dir, { recursive: true, force: true });
});

/** A node's links other than lo, its underlay eth0 and the agent's VXLAN device. */
async function links(node: Node): Promise<string[]> {
  return (await ipIn<Array<{ ifname: string }>>(node.ns, ['link', 'show'])).map((l) => l.ifname).filter((l) => !['lo', 'eth0', `cnmox${VNI}`].includes(l));
}

async function tables(node: Node): Promise<string[]> {
  const r = await runIn(node.ns, 'nft', ['-j', 'list', 'tables']);
  return (JSON.parse(r.stdout).nftables as Array<{ table?: { family: string; name: string } }>).filter((e) => e.table).map((e) => `${e.table!.family} ${e.table!.name}`);
}

/** The node's store, but for locks and host-local's last-reserved markers. */
const storeOf = (node: Node) => filesUnder(node.dataDir).filter((f) => !f.startsWith('locks/') && !f.includes('last_reserved') && !f.startsWith('overlay/'));

test('Docker with --ipam-driver and a --subnet: refused, naming the node\'s leased subnet and what to do', async () => {
  const r = await dockerd!.docker(['network', 'create', '-d', PLUGIN, '--subnet', '172.27.200.0/24', '-o', `etcdEndpoints=${ETCD_URL}`, '-o', `etcdPrefix=${PREFIX}`, '-o', `network=${CIDR}`, '-o', `vni=${VNI}`, '-o', `name=${NET}`, `${NET}x`], { reject: false });
  assert.is.not(r.exitCode, 0, 'docker network create with Docker\'s own IPAM fails');
  assert.match(r.stderr, /leased subnet 172\.27\.\d+\.0\/24/);
  assert.match(r.stderr, /--ipam-driver null/);
});

test('a Docker container on node A and a cnm-overlay pod on node B share one overlay network and reach each other', async () => {
  const d = dockerd!;
  await d.docker(['network', 'create', '-d', PLUGIN, '--ipam-driver', 'null', '-o', `etcdEndpoints=${ETCD_URL}`, '-o', `etcdPrefix=${PREFIX}`, '-o', `network=${CIDR}`, '-o', `vni=${VNI}`, '-o', `name=${NET}`, NET]);
  assert.ok((await links(a)).includes(`cnmob${VNI}`), 'the network\'s bridge is up on node A');
  await d.docker(['run', '-d', '--network', NET, '--name', `${NET}c`, IMAGE, '/bin/sleep', '300']);
  const cip = (await d.docker(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', `${NET}c`])).stdout.trim();
  assert.match(cip, /^172\.27\.\d+\.\d+$/, `the container's address ${cip} is from the cluster CIDR`);

  const pod: TestNetns = await createPod(b, 'p');
  const add = await invokeOn(b, 'cnm-overlay', { command: 'ADD', containerId: `${NET}pod`, netns: pod.path, ifname: 'eth0' }, podConf(b));
  assert.is(add.exitCode, 0, `pod ADD: ${add.stdout} ${add.stderr}`);
  const pip = (add.json!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;
  assert.is.not(pip.split('.').slice(0, 3).join('.'), cip.split('.').slice(0, 3).join('.'), 'the pod and the container are on different nodes\' subnets');

  await waitFor('pod -> container', async () => (await runIn(pod, 'busybox', ['ping', '-c', '1', '-W', '1', cip])).exitCode === 0, 20_000);
  const back = await d.docker(['exec', `${NET}c`, 'ping', '-c', '1', '-W', '5', pip], { reject: false });
  assert.is(back.exitCode, 0, `container -> pod: ${back.stdout} ${back.stderr}`);
  const route = (await d.docker(['exec', `${NET}c`, 'ip', 'route'])).stdout;
  assert.match(route, new RegExp(`default via ${cip.replace(/\.\d+$/, '.1')}`), 'Docker set the default route from Join\'s gateway (the bridge on node A)');

  await d.docker(['rm', '-f', `${NET}c`]);
  await d.docker(['network', 'rm', NET]);
  assert.equal(await links(a), [], 'docker network rm left no bridge or veth on node A');
  assert.not.ok((await tables(a)).includes(`inet cnm_${NET}`), 'nor the network\'s nft table');
  assert.equal(storeOf(a), [], 'nor anything in node A\'s store: network, endpoint and address records gone');

  const del = await invokeOn(b, 'cnm-overlay', { command: 'DEL', containerId: `${NET}pod`, netns: pod.path, ifname: 'eth0' }, podConf(b));
  assert.is(del.exitCode, 0, `pod DEL: ${del.stdout} ${del.stderr}`);
  await deletePod(pod);
  assert.equal((await links(b)).filter((l) => l !== `cnmob${VNI}`), [], 'the pod\'s DEL left no veth on node B');
  await waitFor('endpoints withdrawn from etcd', async () => (await etcdKeys(`${PREFIX}/endpoints/`)).length === 0, 20_000);
});

test('a pod and a container on the same node: distinct addresses from one allocator; docker network rm leaves the pods\' network in place', async () => {
  const d = dockerd!;
  const [net, cidr, vni] = [`${NET}2`, '172.27.128.0/17', VNI + 1];
  const conf = { ...podConf(a), name: net, network: cidr, vni };
  const pod = await createPod(a, 'q');
  const add = await invokeOn(a, 'cnm-overlay', { command: 'ADD', containerId: `${net}pod`, netns: pod.path, ifname: 'eth0' }, conf);
  assert.is(add.exitCode, 0, `pod ADD: ${add.stdout} ${add.stderr}`);
  const pip = (add.json!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;
  await d.docker(['network', 'create', '-d', PLUGIN, '--ipam-driver', 'null', '-o', `etcdEndpoints=${ETCD_URL}`, '-o', `etcdPrefix=${PREFIX}`, '-o', `network=${cidr}`, '-o', `vni=${vni}`, '-o', `name=${net}`, net]);
  await d.docker(['run', '-d', '--network', net, '--name', `${net}c`, IMAGE, '/bin/sleep', '300']);
  const cip = (await d.docker(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', `${net}c`])).stdout.trim();
  assert.is.not(cip, pip, 'the container did not get the pod\'s address');
  const ping = await d.docker(['exec', `${net}c`, 'ping', '-c', '1', '-W', '5', pip], { reject: false });
  assert.is(ping.exitCode, 0, `container -> pod on the same node: ${ping.stdout} ${ping.stderr}`);
  await d.docker(['rm', '-f', `${net}c`]);
  await d.docker(['network', 'rm', net]);
  assert.ok((await links(a)).includes(`cnmob${vni}`), 'the pod\'s bridge stays');
  assert.is((await runIn(pod, 'busybox', ['ping', '-c', '1', '-W', '2', pip.replace(/\.\d+$/, '.1')])).exitCode, 0, 'the pod still reaches its gateway');
  const del = await invokeOn(a, 'cnm-overlay', { command: 'DEL', containerId: `${net}pod`, netns: pod.path, ifname: 'eth0' }, conf);
  assert.is(del.exitCode, 0, `pod DEL: ${del.stdout} ${del.stderr}`);
  await deletePod(pod);
  const rm = await runIn(a.ns, bin('cnm'), ['network', 'rm', net, '--data-dir', a.dataDir]);
  assert.is(rm.exitCode, 0, rm.stderr);
  assert.equal((await links(a)).filter((l) => l !== `cnmox${vni}`), [], 'cnm network rm took the bridge');
  assert.equal(storeOf(a), [], 'and nothing is left in node A\'s store');
});

test('after the suite: the cluster network removed, agents stopped, nothing left', async () => {
  for (const n of [a, b]) await stopAgent(n);
  for (const n of [a, b]) await runIn(a.ns, bin('cnm'), ['node', 'rm', n.name, '--etcd-endpoints', ETCD_URL, '--etcd-prefix', PREFIX]);
  const rm = await runIn(b.ns, bin('cnm'), ['network', 'rm', NET, `${NET}2`, '--etcd-endpoints', ETCD_URL, '--etcd-prefix', PREFIX, '--data-dir', b.dataDir]);
  assert.is(rm.exitCode, 0, rm.stderr);
  assert.equal((await etcdKeys(`${PREFIX}/`)).map((k) => k.key), [], 'nothing under the prefix');
  await stopAllPluginServers();
  await dockerd?.stop();
  dockerd = undefined;
  await destroyCluster();
  assert.equal(await ourNamespaces(), []);
  assert.equal(livePids(), []);
});

test.run();
