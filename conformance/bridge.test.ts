// cnm-bridge with real pod traffic: namespaces for pods and for an "outside" host, test-made links only.
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin, BIN_DIR, REFERENCE_DIR } from './harness/bins.ts';
import { ConflistRunner } from './harness/conflist.ts';
import { add, bridgeNetwork, check, del, errorCode, leftovers, mustAdd, storePerTest } from './harness/bridge.ts';
import { filesUnder } from './harness/datadir.ts';
import { createNetns } from './harness/netns.ts';
import { createOutside } from './harness/topology.ts';
import { reach, serve, stopAllServers } from './harness/traffic.ts';

let dataDir = '';
let seq = 0;
const cid = () => `b${process.pid}x${seq++}`;
const reservations = () => filesUnder(`${dataDir}/ipam`).filter((f) => /\/[0-9a-f.:]+$/.test(f) && !f.includes('last_reserved'));

storePerTest(test, (d) => (dataDir = d), stopAllServers);

async function rm(...names: string[]): Promise<void> {
  const r = await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', ...names], { reject: false });
  assert.is(r.exitCode, 0, `cnm network rm: ${r.stderr}`);
}

test('two pods on one bridge exchange TCP and UDP; a pod reaches the node; DEL and network rm leave nothing', async () => {
  const net = bridgeNetwork(dataDir);
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const [ida, idb] = [cid(), cid()];
  const pa = await mustAdd(net.conf, a, ida);
  const pb = await mustAdd(net.conf, b, idb);
  await serve(b, 'tcp', pb.ip, 8080);
  await serve(b, 'udp', pb.ip, 8081);
  assert.is(await reach(a, 'tcp', pb.ip, 8080), pa.ip, 'TCP a -> b, b sees a');
  assert.is(await reach(a, 'udp', pb.ip, 8081), pa.ip, 'UDP a -> b');
  await serve(undefined, 'tcp', net.gateway, 8082);
  assert.is(await reach(a, 'tcp', net.gateway, 8082), pa.ip, 'a pod reaches the node at its gateway');

  const result = pa.result as { interfaces: Array<{ name: string; sandbox?: string }> };
  assert.equal(result.interfaces.map((i) => i.name).slice(0, 1), [net.bridge], 'the result lists the bridge first');
  assert.is(result.interfaces[2]!.name, 'eth0');
  assert.is(result.interfaces[2]!.sandbox, a.path);

  for (const [ns, id] of [[a, ida], [b, idb]] as const) assert.is((await del(net.conf, ns, id)).exitCode, 0);
  assert.equal(reservations(), [], 'no reservation left');
  assert.equal(filesUnder(`${dataDir}/endpoints`), []);
  await rm(net.name);
  assert.equal(await leftovers(dataDir), [], 'no bridge, veth or nft table left');
  assert.equal(filesUnder(dataDir).filter((f) => !f.startsWith('locks/')), []);
});

test('16 concurrent first ADDs create one network, hand out 16 distinct addresses, and 16 concurrent DELs leave nothing', async () => {
  const net = bridgeNetwork(dataDir);
  const pods = await Promise.all(Array.from({ length: 16 }, (_, i) => createNetns(`c${i}`)));
  const ids = pods.map(() => cid());
  const added = await Promise.all(pods.map((ns, i) => add(net.conf, ns, ids[i]!)));
  for (const r of added) assert.is(r.exitCode, 0, r.stdout + r.stderr);
  const ips = added.map((r) => (r.json!.ips as Array<{ address: string }>)[0]!.address);
  assert.is(new Set(ips).size, 16, 'no address twice');
  assert.equal(filesUnder(`${dataDir}/networks`), [`${net.name}.json`], 'one network record');
  const tables = (await execa('nft', ['list', 'tables'])).stdout.split('\n').filter((l) => l.includes(`cnm_${net.name}`));
  assert.equal(tables, [`table inet cnm_${net.name}`], 'one nft table');
  const ports = JSON.parse((await execa('ip', ['-j', 'link', 'show', 'master', net.bridge])).stdout);
  assert.is(ports.length, 16, 'every pod is on the one bridge');
  const deleted = await Promise.all(pods.map((ns, i) => del(net.conf, ns, ids[i]!)));
  for (const r of deleted) assert.is(r.exitCode, 0, r.stdout);
  assert.equal(reservations(), []);
  assert.equal(filesUnder(`${dataDir}/endpoints`), []);
  await rm(net.name);
  assert.equal(await leftovers(dataDir), []);
});

test('masquerade: a pod reaches an outside host, which sees the node; the outside host reaches a pod through a hostPort; hairpin works', async () => {
  const out = await createOutside();
  const net = bridgeNetwork(dataDir, { capabilities: { portMappings: true } });
  const pod = await createNetns('pod');
  const id = cid();
  const conf = { ...net.conf, runtimeConfig: { portMappings: [{ hostPort: 30080, containerPort: 80, protocol: 'tcp' }, { hostPort: 30081, containerPort: 81, protocol: 'udp' }] } };
  const p = await mustAdd(conf, pod, id);
  await serve(out.ns, 'tcp', out.ip, 9000);
  assert.is(await reach(pod, 'tcp', out.ip, 9000), out.nodeIp, 'the outside host sees the node address');

  await serve(pod, 'tcp', '0.0.0.0', 80);
  await serve(pod, 'udp', '0.0.0.0', 81);
  assert.is(await reach(out.ns, 'tcp', out.nodeIp, 30080), out.ip, 'outside -> hostPort 30080/tcp -> pod:80');
  assert.is(await reach(out.ns, 'udp', out.nodeIp, 30081), out.ip, 'outside -> hostPort 30081/udp -> pod:81');
  assert.ok(await reach(pod, 'tcp', out.nodeIp, 30080), 'the pod reaches its own hostPort (hairpin)');
  assert.ok(await reach(undefined, 'tcp', out.nodeIp, 30080), 'the node itself reaches the hostPort');

  const chk = await check(conf, pod, id, p.result);
  assert.is(chk.exitCode, 0, chk.stdout);
  assert.is((await del(conf, pod, id)).exitCode, 0);
  assert.is(await reach(out.ns, 'tcp', out.nodeIp, 30080), undefined, 'the hostPort is gone with the pod');
  const table = await execa('nft', ['list', 'table', 'inet', `cnm_${net.name}`]);
  assert.not.match(table.stdout, '30080', 'DEL removed the mapping');
  assert.not.match(table.stdout, p.ip, 'DEL removed the masquerade element');
  await rm(net.name);
  assert.equal(await leftovers(dataDir), []);
});

test('icc false: pods of the bridge cannot reach each other, but reach the outside', async () => {
  const out = await createOutside();
  const net = bridgeNetwork(dataDir, { icc: false });
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  await mustAdd(net.conf, a, cid());
  const pb = await mustAdd(net.conf, b, cid());
  await serve(b, 'tcp', pb.ip, 8080);
  await serve(out.ns, 'tcp', out.ip, 9000);
  assert.is(await reach(a, 'tcp', pb.ip, 8080), undefined, 'pod-to-pod is blocked');
  assert.is(await reach(a, 'tcp', out.ip, 9000), out.nodeIp, 'pod-to-outside works');
});

test('internal: pods reach each other but nothing beyond the node, and nothing beyond reaches them', async () => {
  const out = await createOutside();
  const net = bridgeNetwork(dataDir, { internal: true, ipMasq: false });
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const pa = await mustAdd(net.conf, a, cid());
  const pb = await mustAdd(net.conf, b, cid());
  await serve(b, 'tcp', pb.ip, 8080);
  await serve(out.ns, 'tcp', out.ip, 9000);
  assert.is(await reach(a, 'tcp', pb.ip, 8080), pa.ip, 'inside the network traffic flows');
  assert.is(await reach(a, 'tcp', out.ip, 9000), undefined, 'no way out');
  await execa('ip', ['-n', out.ns.name, 'route', 'add', net.subnet, 'via', out.nodeIp]);
  assert.is(await reach(out.ns, 'tcp', pb.ip, 8080), undefined, 'no way in');
});

test('two bridge networks are isolated from each other', async () => {
  const n1 = bridgeNetwork(dataDir);
  const n2 = bridgeNetwork(dataDir);
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  await mustAdd(n1.conf, a, cid());
  const pb = await mustAdd(n2.conf, b, cid());
  await serve(b, 'tcp', pb.ip, 8080);
  assert.is(await reach(a, 'tcp', pb.ip, 8080), undefined, 'network 1 cannot reach network 2');
  await serve(undefined, 'tcp', n2.gateway, 8083);
  assert.ok(await reach(b, 'tcp', n2.gateway, 8083), 'network 2 still reaches its node');
});

test('dual stack: pods get an IPv4 and an IPv6 address and reach each other over IPv6', async () => {
  const net = bridgeNetwork(dataDir, {}, true);
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const pa = await mustAdd(net.conf, a, cid());
  const pb = await mustAdd(net.conf, b, cid());
  assert.ok(pa.ip6 && pb.ip6, 'both pods have IPv6');
  await serve(b, 'tcp', pb.ip6!, 8080);
  assert.is(await reach(a, 'tcp', pb.ip6!, 8080), pa.ip6);
  const routes = await execa('ip', ['-n', a.name, '-6', 'route', 'show', 'default']);
  assert.match(routes.stdout, 'default via', 'an IPv6 default route via the bridge');
});

test('enabledad: IPv6 addresses go through duplicate address detection only when asked', async () => {
  const plain = bridgeNetwork(dataDir, {}, true);
  const dad = bridgeNetwork(dataDir, { enabledad: true }, true);
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  await mustAdd(plain.conf, a, cid());
  await mustAdd(dad.conf, b, cid());
  const flags = async (ns: string) => (await execa('ip', ['-n', ns, '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global'])).stdout;
  assert.match(await flags(a.name), 'nodad', 'by default the address skips DAD, as the reference bridge does');
  assert.not.match(await flags(b.name), 'nodad', 'with enabledad it does not');
});

test('DEL answers only once the pod\'s links are gone: the same container ADDs again at once, ten times over', async () => {
  const net = bridgeNetwork(dataDir);
  const ns = await createNetns('again');
  const id = cid();
  for (let round = 0; round < 10; round++) {
    const pod = await mustAdd(net.conf, ns, id);
    const hostVeth = (pod.result as { interfaces: Array<{ name: string }> }).interfaces[1]!.name;
    assert.is((await del(net.conf, ns, id)).exitCode, 0);
    // Read at once, without starting a process: the kernel unlists a deleted veth ~2 ms after `ip link del` starts.
    assert.not.ok(existsSync(`/sys/class/net/${hostVeth}`), `round ${round}: ${hostVeth} is still listed on the node when DEL answers`);
  }
  const inPod = await execa('ip', ['-n', ns.name, 'link', 'show', 'eth0'], { reject: false });
  assert.is.not(inPod.exitCode, 0, 'the pod end went with the host end');
  assert.equal(reservations(), [], 'no reservation left');
  await rm(net.name);
  assert.equal(await leftovers(dataDir), [], 'no bridge, veth or nft table left');
});

test('CHECK passes on a healthy pod and fails when its address or veth is gone; GC removes what is not valid', async () => {
  const net = bridgeNetwork(dataDir, { capabilities: { portMappings: true } });
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const [ida, idb] = [cid(), cid()];
  const pa = await mustAdd(net.conf, a, ida);
  const pb = await mustAdd({ ...net.conf, runtimeConfig: { portMappings: [{ hostPort: 30090, containerPort: 80 }] } }, b, idb);
  assert.is((await check(net.conf, a, ida, pa.result)).exitCode, 0);
  await execa('ip', ['-n', a.name, 'addr', 'flush', 'dev', 'eth0']);
  const broken = await check(net.conf, a, ida, pa.result);
  assert.is(errorCode(broken), 104, broken.stdout);
  assert.match(String(broken.json!.msg), pa.ip);

  const gc = await execa(bin('cnm-bridge'), [], {
    input: JSON.stringify({ ...net.conf, 'cni.dev/valid-attachments': [{ containerID: ida, ifname: 'eth0' }] }),
    env: { CNI_COMMAND: 'GC', CNI_PATH: '/nonexistent' },
    extendEnv: false,
    reject: false,
  });
  assert.is(gc.exitCode, 0, gc.stdout);
  assert.equal(filesUnder(`${dataDir}/endpoints`), [`${net.name}/${ida}:eth0.json`], 'only the valid endpoint is left');
  assert.equal(reservations().map((f) => f.split('/').pop()), [pa.ip], 'only the valid reservation is left');
  const table = await execa('nft', ['list', 'table', 'inet', `cnm_${net.name}`]);
  assert.not.match(table.stdout, '30090', 'GC removed the hostPort of the collected pod');
  const links = await execa('ip', ['-n', b.name, 'link', 'show', 'eth0'], { reject: false });
  assert.is(links.exitCode, 1, 'GC removed the collected pod interface');
  void pb;
});

test("cnitool's gc (no list) through a libcni-style runner collects every pod, one the cache lost too", async () => {
  const net = bridgeNetwork(dataDir);
  const { name, cniVersion, ...plugin } = net.conf as { name: string; cniVersion: string; type: string };
  const runner = new ConflistRunner({ cniVersion, name, plugins: [plugin] }, [BIN_DIR, REFERENCE_DIR], `${dataDir}/libcni-cache`);
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  await runner.add({ containerId: cid(), netns: a.path, ifname: 'eth0' });
  await mustAdd(net.conf, b, cid());
  assert.is(reservations().length, 2);
  await runner.gc();
  assert.equal(filesUnder(`${dataDir}/endpoints`), [], 'no endpoint record is left');
  assert.equal(reservations(), [], 'no reservation is left');
  for (const ns of [a, b]) assert.is((await execa('ip', ['-n', ns.name, 'link', 'show', 'eth0'], { reject: false })).exitCode, 1, `eth0 is gone from ${ns.name}`);
  await rm(net.name);
  assert.equal(await leftovers(dataDir), []);
});

test('bad configs are refused before anything is touched, each naming the conflict', async () => {
  const base = bridgeNetwork(dataDir);
  const pod = await createNetns('pod');
  const fails = async (what: string, conf: object, code: number, words: string) => {
    const r = await add(conf, pod, cid());
    assert.is(errorCode(r), code, `${what}: ${r.stdout}`);
    assert.match(String(r.json!.msg), words, `${what}: message names it`);
  };
  await fails('overlaps a node route', { ...base.conf, ipam: { type: 'cnm-host-local', subnet: '192.0.2.0/25' } }, 7, 'overlaps route');
  await execa('ip', ['link', 'add', 'cnmtnotbr', 'type', 'veth', 'peer', 'name', 'cnmtnotbrp']);
  await fails('bridge is not a bridge', { ...base.conf, bridge: 'cnmtnotbr' }, 7, 'not a bridge');
  await execa('ip', ['link', 'del', 'cnmtnotbr']);
  await fails('mtu out of range', { ...base.conf, mtu: 20 }, 7, 'mtu');
  await fails('internal with ipMasq', { ...base.conf, internal: true }, 7, 'internal');
  await fails('bad hostPort', { ...base.conf, runtimeConfig: { portMappings: [{ hostPort: 70000, containerPort: 80 }] } }, 7, 'hostPort');

  const first = await mustAdd(base.conf, pod, cid());
  const other = bridgeNetwork(dataDir, { bridge: base.bridge });
  await fails('another subnet on the same bridge', other.conf, 7, `bridge ${base.bridge} already serves network`);
  await fails('network options changed', { ...base.conf, icc: false }, 7, 'already exists with other icc');

  const mapped = { ...base.conf, runtimeConfig: { portMappings: [{ hostPort: 30100, containerPort: 80 }] } };
  const pod2 = await createNetns('pod2');
  const pod3 = await createNetns('pod3');
  await mustAdd(mapped, pod2, cid());
  const before = reservations().length;
  const r = await add(mapped, pod3, cid());
  assert.is(errorCode(r), 7, r.stdout);
  assert.match(String(r.json!.msg), 'hostPort 30100/tcp is already mapped');
  assert.is(reservations().length, before, 'the refused ADD reserved nothing');
  const links = await execa('ip', ['-n', pod3.name, 'link', 'show'], { reject: false });
  assert.not.match(links.stdout, 'eth0', 'and made no interface');
  assert.equal((await execa('ip', ['netns', 'list'])).stdout.includes('cnmt'), true);
  void first;
});

test('an existing bridge with another address is refused unless forceAddress, which replaces the address', async () => {
  const net = bridgeNetwork(dataDir);
  await execa('ip', ['link', 'add', net.bridge, 'type', 'bridge']);
  const stray = net.gateway.replace(/\.1$/, '.77');
  await execa('ip', ['addr', 'add', `${stray}/24`, 'dev', net.bridge]);
  const pod = await createNetns('pod');
  const refused = await add(net.conf, pod, cid());
  assert.is(errorCode(refused), 7, refused.stdout);
  assert.match(String(refused.json!.msg), `bridge ${net.bridge} already has ${stray}/24`);
  await mustAdd({ ...net.conf, forceAddress: true }, pod, cid());
  const addrs = await execa('ip', ['-4', '-o', 'addr', 'show', 'dev', net.bridge]);
  assert.match(addrs.stdout, `${net.gateway}/24`);
  assert.not.match(addrs.stdout, stray);
});

test('mtu, promiscMode and macspoofchk reach the kernel as the reference bridge keys say', async () => {
  const net = bridgeNetwork(dataDir, { mtu: 1400, promiscMode: true, macspoofchk: true });
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const pa = await mustAdd(net.conf, a, cid());
  const pb = await mustAdd(net.conf, b, cid());
  const podLink = JSON.parse((await execa('ip', ['-n', a.name, '-j', 'link', 'show', 'eth0'])).stdout)[0];
  assert.is(podLink.mtu, 1400, 'the pod link has the mtu');
  const br = JSON.parse((await execa('ip', ['-j', 'link', 'show', net.bridge])).stdout)[0];
  assert.ok(br.flags.includes('PROMISC'), 'the bridge is promiscuous');
  await serve(b, 'tcp', pb.ip, 8080);
  assert.is(await reach(a, 'tcp', pb.ip, 8080), pa.ip, 'pods reach each other with their own MACs');
  const hostVeth = (pa.result.interfaces as Array<{ name: string }>)[1]!.name;
  const spoof = await execa('nft', ['list', 'table', 'bridge', `cnm_${net.name}`]);
  assert.match(spoof.stdout, hostVeth, 'macspoofchk lists the pod port');
  await execa('ip', ['-n', a.name, 'link', 'set', 'eth0', 'address', '02:00:00:00:be:ef']);
  await execa('ip', ['-n', b.name, 'neigh', 'flush', 'all']);
  await execa('ip', ['-n', a.name, 'neigh', 'flush', 'all']);
  assert.is(await reach(a, 'tcp', pb.ip, 8080), undefined, 'a pod that changes its MAC is cut off');
});

test('vlan on a kernel without bridge VLAN filtering is error 7 that says so, and leaves nothing', async () => {
  const net = bridgeNetwork(dataDir, { vlan: 10 });
  const pod = await createNetns('vlan');
  const r = await add(net.conf, pod, cid());
  const filtering = (await execa('ip', ['link', 'add', 'cnmtvfprobe', 'type', 'bridge', 'vlan_filtering', '1'], { reject: false })).exitCode === 0;
  await execa('ip', ['link', 'del', 'cnmtvfprobe'], { reject: false });
  if (filtering) {
    assert.is(r.exitCode, 0, r.stdout);
    return;
  }
  assert.is(errorCode(r), 7, r.stdout);
  assert.match(String(r.json!.msg), 'needs bridge VLAN filtering');
  assert.equal(await leftovers(dataDir), []);
  assert.equal(filesUnder(dataDir).filter((f) => !f.startsWith('locks/')), []);
});

test.run();
