// cnm-macvlan on this kernel, with test-made links only: the master is the node end of a veth whose peer is an
// "outside" namespace, so pods sit on the outside host's segment.
import { execa } from 'execa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin, BIN_DIR } from './harness/bins.ts';
import { filesUnder, makeDataDir, removeDataDir } from './harness/datadir.ts';
import { cleanupNetns, createNetns, type TestNetns } from './harness/netns.ts';
import { errorCode, invoke } from './harness/plugin.ts';
import { cleanupLinks, createOutside, nodeLinks, type Outside } from './harness/topology.ts';
import { reach, serve, stopAllServers } from './harness/traffic.ts';

let dataDir = '';
let seq = 0;
const cid = () => `m${process.pid}x${seq++}`;

test.before.each(() => {
  dataDir = makeDataDir();
});
test.after.each(async () => {
  await stopAllServers();
  await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'prune'], { reject: false });
  await cleanupNetns();
  await cleanupLinks();
  removeDataDir(dataDir);
  assert.equal((await nodeLinks('cnmt')).filter((l) => l.includes(String(process.pid % 10000))), [], 'no test link of this suite left on the node');
});

function macvlanConf(out: Outside, extra: Record<string, unknown> = {}) {
  const subnet = out.ip.replace(/\.2$/, '.0/24');
  return {
    cniVersion: '1.1.0',
    name: `cnmt${process.pid}mv${seq++}`,
    type: 'cnm-macvlan',
    master: out.hostLink,
    dataDir,
    ipam: { type: 'cnm-host-local', ranges: [[{ subnet, rangeStart: out.ip.replace(/\.2$/, '.10'), gateway: out.ip }]] },
    ...extra,
  };
}

const run = (command: string, conf: object, ns: TestNetns | undefined, id: string) =>
  invoke(bin('cnm-macvlan'), { command, containerId: id, netns: ns?.path, ifname: 'eth0', path: BIN_DIR }, conf);

async function addPod(conf: object, ns: TestNetns, id: string): Promise<string> {
  const r = await run('ADD', conf, ns, id);
  assert.is(r.exitCode, 0, r.stdout + r.stderr);
  return (r.json!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;
}

test('bridge mode: two pods reach each other and the outside host; CHECK passes; DEL leaves nothing', async () => {
  const out = await createOutside();
  const conf = macvlanConf(out, { mode: 'bridge' });
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const [ida, idb] = [cid(), cid()];
  const ipA = await addPod(conf, a, ida);
  const ipB = await addPod(conf, b, idb);
  await serve(b, 'tcp', ipB, 8080);
  await serve(out.ns, 'tcp', out.ip, 9000);
  assert.is(await reach(a, 'tcp', ipB, 8080), ipA, 'pod to pod');
  assert.is(await reach(a, 'tcp', out.ip, 9000), ipA, 'pod to the outside host, with its own address');
  const mac = await execa('ip', ['-n', a.name, '-d', '-j', 'link', 'show', 'eth0']);
  assert.is(JSON.parse(mac.stdout)[0].linkinfo.info_kind, 'macvlan');
  assert.is((await run('CHECK', { ...conf, prevResult: { cniVersion: '1.1.0', ips: [{ address: `${ipA}/24` }] } }, a, ida)).exitCode, 0);

  for (const [ns, id] of [[a, ida], [b, idb]] as const) assert.is((await run('DEL', conf, ns, id)).exitCode, 0);
  for (const ns of [a, b]) {
    const links = await execa('ip', ['-n', ns.name, '-j', 'link', 'show']);
    assert.equal(JSON.parse(links.stdout).map((l: { ifname: string }) => l.ifname), ['lo'], `no link left in ${ns.name}`);
  }
  assert.equal(filesUnder(`${dataDir}/ipam`).filter((f) => /\/[\d.]+$/.test(f)), [], 'no reservation left');
  assert.equal(filesUnder(`${dataDir}/endpoints`), []);
});

test('a MAC the runtime asks for (runtimeConfig.mac) is the pod link\'s', async () => {
  const out = await createOutside();
  const pod = await createNetns('mac');
  const r = await run('ADD', { ...macvlanConf(out), capabilities: { mac: true }, runtimeConfig: { mac: '02:42:ac:11:00:42' } }, pod, cid());
  assert.is(r.exitCode, 0, r.stdout);
  assert.is((r.json!.interfaces as Array<{ mac: string }>)[0]!.mac, '02:42:ac:11:00:42');
  const link = JSON.parse((await execa('ip', ['-n', pod.name, '-j', 'link', 'show', 'eth0'])).stdout)[0];
  assert.is(link.address, '02:42:ac:11:00:42');
});

test('linkInContainer: the master lives in the pod\'s namespace and the macvlan is made there', async () => {
  const pod = await createNetns('lic');
  const peer = await createNetns('lic-peer');
  await execa('ip', ['-n', pod.name, 'link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer.path]);
  await execa('ip', ['-n', pod.name, 'link', 'set', 'uplink0', 'up']);
  await execa('ip', ['-n', peer.name, 'addr', 'add', '198.19.77.2/24', 'dev', 'eth0']);
  await execa('ip', ['-n', peer.name, 'link', 'set', 'eth0', 'up']);
  const conf = {
    cniVersion: '1.1.0',
    name: `cnmt${process.pid}lic`,
    type: 'cnm-macvlan',
    master: 'uplink0',
    linkInContainer: true,
    dataDir,
    ipam: { type: 'cnm-host-local', ranges: [[{ subnet: '198.19.77.0/24', rangeStart: '198.19.77.10' }]] },
  };
  const id = cid();
  const ip = await addPod(conf, pod, id);
  const link = JSON.parse((await execa('ip', ['-n', pod.name, '-d', '-j', 'link', 'show', 'eth0'])).stdout)[0];
  assert.is(link.linkinfo.info_kind, 'macvlan');
  await serve(peer, 'tcp', '198.19.77.2', 9000);
  assert.is(await reach(pod, 'tcp', '198.19.77.2', 9000), ip, 'the pod reaches the peer of its in-namespace master');
  assert.is((await run('DEL', conf, pod, id)).exitCode, 0);
  const left = JSON.parse((await execa('ip', ['-n', pod.name, '-j', 'link', 'show'])).stdout).map((l: { ifname: string }) => l.ifname);
  assert.equal(left.sort(), ['lo', 'uplink0'], 'DEL removed the macvlan and kept the master');
});

test('private mode isolates the pods from each other, not from the outside host', async () => {
  const out = await createOutside();
  const conf = macvlanConf(out, { mode: 'private' });
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const ipA = await addPod(conf, a, cid());
  const ipB = await addPod(conf, b, cid());
  await serve(b, 'tcp', ipB, 8080);
  await serve(out.ns, 'tcp', out.ip, 9000);
  assert.is(await reach(a, 'tcp', ipB, 8080), undefined, 'pod to pod is blocked');
  assert.is(await reach(a, 'tcp', out.ip, 9000), ipA, 'pod to outside works');
});

test('a missing master, a VLAN master this kernel cannot make, or a wrong mode is error 7 naming it, and leaves nothing', async () => {
  const out = await createOutside();
  const pod = await createNetns('pod');
  const missing = await run('ADD', macvlanConf(out, { master: 'cnmtnosuch0' }), pod, cid());
  assert.is(errorCode(missing), 7, missing.stdout);
  assert.match(String(missing.json!.msg), 'master cnmtnosuch0');
  const noBase = await run('ADD', macvlanConf(out, { master: 'cnmtnosuch0.10' }), pod, cid());
  assert.is(errorCode(noBase), 7);
  assert.match(String(noBase.json!.msg), 'nor cnmtnosuch0');
  // This kernel has no 8021q: making the VLAN parent fails, and says why.
  const noVlan = await run('ADD', macvlanConf(out, { master: `${out.hostLink}.7` }), pod, cid());
  assert.is(errorCode(noVlan), 7, noVlan.stdout);
  assert.match(String(noVlan.json!.msg), `cannot make VLAN 7 on ${out.hostLink}`);
  const badMode = await run('ADD', macvlanConf(out, { mode: 'l2' }), pod, cid());
  assert.is(errorCode(badMode), 7);
  assert.match(String(badMode.json!.msg), 'mode "l2" is not a macvlan mode');
  assert.equal(filesUnder(dataDir), [], 'no record or reservation left by the refused ADDs');
  const links = await execa('ip', ['-n', pod.name, '-j', 'link', 'show']);
  assert.equal(JSON.parse(links.stdout).length, 1, 'the pod has only its loopback');
});

test('STATUS says the network cannot serve when its master is gone', async () => {
  const out = await createOutside();
  const conf = macvlanConf(out);
  const pod = await createNetns('pod');
  const id = cid();
  await addPod(conf, pod, id);
  assert.is((await invoke(bin('cnm-macvlan'), { command: 'STATUS', path: BIN_DIR }, conf)).exitCode, 0);
  assert.is((await run('DEL', conf, pod, id)).exitCode, 0);
  await cleanupLinks();
  const status = await invoke(bin('cnm-macvlan'), { command: 'STATUS', path: BIN_DIR }, conf);
  assert.is(errorCode(status), 50, status.stdout);
  assert.match(String(status.json!.msg), out.hostLink);
});

test.run();
