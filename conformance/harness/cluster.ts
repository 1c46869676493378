// A cluster on one machine, all of it in test-made namespaces: a "fabric" namespace holding the underlay bridge,
// etcd in a namespace of its own, each node a namespace with a veth into the fabric, an outside host on another
// subnet of the fabric. Agents and plugins run inside their node's namespace (`ip netns exec NODE`); pods are
// namespaces whose veths the plugin makes from inside the node. Names: cnmo-<pid>-*; data dirs /tmp/cnmo-data-<pid>-*.
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { bin } from './bins.ts';
import { RUNTIME_PATH, type Invocation } from './plugin.ts';
import type { TestNetns } from './netns.ts';
import { b64, prefixEnd } from '../../shared/etcd/wire.ts';
import { pidAlive } from '../../shared/cnm/store.ts';

export const NS_PREFIX = `cnmo-${process.pid}-`;
const IP = existsSync('/usr/sbin/ip') ? '/usr/sbin/ip' : '/usr/bin/ip';
export const ETCD_IP = '192.168.23.2';
export const OUTSIDE_IP = '192.168.25.2';
export const ETCD_URL = `http://${ETCD_IP}:2379`;

const made = new Set<string>();
const dirs = new Set<string>();
const processes = new Set<ResultPromise>();

async function ip(args: string[]): Promise<void> {
  await execa(IP, args);
}

async function netns(label: string): Promise<TestNetns> {
  const name = `${NS_PREFIX}${label}`;
  await ip(['netns', 'add', name]);
  made.add(name);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  return { name, path: `/var/run/netns/${name}` };
}

export function dataDir(label: string): string {
  const d = mkdtempSync(`/tmp/cnmo-data-${process.pid}-${label}-`);
  dirs.add(d);
  return d;
}

let fabric: TestNetns | undefined;
let portSeq = 0;

/** A veth from the fabric bridge into ns, named eth0 there, with an address. */
async function plug(ns: TestNetns, cidr: string, extraRoutes: string[] = []): Promise<string> {
  const port = `cnmo${portSeq++}`;
  await ip(['-n', fabric!.name, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.path]);
  await ip(['-n', fabric!.name, 'link', 'set', port, 'master', 'cnmofab', 'up']);
  await ip(['-n', ns.name, 'addr', 'add', cidr, 'dev', 'eth0']);
  await ip(['-n', ns.name, 'link', 'set', 'eth0', 'up']);
  for (const r of extraRoutes) await ip(['-n', ns.name, 'route', 'add', r, 'dev', 'eth0']);
  return port;
}

export interface Etcd {
  ns: TestNetns;
  pid: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

let etcdProc: ResultPromise | undefined;

/** The fabric, etcd and the outside host. */
export async function createUnderlay(): Promise<{ etcd: Etcd; outside: TestNetns }> {
  fabric = await netns('fabric');
  await ip(['-n', fabric.name, 'link', 'add', 'cnmofab', 'type', 'bridge']);
  await ip(['-n', fabric.name, 'link', 'set', 'cnmofab', 'up']);
  const etcdNs = await netns('etcd');
  await plug(etcdNs, `${ETCD_IP}/24`);
  const outside = await netns('out');
  // The outside host knows the node underlay only: a pod reaches it through masquerade or not at all.
  await plug(outside, `${OUTSIDE_IP}/24`, ['192.168.23.0/24']);
  const dir = dataDir('etcd');
  const etcd: Etcd = {
    ns: etcdNs,
    pid: 0,
    start: async () => {
      const url = `http://${ETCD_IP}`;
      etcdProc = execa(IP, ['netns', 'exec', etcdNs.name, 'etcd', '--name', 'n', '--data-dir', `${dir}/etcd`, '--listen-client-urls', `${url}:2379`, '--advertise-client-urls', `${url}:2379`,
        '--listen-peer-urls', `${url}:2380`, '--initial-advertise-peer-urls', `${url}:2380`, '--initial-cluster', `n=${url}:2380`], { reject: false, buffer: false, stdio: ['ignore', 'ignore', 'ignore'] });
      processes.add(etcdProc);
      etcd.pid = etcdProc.pid!;
      await waitFor('etcd to answer', async () => (await etcdCall('/v3/kv/range', { key: b64('/') })) !== undefined, 15_000);
    },
    stop: async () => {
      etcdProc?.kill('SIGTERM');
      await etcdProc;
      if (etcdProc) processes.delete(etcdProc);
      etcdProc = undefined;
    },
  };
  await etcd.start();
  return { etcd, outside };
}

const CALL = `
const [url, body] = process.argv.slice(1);
const req = require('http').request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, timeout: 2000 }, (res) => {
  let d = ''; res.on('data', (c) => (d += c)); res.on('end', () => { console.log(d); process.exit(res.statusCode < 300 ? 0 : 1); });
});
req.on('error', () => process.exit(2)); req.on('timeout', () => process.exit(3)); req.end(body);
`;

/** One call to etcd's JSON gateway from inside etcd's namespace; undefined when etcd does not answer. */
export async function etcdCall(path: string, body: object): Promise<Record<string, unknown> | undefined> {
  const r = await execa(IP, ['netns', 'exec', `${NS_PREFIX}etcd`, process.execPath, '-e', CALL, `${ETCD_URL}${path}`, JSON.stringify(body)], { reject: false });
  if (r.exitCode !== 0) return undefined;
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

/** Keys (decoded) under an etcd prefix, with their values and leases. */
export async function etcdKeys(prefix: string): Promise<Array<{ key: string; value: string; lease: string }>> {
  const r = (await etcdCall('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) })) as { kvs?: Array<{ key: string; value?: string; lease?: string }> } | undefined;
  if (!r) throw new Error('etcd did not answer');
  return (r.kvs ?? []).map((kv) => ({ key: Buffer.from(kv.key, 'base64').toString(), value: Buffer.from(kv.value ?? '', 'base64').toString(), lease: kv.lease ?? '0' }));
}

export async function etcdDeletePrefix(prefix: string): Promise<void> {
  await etcdCall('/v3/kv/deleterange', { key: b64(prefix), range_end: prefixEnd(prefix) });
}

export interface Agent {
  pid: number;
  logs: string[];
  proc: ResultPromise;
}

export interface Node {
  name: string;
  ns: TestNetns;
  underlay: string;
  dataDir: string;
  agent?: Agent;
  fabricPort: string;
}

let nodeSeq = 0;

export async function createNode(label: string, underlay = `192.168.23.${10 + nodeSeq++}`): Promise<Node> {
  const ns = await netns(label);
  const fabricPort = await plug(ns, `${underlay}/24`, ['192.168.25.0/24']);
  return { name: label, ns, underlay, dataDir: dataDir(label), fabricPort };
}

/** Moves a node to another underlay address (a node that comes back with a new IP). */
export async function renumber(node: Node, underlay: string): Promise<void> {
  await ip(['-n', node.ns.name, 'addr', 'flush', 'dev', 'eth0']);
  await ip(['-n', node.ns.name, 'addr', 'add', `${underlay}/24`, 'dev', 'eth0']);
  await ip(['-n', node.ns.name, 'route', 'replace', '192.168.25.0/24', 'dev', 'eth0']);
  node.underlay = underlay;
}

export async function startAgent(node: Node, prefix: string, extra: string[] = []): Promise<Agent> {
  const proc = execa(IP, ['netns', 'exec', node.ns.name, bin('cnm'), 'agent', '--etcd-endpoints', ETCD_URL, '--node-name', node.name, '--etcd-prefix', prefix, '--data-dir', node.dataDir, '--lease-ttl', '8', ...extra], {
    reject: false,
    buffer: false,
    env: { PATH: RUNTIME_PATH },
    extendEnv: false,
  });
  processes.add(proc);
  const agent: Agent = { pid: proc.pid!, logs: [], proc };
  proc.stderr!.on('data', (d: Buffer) => {
    agent.logs.push(String(d));
    if (process.env.CNMO_DEBUG) process.stderr.write(`[${node.name}] ${d}`);
  });
  node.agent = agent;
  return agent;
}

export async function stopAgent(node: Node, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
  const a = node.agent;
  if (!a) return;
  a.proc.kill(signal);
  await a.proc;
  processes.delete(a.proc);
  node.agent = undefined;
}

export { pidAlive };

/** A pod of a node: a namespace of its own, plugged in by the plugin run inside the node. */
export async function createPod(node: Node, label: string): Promise<TestNetns> {
  return netns(`${node.name}-${label}`);
}

export async function deletePod(pod: TestNetns): Promise<void> {
  made.delete(pod.name);
  await execa(IP, ['netns', 'delete', pod.name], { reject: false });
}

/** Runs a plugin inside a node as a runtime there would: clean env, config on stdin. */
export async function invokeOn(node: Node, plugin: string, env: { command: string; containerId?: string; netns?: string; ifname?: string; args?: string }, conf: object, opts: { timeoutMs?: number } = {}): Promise<Invocation> {
  const vars: Record<string, string> = { PATH: RUNTIME_PATH, CNI_COMMAND: env.command, CNI_PATH: bin(plugin).replace(/\/[^/]+$/, '') };
  if (env.containerId !== undefined) vars.CNI_CONTAINERID = env.containerId;
  if (env.netns !== undefined) vars.CNI_NETNS = env.netns;
  if (env.ifname !== undefined) vars.CNI_IFNAME = env.ifname;
  if (env.args !== undefined) vars.CNI_ARGS = env.args;
  const r = await execa(IP, ['netns', 'exec', node.ns.name, bin(plugin)], { input: JSON.stringify(conf), env: vars, extendEnv: false, reject: false, timeout: opts.timeoutMs ?? 30_000 });
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout.trim() ? (JSON.parse(r.stdout) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

/** `ip -j ARGS` inside a namespace, parsed. */
export async function ipIn<T>(ns: TestNetns, args: string[]): Promise<T> {
  const r = await execa(IP, ['-n', ns.name, '-j', ...args], { reject: false });
  return (r.stdout.trim() ? JSON.parse(r.stdout) : []) as T;
}

export async function runIn(ns: TestNetns, cmd: string, args: string[]) {
  return execa(IP, ['netns', 'exec', ns.name, cmd, ...args], { reject: false });
}

/** Polls until check() is true; throws with what after the deadline. Returns the milliseconds it took. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<number> {
  const start = Date.now();
  for (let wait = 10; ; wait = Math.min(wait * 2, 200)) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** The suite's namespaces still present. */
export async function ourNamespaces(): Promise<string[]> {
  const { stdout } = await execa(IP, ['-j', 'netns', 'list']);
  return (stdout.trim() ? (JSON.parse(stdout) as Array<{ name: string }>) : []).map((n) => n.name).filter((n) => n.startsWith(NS_PREFIX));
}

/** Stops every process and removes every namespace and data dir this suite made. */
export async function destroyCluster(): Promise<void> {
  for (const p of processes) p.kill('SIGKILL');
  await Promise.allSettled([...processes]);
  processes.clear();
  for (const name of await ourNamespaces()) await execa(IP, ['netns', 'delete', name], { reject: false });
  made.clear();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

export function livePids(): number[] {
  return [...processes].map((p) => p.pid!).filter(pidAlive);
}
