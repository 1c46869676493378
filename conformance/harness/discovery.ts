// Service discovery suites: cnm-bridge networks with serviceDiscovery on their own subnets (172.21.N.0/24),
// bridges and networks named cnmd<pid>..., a DNS server with a run dir of the test's own, and real DNS
// clients (dig, busybox nslookup) run inside pod namespaces.
import { execa, type ResultPromise } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { bin } from './bins.ts';
import { bridgeNetwork, cniPath } from './bridge.ts';
import { invoke, type Invocation } from './plugin.ts';
import type { TestNetns } from './netns.ts';
import { nftTables, nodeLinks } from './topology.ts';

export const PREFIX = `cnmd${process.pid}`;
let seq = 0;

export interface DiscoveryNetwork {
  name: string;
  bridge: string;
  subnet: string;
  gateway: string;
  conf: Record<string, unknown>;
}

/** A network with serviceDiscovery, its own bridge and subnet; `discovery` is merged into the serviceDiscovery object. */
export function discoveryNetwork(dataDir: string, runDir: string, discovery: Record<string, unknown> = {}, options: Record<string, unknown> = {}): DiscoveryNetwork {
  const n = seq++;
  const third = (process.pid % 8) * 30 + n;
  const subnet = `172.21.${third}.0/24`;
  const name = `${PREFIX}n${n}`;
  const bridge = `cnmd${process.pid % 100000}b${n}`.slice(0, 15);
  const { conf } = bridgeNetwork(dataDir, {
    name,
    bridge,
    serviceDiscovery: { runDir, ...discovery },
    capabilities: { aliases: true },
    ipam: { type: 'cnm-host-local', ranges: [[{ subnet }]] },
    ...options,
  });
  return { name, bridge, subnet, gateway: `172.21.${third}.1`, conf };
}

export interface Pod {
  ns: TestNetns;
  id: string;
  ip: string;
  result: Record<string, unknown>;
}

/** ADD as a runtime does, with the pod's name in CNI_ARGS and its aliases in runtimeConfig. */
export async function addPod(net: DiscoveryNetwork, ns: TestNetns, id: string, podName?: string, aliases: string[] = [], namespace = 'default'): Promise<Invocation> {
  const args = podName ? `K8S_POD_NAME=${podName};K8S_POD_NAMESPACE=${namespace}` : undefined;
  const conf = aliases.length ? { ...net.conf, runtimeConfig: { aliases: { [net.name]: aliases } } } : net.conf;
  return invoke(bin('cnm-bridge'), { command: 'ADD', containerId: id, netns: ns.path, ifname: 'eth0', path: cniPath(), args }, conf, { extraEnv: { CNM_LOG_LEVEL: 'debug' } });
}

export async function mustAddPod(net: DiscoveryNetwork, ns: TestNetns, id: string, podName?: string, aliases: string[] = []): Promise<Pod> {
  const r = await addPod(net, ns, id, podName, aliases);
  if (r.exitCode !== 0) throw new Error(`ADD ${id} failed: ${r.stdout} ${r.stderr}`);
  const ip = (r.json!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;
  return { ns, id, ip, result: r.json! };
}

export async function delPod(net: DiscoveryNetwork, pod: Pod): Promise<void> {
  const r = await invoke(bin('cnm-bridge'), { command: 'DEL', containerId: pod.id, netns: pod.ns.path, ifname: 'eth0', path: cniPath() }, net.conf);
  if (r.exitCode !== 0) throw new Error(`DEL ${pod.id} failed: ${r.stdout} ${r.stderr}`);
}

export interface Dig {
  status: string;
  answers: string[];
  /** dig gave up: no reply within its timeout. */
  timedOut: boolean;
  raw: string;
}

/** dig from inside a namespace: one try, dig's own 5 s timeout. */
export async function dig(ns: TestNetns, server: string, name: string, type = 'A', extra: string[] = []): Promise<Dig> {
  const query = type === 'PTR' ? ['-x', name] : [name, type];
  const r = await execa('ip', ['netns', 'exec', ns.name, 'dig', `@${server}`, ...query, '+tries=1', '+time=5', ...extra], { reject: false });
  const raw = r.stdout;
  const status = /status: (\w+)/.exec(raw)?.[1] ?? '';
  const section = raw.split(';; ANSWER SECTION:')[1]?.split('\n\n')[0] ?? '';
  const answers = section.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 5 && f[3] === type).map((f) => f[4]!);
  return { status, answers, timedOut: /timed out|no servers could be reached/.test(raw), raw };
}

/** Polls dig until check passes (a new server binds its gateway within a poll of 2 s). */
export async function digUntil(ns: TestNetns, server: string, name: string, check: (d: Dig) => boolean, type = 'A', deadlineMs = 20_000): Promise<Dig> {
  const end = Date.now() + deadlineMs;
  let last: Dig;
  do {
    last = await dig(ns, server, name, type);
    if (check(last)) return last;
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < end);
  return last;
}

/** busybox nslookup (a second client, as in small images), the addresses it printed for the name. */
export async function nslookup(ns: TestNetns, server: string, name: string): Promise<{ addresses: string[]; raw: string }> {
  const r = await execa('ip', ['netns', 'exec', ns.name, 'busybox', 'nslookup', name, server], { reject: false, timeout: 30_000 });
  const raw = `${r.stdout}\n${r.stderr}`;
  // The first block names the server; the answers follow it.
  const answers = r.stdout.split('\n\n').slice(1).join('\n');
  return { addresses: [...answers.matchAll(/^Address(?: \d+)?:\s+([0-9a-f.:]+)$/gm)].map((m) => m[1]!), raw };
}

export const pidFile = (runDir: string) => `${runDir}/pid`;

export function serverPid(runDir: string): number | undefined {
  if (!existsSync(pidFile(runDir))) return undefined;
  const pid = Number(readFileSync(pidFile(runDir), 'utf8'));
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function until(check: () => boolean | Promise<boolean>, deadlineMs = 20_000): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

/** Sockets on port 53 of the given addresses (what a stopped server must not leave). */
export async function listening53(addresses: string[]): Promise<string[]> {
  const { stdout } = await execa('ss', ['-Hlnu', '-t', 'sport = :53'], { reject: false });
  return stdout.split('\n').filter((l) => addresses.some((a) => l.includes(`${a}:53`)));
}

/** The socket inodes listening on address:53 (UDP and TCP): the same inodes mean the sockets stayed open. */
export async function socketInodes(address: string): Promise<string[]> {
  const { stdout } = await execa('ss', ['-Hlnue', '-t', 'sport = :53'], { reject: false });
  return stdout.split('\n').filter((l) => l.includes(`${address}:53`)).map((l) => /ino:(\d+)/.exec(l)?.[1] ?? '?').sort();
}

/** A server in a pod that answers each TCP connection with its own address (which backend a VIP reached). */
export function serveOwnAddress(ns: TestNetns, port: number): ResultPromise {
  const code = `require('net').createServer((c) => c.end(c.localAddress.replace(/^::ffff:/, '') + '\\n')).listen(${port}, () => console.log('ready')); setTimeout(() => process.exit(0), 120000);`;
  return execa('ip', ['netns', 'exec', ns.name, process.execPath, '-e', code], { reject: false, buffer: false });
}

/** One TCP connection from a namespace; the line the server sent. */
export async function connectOnce(ns: TestNetns, host: string, port: number): Promise<string> {
  const code = `const c = require('net').connect(${port}, '${host}'); let d = ''; c.on('data', (x) => d += x); c.on('end', () => { console.log(d.trim()); process.exit(0); }); c.on('error', (e) => { console.log('FAIL ' + e.code); process.exit(1); }); setTimeout(() => { console.log('FAIL timeout'); process.exit(1); }, 3000);`;
  const r = await execa('ip', ['netns', 'exec', ns.name, process.execPath, '-e', code], { reject: false });
  return r.stdout.trim();
}

/** What a discovery test may leave: no link, nft table or network of ours. */
export async function leftovers(): Promise<string[]> {
  return [...(await nodeLinks(`cnmd${process.pid % 100000}b`)), ...(await nftTables(`cnm_${PREFIX}`))];
}

/** Removes whatever a failed test left: networks through `cnm network prune`, the server by its PID, links and tables by name. */
export async function forceCleanup(dataDir: string, runDir: string): Promise<void> {
  await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'prune'], { reject: false });
  const pid = serverPid(runDir);
  if (pid && alive(pid)) process.kill(pid, 'SIGTERM');
  for (const l of await nodeLinks(`cnmd${process.pid % 100000}b`)) await execa('ip', ['link', 'del', l], { reject: false });
  for (const t of await nftTables(`cnm_${PREFIX}`)) {
    const [family, name] = t.split(' ');
    await execa('nft', ['delete', 'table', family!, name!], { reject: false });
  }
}
