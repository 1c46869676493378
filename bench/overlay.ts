// The overlay section of `npm run bench`: cnm-overlay beside cnm-bridge on the same node, node-join convergence,
// the agent catching up on 1,000 simulated nodes, and cross-node vs same-node TCP throughput. Runs on a cluster
// of namespaces (conformance/harness/cluster.ts); bundled and imported by bench/run.mjs.
import { execa } from 'execa';
import { readFileSync, writeFileSync } from 'node:fs';
import { bin } from '../conformance/harness/bins.ts';
import {
  createNode,
  createPod,
  createUnderlay,
  dataDir,
  destroyCluster,
  ETCD_URL,
  invokeOn,
  ipIn,
  NS_PREFIX,
  startAgent,
  stopAgent,
  waitFor,
  type Node,
} from '../conformance/harness/cluster.ts';
import type { TestNetns } from '../conformance/harness/netns.ts';
import { b64 } from '../shared/etcd/wire.ts';

export interface BenchRow {
  name: string;
  unit: string;
  value: number;
  note?: string;
}

const PREFIX = `/cnmo-${process.pid}-bench`;
/** The bench's own progress line (a terminal's status line, or plain lines into a file or pipe). */
let progress: (msg: string) => void = () => {};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

function overlayConf(name: string, vni: number, network: string, subnetLen = 24) {
  return { cniVersion: '1.0.0', name, type: 'cnm-overlay', etcdEndpoints: [ETCD_URL], etcdPrefix: PREFIX, network, subnetLen, vni, ipMasq: true };
}

async function timedInvoke(node: Node, plugin: string, command: string, id: string, pod: TestNetns, conf: object): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await invokeOn(node, plugin, { command, containerId: id, netns: pod.path, ifname: 'eth0' }, conf);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.exitCode !== 0) throw new Error(`${plugin} ${command}: ${r.stdout} ${r.stderr}`);
  return ms;
}

/** ADD and DEL p50 of cnm-overlay and cnm-bridge, interleaved, both run inside the same node namespace. */
async function addDel(node: Node, pods: number, rows: BenchRow[]): Promise<void> {
  const ov = { ...overlayConf(`cnmo${process.pid}b0`, 50, '172.23.0.0/17'), dataDir: node.dataDir };
  const br = { cniVersion: '1.0.0', name: `cnmo${process.pid}br`, type: 'cnm-bridge', bridge: 'cnmobench', isGateway: true, ipMasq: true, dataDir: node.dataDir, ipam: { type: 'cnm-host-local', ranges: [[{ subnet: '192.168.26.0/24' }]] } };
  const ns = await Promise.all(Array.from({ length: pods }, (_, i) => createPod(node, `b${i}`)));
  const nsBr = await Promise.all(Array.from({ length: pods }, (_, i) => createPod(node, `r${i}`)));
  await timedInvoke(node, 'cnm-overlay', 'ADD', 'warm', ns[0]!, ov);
  await timedInvoke(node, 'cnm-overlay', 'DEL', 'warm', ns[0]!, ov);
  await timedInvoke(node, 'cnm-bridge', 'ADD', 'warm', nsBr[0]!, br);
  await timedInvoke(node, 'cnm-bridge', 'DEL', 'warm', nsBr[0]!, br);
  const t = { ov: { ADD: [] as number[], DEL: [] as number[] }, br: { ADD: [] as number[], DEL: [] as number[] } };
  for (const command of ['ADD', 'DEL'] as const) {
    for (let i = 0; i < pods; i++) {
      progress(`${command} ${i + 1}/${pods}`);
      t.ov[command].push(await timedInvoke(node, 'cnm-overlay', command, `o${i}`, ns[i]!, ov));
      t.br[command].push(await timedInvoke(node, 'cnm-bridge', command, `b${i}`, nsBr[i]!, br));
    }
  }
  for (const command of ['ADD', 'DEL'] as const) {
    const o = pct(t.ov[command], 50);
    const b = pct(t.br[command], 50);
    rows.push({ name: `cnm-overlay ${command} p50 (${pods} pods, via ip netns exec)`, unit: 'ms', value: o, note: `cnm-bridge ${b.toFixed(1)} ms in the same node: ${(o / b).toFixed(2)}x (goal 1.15x)` });
  }
}

/** Entries a device holds: [permanent neighbours, fdb entries with a dst, routes]. */
async function entries(node: Node, dev: string): Promise<[number, number, number]> {
  const neigh = await ipIn<Array<{ state?: string[] }>>(node.ns, ['neigh', 'show', 'dev', dev]);
  const routes = await ipIn<unknown[]>(node.ns, ['route', 'show', 'dev', dev]);
  const fdb = await execa('ip', ['netns', 'exec', node.ns.name, 'bridge', '-j', 'fdb', 'show', 'dev', dev], { reject: false });
  const f = fdb.stdout.trim() ? (JSON.parse(fdb.stdout) as Array<{ dst?: string }>).filter((x) => x.dst) : [];
  return [neigh.filter((n) => (n.state ?? []).includes('PERMANENT')).length, f.length, routes.length];
}

/** From a joining node's agent start to its subnet routed on both existing nodes; 20 joins, one namespace. */
async function joins(peers: Node[], joiner: Node, count: number, rows: BenchRow[]): Promise<void> {
  const dev = 'cnmox50';
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    progress(`join ${i + 1}/${count}`);
    const node = { ...joiner, name: `j${i}`, dataDir: dataDir(`j${i}`) };
    const t0 = Date.now();
    await startAgent(node, PREFIX);
    await waitFor('join', async () => {
      for (const p of peers) if ((await entries(p, dev))[2] !== peers.length) return false;
      return true;
    }, 30_000);
    times.push(Date.now() - t0);
    await stopAgent(node);
    await execa('ip', ['netns', 'exec', peers[0]!.ns.name, bin('cnm'), 'node', 'rm', node.name, '--etcd-endpoints', ETCD_URL, '--etcd-prefix', PREFIX]);
    await waitFor('leave', async () => (await entries(peers[0]!, dev))[2] === peers.length - 1, 30_000);
  }
  rows.push({ name: `node join: agent start -> routed on every peer, p50 of ${count}`, unit: 'ms', value: pct(times, 50), note: `p95 ${pct(times, 95)} ms (goal: p50 under 200 ms)` });
}

const WRITER = `
const [url, file] = process.argv.slice(1);
const puts = JSON.parse(require('fs').readFileSync(file, 'utf8'));
const http = require('http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
let next = 0;
const one = () => new Promise((resolve, reject) => {
  if (next >= puts.length) return resolve();
  const body = JSON.stringify(puts[next++]);
  const req = http.request(url + '/v3/kv/put', { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => { res.resume(); res.on('end', () => one().then(resolve, reject)); });
  req.on('error', reject); req.end(body);
});
Promise.all(Array.from({ length: 16 }, one)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
`;

/** 1,000 node leases written straight to etcd; a new node's agent catches up on all of them. */
async function catchUp(joiner: Node, count: number, rows: BenchRow[]): Promise<void> {
  const net = `cnmo${process.pid}big`;
  const spec = { name: net, vni: 60, network: '172.24.0.0/16', subnetLen: 26, port: 4789, ipMasq: true, icc: true, internal: false };
  const puts: Array<{ key: string; value: string }> = [];
  for (let i = 1; i <= count; i++) {
    const subnet = `172.24.${i >> 2}.${(i & 3) * 64}/26`;
    const mac = `02:aa:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
    const underlay = `192.168.24.${1 + (i % 250)}`;
    puts.push({ key: b64(`${PREFIX}/subnets/${net}/sim${i}`), value: b64(JSON.stringify({ node: `sim${i}`, subnet, underlay, vtepMac: mac })) });
    puts.push({ key: b64(`${PREFIX}/claims/${net}/${subnet.replace('/', '_')}`), value: b64(`sim${i}`) });
  }
  const file = `${dataDir('puts')}/puts.json`;
  writeFileSync(file, JSON.stringify(puts));
  progress(`writing ${count} simulated leases`);
  await execa('ip', ['netns', 'exec', `${NS_PREFIX}etcd`, process.execPath, '-e', WRITER, ETCD_URL, file]);
  // The network record last: the real nodes' agents then lease a subnet no simulated node holds.
  writeFileSync(file, JSON.stringify([{ key: b64(`${PREFIX}/networks/${net}`), value: b64(JSON.stringify(spec)) }]));
  await execa('ip', ['netns', 'exec', `${NS_PREFIX}etcd`, process.execPath, '-e', WRITER, ETCD_URL, file]);
  const node = { ...joiner, name: 'catchup', dataDir: dataDir('catchup') };
  progress('agent catching up');
  const t0 = Date.now();
  const agent = await startAgent(node, PREFIX);
  // Remote nodes: the simulated ones and the two real nodes, whose agents lease a subnet of every network.
  const remote = count + 2;
  let seen: number[] = [];
  await waitFor(`catch-up (last seen ${seen.join('/')})`, async () => {
    seen = await entries(node, 'cnmox60').catch(() => [0, 0, 0]);
    return JSON.stringify(seen) === JSON.stringify([remote, remote, remote]);
  }, 120_000).catch((err: Error) => {
    throw new Error(`${err.message}; entries ${seen.join('/')}\n${agent.logs.join('').slice(-2000)}`);
  });
  const ms = Date.now() - t0;
  const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  const e = await entries(node, 'cnmox60');
  rows.push({ name: `agent catch-up on ${count.toLocaleString('en')} simulated nodes`, unit: 'ms', value: ms, note: `${e.join('/')} neighbours/fdb/routes for ${remote} remote nodes (exactly 3 each); agent RSS ${rss.toFixed(0)} MiB (goal under 2 s)` });
  await stopAgent(node);
}

/** One iperf3 client run from a pod (retried while the server is still starting); bits per second received. */
async function iperf(from: TestNetns, to: string): Promise<number> {
  let last = '';
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = await execa('ip', ['netns', 'exec', from.name, 'iperf3', '-c', to, '-t', '3', '-J'], { reject: false });
    const doc = JSON.parse(r.stdout || '{}') as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
    if (doc.end?.sum_received) return doc.end.sum_received.bits_per_second;
    last = doc.error ?? r.stderr;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error(`iperf3 to ${to}: ${last}`);
}

/** iperf3 TCP, 3 s each: pod -> pod on another node, over VXLAN, and pod -> pod on the same node. */
async function throughput(n1: Node, n2: Node, rows: BenchRow[]): Promise<void> {
  const conf = overlayConf(`cnmo${process.pid}tp`, 70, '172.23.128.0/17');
  const pods: Array<{ ns: TestNetns; ip: string }> = [];
  for (const [node, label] of [[n1, 'ta'], [n1, 'tb'], [n2, 'tc']] as const) {
    const ns = await createPod(node, label);
    const r = await invokeOn(node, 'cnm-overlay', { command: 'ADD', containerId: label, netns: ns.path, ifname: 'eth0' }, { ...conf, dataDir: node.dataDir });
    if (r.exitCode !== 0) throw new Error(r.stdout);
    pods.push({ ns, ip: (r.json!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]! });
  }
  const [a, b, c] = pods as [(typeof pods)[0], (typeof pods)[0], (typeof pods)[0]];
  const servers = [b, c].map((p) => execa('ip', ['netns', 'exec', p.ns.name, 'iperf3', '-s', '-B', p.ip], { reject: false }));
  try {
    progress('iperf3 same node');
    const same = await iperf(a.ns, b.ip);
    progress('iperf3 cross node');
    const cross = await iperf(a.ns, c.ip);
    rows.push({ name: 'cross-node / same-node pod TCP throughput (iperf3, 3 s each)', unit: 'x', value: cross / same, note: `${(cross / 1e9).toFixed(2)} vs ${(same / 1e9).toFixed(2)} Gbit/s` });
  } finally {
    for (const s of servers) s.kill('SIGKILL');
    await Promise.allSettled(servers);
  }
}

export async function overlayBench(opts: { pods: number; joins: number; simulated: number; progress: (msg: string) => void }): Promise<BenchRow[]> {
  progress = (msg) => opts.progress(`overlay: ${msg}`);
  const rows: BenchRow[] = [];
  try {
    await createUnderlay();
    const [n1, n2] = [await createNode('n1'), await createNode('n2')];
    for (const n of [n1, n2]) await startAgent(n, PREFIX);
    await addDel(n1, opts.pods, rows);
    // The join network has a pod on n1 so both peers hold it.
    const joiner = await createNode('join');
    const p = await createPod(n2, 'jp');
    await invokeOn(n2, 'cnm-overlay', { command: 'ADD', containerId: 'jp', netns: p.path, ifname: 'eth0' }, { ...overlayConf(`cnmo${process.pid}b0`, 50, '172.23.0.0/17'), dataDir: n2.dataDir });
    await waitFor('n1 and n2 peered', async () => (await entries(n1, 'cnmox50'))[2] === 1 && (await entries(n2, 'cnmox50'))[2] === 1, 30_000);
    await joins([n1, n2], joiner, opts.joins, rows);
    await throughput(n1, n2, rows);
    await catchUp(joiner, opts.simulated, rows);
  } finally {
    progress('cleaning up the cluster');
    await destroyCluster();
  }
  return rows;
}
