import { execa } from 'execa';
import type { Test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeDataDir, removeDataDir } from './datadir.ts';
import { cleanupNetns } from './netns.ts';
import { shortHash } from '../../shared/cnm/names.ts';
import { bin, BIN_DIR, REFERENCE_DIR } from './bins.ts';
import { errorCode, invoke, type Invocation } from './plugin.ts';
import type { TestNetns } from './netns.ts';
import { cleanupLinks, nftTables } from './topology.ts';

/** Names every bridge test object carries: links `cnmt*`, networks `cnmt*` (so nft tables `cnm_cnmt*`). */
export const LINK_PREFIX = 'cnmt';
let seq = 0;

export interface TestNetwork {
  name: string;
  bridge: string;
  subnet: string;
  subnet6: string;
  gateway: string;
  conf: Record<string, unknown>;
}

/** A cnm-bridge network config with its own name, bridge and subnets (10.100+n.P.0/24, fd99:P:n::/64). */
export function bridgeNetwork(dataDir: string, options: Record<string, unknown> = {}, dualStack = false): TestNetwork {
  const n = seq++;
  const p = process.pid % 250;
  const name = `cnmt${process.pid}n${n}`;
  const bridge = `cnmtb${process.pid % 100000}n${n}`.slice(0, 15);
  const subnet = `10.${100 + n}.${p}.0/24`;
  const subnet6 = `fd99:${p.toString(16)}:${n.toString(16)}::/64`;
  const ranges: unknown[] = [[{ subnet }]];
  if (dualStack) ranges.push([{ subnet: subnet6 }]);
  const conf = {
    cniVersion: '1.1.0',
    name,
    type: 'cnm-bridge',
    bridge,
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: true,
    dataDir,
    ipam: { type: 'cnm-host-local', ranges },
    ...options,
  };
  return { name, bridge, subnet, subnet6, gateway: `10.${100 + n}.${p}.1`, conf };
}

export function cniPath(): string {
  return `${BIN_DIR}:${REFERENCE_DIR}`;
}

export async function add(conf: object, ns: TestNetns, containerId: string, ifname = 'eth0', args?: string): Promise<Invocation> {
  return invoke(bin('cnm-bridge'), { command: 'ADD', containerId, netns: ns.path, ifname, path: cniPath(), args }, conf);
}

export async function del(conf: object, ns: TestNetns | undefined, containerId: string, ifname = 'eth0'): Promise<Invocation> {
  return invoke(bin('cnm-bridge'), { command: 'DEL', containerId, netns: ns?.path, ifname, path: cniPath() }, conf);
}

export async function check(conf: object, ns: TestNetns, containerId: string, prevResult: unknown, ifname = 'eth0'): Promise<Invocation> {
  return invoke(bin('cnm-bridge'), { command: 'CHECK', containerId, netns: ns.path, ifname, path: cniPath() }, { ...conf, prevResult });
}

/** Starts a cnm-bridge ADD as a runtime does and SIGKILLs it after up to maxMs; says whether it died mid-way. */
export async function addKilled(conf: object, ns: TestNetns, containerId: string, minMs: number, maxMs: number): Promise<boolean> {
  const child = execa(bin('cnm-bridge'), [], {
    input: JSON.stringify(conf),
    env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: containerId, CNI_NETNS: ns.path, CNI_IFNAME: 'eth0', CNI_PATH: BIN_DIR, PATH: '/usr/sbin:/sbin' },
    extendEnv: false,
    reject: false,
  });
  await new Promise((r) => setTimeout(r, minMs + Math.random() * (maxMs - minMs)));
  child.kill('SIGKILL');
  return (await child).signal === 'SIGKILL';
}

/**
 * The killed-ADD rounds: one ADD and DEL to warm up, then `rounds` times an ADD SIGKILLed after `minMs`-`maxMs`,
 * the DEL that must clean up after it (it must succeed), and `afterDel` to check what the round left. Returns how
 * many ADDs died mid-way.
 */
export async function killedAddRounds(
  conf: object,
  pod: TestNetns,
  idPrefix: string,
  o: { rounds: number; minMs: number; maxMs: number },
  afterDel: (id: string, round: number) => Promise<void> | void,
): Promise<number> {
  await mustAdd(conf, pod, 'warm-up');
  assert.is((await del(conf, pod, 'warm-up')).exitCode, 0);
  let killedMidway = 0;
  for (let i = 0; i < o.rounds; i++) {
    const id = `${idPrefix}${i}`;
    if (await addKilled(conf, pod, id, o.minMs, o.maxMs)) killedMidway++;
    const d = await del(conf, pod, id);
    assert.is(d.exitCode, 0, `DEL after kill #${i}: ${d.stdout}`);
    await afterDel(id, i);
  }
  return killedMidway;
}

/** Adds and fails the test with the plugin's own words when it does not succeed. */
export async function mustAdd(conf: object, ns: TestNetns, containerId: string, ifname = 'eth0'): Promise<{ ip: string; ip6?: string; result: Record<string, unknown> }> {
  const r = await add(conf, ns, containerId, ifname);
  if (r.exitCode !== 0) throw new Error(`ADD ${containerId} failed: ${r.stdout} ${r.stderr}`);
  const ips = (r.json!.ips as Array<{ address: string }>).map((i) => i.address.split('/')[0]!);
  return { ip: ips.find((i) => !i.includes(':'))!, ip6: ips.find((i) => i.includes(':')), result: r.json! };
}

export { errorCode };

export function isolationTableOf(dataDir: string): string {
  return `cnm_isolation_${shortHash(dataDir).slice(0, 8)}`;
}

/**
 * Host veths (cnmv*) and ifb devices (cnmb*) that existed before the suite ran (a real cnm-cni on this machine):
 * never ours to judge or remove.
 */
let vethsBefore: Set<string> | undefined;
export async function snapshotVeths(): Promise<void> {
  vethsBefore ??= new Set((await nodeLinkMasters()).filter((l) => isEndpointLink(l.ifname)).map((l) => l.ifname));
}

const isEndpointLink = (name: string) => /^cnm[vb][0-9a-f]{10}$/.test(name);
/** Every test-made name carries the pid (or its last digits); other suites run at the same time on this machine. */
const OWN = String(process.pid % 10000);
const isOwnTestLink = (name: string) => name.startsWith(LINK_PREFIX) && !name.startsWith('cnmtup') && name.includes(OWN);

interface NodeLink {
  ifname: string;
  master?: string;
  /** For a veth: the netns id its peer is in (`ip netns list` ids). */
  link_netnsid?: number;
}

async function nodeLinkMasters(): Promise<NodeLink[]> {
  return JSON.parse((await execa('ip', ['-j', '-d', 'link', 'show'])).stdout) as NodeLink[];
}

/**
 * This process's test links: its bridges; veths that appeared since the snapshot on one of its bridges or with
 * their pod end in one of its namespaces; ifbs (only cnm-bridge makes cnmb*) on no bridge. Another process's
 * test links, even orphaned ones, are not judged.
 */
async function ownLinks(): Promise<string[]> {
  const all = await nodeLinkMasters();
  const { stdout } = await execa('ip', ['-j', 'netns', 'list']);
  const nsIds = new Set((stdout.trim() ? (JSON.parse(stdout) as Array<{ name: string; id?: number }>) : []).filter((n) => n.name.startsWith(`cnmt-${process.pid}-`)).map((n) => n.id));
  const bridges = all.filter((l) => isOwnTestLink(l.ifname)).map((l) => l.ifname);
  const ours = (l: NodeLink) =>
    (l.master !== undefined && bridges.includes(l.master)) ||
    (l.link_netnsid !== undefined && nsIds.has(l.link_netnsid)) ||
    (l.ifname.startsWith('cnmb') && l.master === undefined);
  const endpoints = all.filter((l) => isEndpointLink(l.ifname) && !vethsBefore?.has(l.ifname) && ours(l));
  return [...bridges, ...endpoints.map((l) => l.ifname)];
}

const ownTables = async (dataDir: string) => [...(await nftTables(`cnm_${LINK_PREFIX}${process.pid}`)), ...(await nftTables(isolationTableOf(dataDir)))];

/** What a bridge test may leave: nothing (no bridge, veth, ifb or table). Lists what is there. */
export async function leftovers(dataDir: string): Promise<string[]> {
  return [...(await ownLinks()), ...(await ownTables(dataDir))];
}

/** Removes whatever a failed test left: networks through `cnm network rm`, then anything still named ours. */
export async function forceCleanup(dataDir: string): Promise<void> {
  await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'prune'], { reject: false });
  await cleanupLinks();
  for (const l of await ownLinks()) await execa('ip', ['link', 'del', l], { reject: false });
  for (const t of await ownTables(dataDir)) {
    const [family, name] = t.split(' ');
    await execa('nft', ['delete', 'table', family!, name!], { reject: false });
  }
}

/**
 * The hooks every bridge suite shares: a store of its own per test (handed to `use`), and after each test
 * `stop` (the suite's servers), then everything the test left on the node removed and the store deleted.
 */
export function storePerTest(suite: Test, use: (dataDir: string) => void, stop: () => Promise<void>): void {
  let dataDir = '';
  suite.before(snapshotVeths);
  suite.before.each(() => {
    dataDir = makeDataDir();
    use(dataDir);
  });
  suite.after.each(async () => {
    await stop();
    await forceCleanup(dataDir);
    await cleanupNetns();
    await cleanupLinks();
    removeDataDir(dataDir);
  });
}
