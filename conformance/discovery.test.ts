// Service discovery on cnm-bridge networks: the node's `cnm dns` answers pods by name, scoped to their own
// networks, forwards the rest, and goes away with the last endpoint that needs it. Real clients: dig
// (dnsutils) and busybox nslookup, run inside the pods' namespaces; a real dnsmasq as the upstream.
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin } from './harness/bins.ts';
import { filesUnder, makeDataDir, removeDataDir } from './harness/datadir.ts';
import {
  addPod,
  alive,
  connectOnce,
  delPod,
  dig,
  digUntil,
  discoveryNetwork,
  forceCleanup,
  leftovers,
  listening53,
  mustAddPod,
  nslookup,
  serveOwnAddress,
  serverPid,
  socketInodes,
  until,
  type DiscoveryNetwork,
  type Pod,
} from './harness/discovery.ts';
import { errorCode, invoke } from './harness/plugin.ts';
import { cniPath } from './harness/bridge.ts';
import { cleanupNetns, createNetns, type TestNetns } from './harness/netns.ts';
import { nftTables } from './harness/topology.ts';

let dataDir = '';
let runDir = '';
let seq = 0;
const cid = () => `d${process.pid}x${seq++}abcdef`;
const attached: Array<[DiscoveryNetwork, Pod]> = [];
const children: ResultPromise[] = [];
const upLinks: string[] = [];

async function pod(net: DiscoveryNetwork, name?: string, aliases: string[] = []): Promise<Pod> {
  const p = await mustAddPod(net, await createNetns('p'), cid(), name, aliases);
  attached.push([net, p]);
  return p;
}

async function unplug(net: DiscoveryNetwork, p: Pod): Promise<void> {
  await delPod(net, p);
  attached.splice(attached.findIndex(([, x]) => x === p), 1);
}

test.before.each(() => {
  dataDir = makeDataDir();
  runDir = mkdtempSync(`/tmp/cnmd-data-${process.pid}-run-`);
});

test.after.each(async () => {
  for (const c of children.splice(0)) c.kill('SIGTERM');
  for (const [net, p] of attached.splice(0)) await delPod(net, p).catch(() => undefined);
  await forceCleanup(dataDir, runDir);
  for (const l of upLinks.splice(0)) await execa('ip', ['link', 'del', l], { reject: false });
  await cleanupNetns();
  removeDataDir(dataDir);
  rmSync(runDir, { recursive: true, force: true });
});

const resolved = (ip: string) => (d: { answers: string[] }) => d.answers.includes(ip);

test('a pod resolves another by pod name, NAME.NAMESPACE and container ID (dig and busybox nslookup), PTR answers; NXDOMAIN after its DEL; the last DEL stops the server, nothing left', async () => {
  const net = discoveryNetwork(dataDir, runDir);
  const a = await pod(net, 'alpha');
  const b = await pod(net, 'bravo');
  assert.equal(a.result.dns, { nameservers: [net.gateway], search: ['cnm.internal'] }, "the result's dns names the gateway and the domain");

  const byName = await digUntil(a.ns, net.gateway, 'bravo.cnm.internal', resolved(b.ip));
  assert.equal(byName.answers, [b.ip], byName.raw);
  assert.equal((await dig(a.ns, net.gateway, 'bravo.default.cnm.internal')).answers, [b.ip], 'NAME.NAMESPACE');
  assert.equal((await dig(a.ns, net.gateway, `${b.id.slice(0, 12)}.cnm.internal`)).answers, [b.ip], 'the container ID');
  assert.equal((await dig(a.ns, net.gateway, 'bravo')).answers, [b.ip], 'a bare name');
  assert.equal((await dig(a.ns, net.gateway, 'bravo.cnm.internal', 'A', ['+tcp'])).answers, [b.ip], 'over TCP');
  const ptr = await dig(a.ns, net.gateway, b.ip, 'PTR');
  assert.equal(ptr.answers, ['bravo.cnm.internal.'], ptr.raw);
  const ns = await nslookup(a.ns, net.gateway, 'bravo.cnm.internal');
  assert.equal(ns.addresses, [b.ip], ns.raw);
  assert.is((await dig(a.ns, net.gateway, 'nobody.cnm.internal')).status, 'NXDOMAIN');

  const pid = serverPid(runDir)!;
  assert.ok(pid && alive(pid), 'one server runs');
  const sockets = await socketInodes(net.gateway);
  assert.is(sockets.length, 2, 'UDP and TCP on the gateway');
  const c = await pod(net, 'charlie');
  assert.equal((await digUntil(a.ns, net.gateway, 'charlie.cnm.internal', resolved(c.ip))).answers, [c.ip], 'a name added');
  await unplug(net, c);
  await unplug(net, b);
  const gone = await digUntil(a.ns, net.gateway, 'bravo.cnm.internal', (d) => d.status === 'NXDOMAIN');
  assert.is(gone.status, 'NXDOMAIN', gone.raw);
  assert.is(serverPid(runDir), pid, 'the same server: names change without a restart');
  assert.equal(await socketInodes(net.gateway), sockets, 'and without closing its sockets');

  await unplug(net, a);
  assert.ok(await until(() => !alive(pid)), 'the last DEL stops the server');
  assert.equal(await listening53([net.gateway]), [], 'no socket left');
  assert.equal(filesUnder(runDir), ['server.log'], 'no PID file, no store registered: only the log');
  assert.is((await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', net.name], { reject: false })).exitCode, 0);
  assert.equal(await leftovers(), []);
});

test('names do not resolve across isolated networks; one server answers on both gateways', async () => {
  const n1 = discoveryNetwork(dataDir, runDir);
  const n2 = discoveryNetwork(dataDir, runDir);
  const a = await pod(n1, 'left');
  const b = await pod(n2, 'right');
  assert.equal((await digUntil(a.ns, n1.gateway, 'left.cnm.internal', resolved(a.ip))).answers, [a.ip]);
  assert.equal((await digUntil(b.ns, n2.gateway, 'right.cnm.internal', resolved(b.ip))).answers, [b.ip]);
  assert.is((await dig(a.ns, n1.gateway, 'right.cnm.internal')).status, 'NXDOMAIN', 'n1 does not see n2');
  assert.is((await dig(b.ns, n2.gateway, 'left.cnm.internal')).status, 'NXDOMAIN', 'n2 does not see n1');
  assert.is((await dig(a.ns, n1.gateway, b.ip, 'PTR')).answers.length, 0, 'no PTR across networks');
  assert.is(new Set(readdirSync(runDir).filter((f) => f === 'pid')).size, 1);
});

test('an alias on three pods answers all three, in varying order', async () => {
  const net = discoveryNetwork(dataDir, runDir, { ttl: 2 });
  const client = await pod(net, 'client');
  const webs = [await pod(net, 'web-1', ['web']), await pod(net, 'web-2', ['web']), await pod(net, 'web-3', ['web'])];
  const want = webs.map((w) => w.ip).sort();
  const first = await digUntil(client.ns, net.gateway, 'web.cnm.internal', (d) => d.answers.length === 3);
  assert.equal([...first.answers].sort(), want, first.raw);
  assert.match(first.raw, /web\.cnm\.internal\.\s+2\s+IN\s+A/, 'the TTL configured');
  const orders = new Set<string>();
  for (let i = 0; i < 12 && orders.size < 2; i++) {
    const d = await dig(client.ns, net.gateway, 'web.cnm.internal');
    assert.equal([...d.answers].sort(), want);
    orders.add(d.answers.join(','));
  }
  assert.ok(orders.size > 1, 'the order varies between answers');
  const ns = await nslookup(client.ns, net.gateway, 'web.cnm.internal');
  assert.equal([...ns.addresses].sort(), want, ns.raw);
});

/** A resolver beyond the node: dnsmasq in a namespace of its own on a test-made veth. */
async function upstreamResolver(): Promise<{ ip: string; ns: TestNetns }> {
  const ns = await createNetns('up');
  const third = (process.pid % 8) * 30 + 29;
  const link = `cnmd${process.pid % 100000}u`.slice(0, 15);
  await execa('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.path]);
  upLinks.push(link);
  await execa('ip', ['addr', 'add', `172.21.${third}.1/24`, 'dev', link]);
  await execa('ip', ['link', 'set', link, 'up']);
  await execa('ip', ['-n', ns.name, 'addr', 'add', `172.21.${third}.2/24`, 'dev', 'eth0']);
  await execa('ip', ['-n', ns.name, 'link', 'set', 'eth0', 'up']);
  await execa('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
  const ip = `172.21.${third}.2`;
  const child = execa('ip', ['netns', 'exec', ns.name, 'dnsmasq', '--keep-in-foreground', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--pid-file', '--log-facility=-', `--listen-address=${ip}`, '--bind-interfaces', '--address=/upstream.test/192.0.2.55'], { reject: false, buffer: false });
  children.push(child);
  return { ip, ns };
}

test('names that are not ours go to the upstream the network names (a dnsmasq on a test-made address)', async () => {
  const up = await upstreamResolver();
  const net = discoveryNetwork(dataDir, runDir, { upstreams: [up.ip] });
  const a = await pod(net, 'asker');
  const d = await digUntil(a.ns, net.gateway, 'www.upstream.test', (x) => x.answers.length > 0);
  assert.equal(d.answers, ['192.0.2.55'], d.raw);
  assert.equal((await dig(a.ns, net.gateway, 'www.upstream.test', 'A', ['+tcp'])).answers, ['192.0.2.55'], 'over TCP too');
  assert.is((await dig(a.ns, net.gateway, 'asker.cnm.internal')).answers[0], a.ip, 'our own names still ours');
});

test('dead upstreams (one refusing, one silent) give SERVFAIL before the client gives up', async () => {
  const up = await upstreamResolver();
  const silent = up.ip.replace(/\.2$/, '.77');
  const net = discoveryNetwork(dataDir, runDir, { upstreams: [`${up.ip}:5399`, silent] });
  const a = await pod(net, 'asker');
  await digUntil(a.ns, net.gateway, 'asker.cnm.internal', resolved(a.ip));
  const d = await dig(a.ns, net.gateway, 'www.example.org');
  assert.is(d.timedOut, false, d.raw);
  assert.is(d.status, 'SERVFAIL', d.raw);
});

test('SIGKILL of the server is harmless: the next ADD starts another, which serves every name', async () => {
  const net = discoveryNetwork(dataDir, runDir);
  const a = await pod(net, 'first');
  await digUntil(a.ns, net.gateway, 'first.cnm.internal', resolved(a.ip));
  const pid = serverPid(runDir)!;
  process.kill(pid, 'SIGKILL');
  assert.ok(await until(() => !alive(pid)));
  const b = await pod(net, 'second');
  const d = await digUntil(b.ns, net.gateway, 'first.cnm.internal', resolved(a.ip));
  assert.equal(d.answers, [a.ip], d.raw);
  const now = serverPid(runDir)!;
  assert.ok(now !== pid && alive(now), 'a new server');
  process.kill(now, 'SIGTERM');
  assert.ok(await until(() => !alive(now)), 'SIGTERM stops it');
  assert.is(serverPid(runDir), undefined, 'and it gave its PID file up');
});

test('VIP: the alias resolves to one address of the subnet that no pod gets; connections to it reach every endpoint and stop reaching a deleted one', async () => {
  const net = discoveryNetwork(dataDir, runDir, {}, { vip: true });
  const client = await pod(net, 'client');
  const webs = [await pod(net, 'web-1', ['web']), await pod(net, 'web-2', ['web']), await pod(net, 'web-3', ['web'])];
  for (const w of webs) {
    const server = serveOwnAddress(w.ns, 8080);
    children.push(server);
  }
  const d = await digUntil(client.ns, net.gateway, 'web.cnm.internal', (x) => x.answers.length === 1);
  assert.is(d.answers.length, 1, d.raw);
  const vip = d.answers[0]!;
  assert.ok(vip.startsWith(net.gateway.replace(/\.1$/, '.')), `the VIP ${vip} is in the network's subnet`);
  assert.not.ok([client, ...webs].some((p) => p.ip === vip), 'no pod has it');
  assert.ok(filesUnder(`${dataDir}/ipam`).some((f) => f.endsWith(`/${vip}`)), 'IPAM holds it');
  assert.equal((await dig(client.ns, net.gateway, 'web-2.cnm.internal')).answers, [webs[1]!.ip], "a pod's own name is still its address");

  const reached = async (n: number) => {
    const seen: string[] = [];
    for (let i = 0; i < n; i++) seen.push(await connectOnce(client.ns, vip, 8080));
    return seen;
  };
  assert.ok(await until(async () => !(await connectOnce(client.ns, vip, 8080)).startsWith('FAIL'), 10_000), 'the servers listen');
  const before = await reached(9);
  assert.equal([...new Set(before)].sort(), webs.map((w) => w.ip).sort(), `every endpoint reached: ${before.join(' ')}`);

  // GC with every pod still valid keeps the VIP: its reservation is no pod's attachment, yet not garbage.
  const valid = [client, ...webs].map((p) => ({ containerID: p.id, ifname: 'eth0' }));
  const gc = await invoke(bin('cnm-bridge'), { command: 'GC', path: cniPath() }, { ...net.conf, 'cni.dev/valid-attachments': valid });
  assert.is(gc.exitCode, 0, gc.stdout);
  assert.ok(filesUnder(`${dataDir}/ipam`).some((f) => f.endsWith(`/${vip}`)), 'GC kept the VIP reserved');

  await unplug(net, webs[0]!);
  const after = await reached(8);
  assert.equal([...new Set(after)].sort(), [webs[1]!.ip, webs[2]!.ip].sort(), `the deleted endpoint is no longer reached: ${after.join(' ')}`);

  await unplug(net, webs[1]!);
  await unplug(net, webs[2]!);
  assert.not.ok(filesUnder(`${dataDir}/ipam`).some((f) => f.endsWith(`/${vip}`)), 'the VIP is released with its last endpoint');
  assert.equal(await nftTables(`cnm_${net.name}_vip`), [], 'its DNAT table is gone');
  const { stdout } = await execa('ip', ['-br', 'addr', 'show', 'dev', net.bridge]);
  assert.not.match(stdout, vip, 'the bridge no longer answers for it');
});

test('bad serviceDiscovery or aliases: CNI error 7 naming the key, nothing left', async () => {
  const ns = await createNetns('bad');
  for (const [extra, words] of [
    [{ upstreams: ['resolver.example'] }, 'upstreams[0]'],
    [{ domain: 'not a domain' }, 'serviceDiscovery.domain'],
  ] as const) {
    const net = discoveryNetwork(dataDir, runDir, extra);
    const r = await addPod(net, ns, cid(), 'x');
    assert.is(errorCode(r), 7, r.stdout);
    assert.match(String(r.json!.msg), words);
  }
  const net = discoveryNetwork(dataDir, runDir);
  const r = await addPod(net, ns, cid(), 'x', ['bad alias']);
  assert.is(errorCode(r), 7, r.stdout);
  assert.match(String(r.json!.msg), 'bad alias');
  assert.equal(await leftovers(), []);
  assert.is(serverPid(runDir), undefined, 'no server started');
});

test.run();
