// Networks over a node's life: a reboot (kernel state gone, data dir kept), pods coming and going under running
// ones, and kernel objects removed behind cnm-cni's back. Real namespaces, links and nft tables, test-made only.
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin, BIN_DIR } from './harness/bins.ts';
import { add, bridgeNetwork, check, del, errorCode, isolationTableOf, leftovers, mustAdd, type TestNetwork, storePerTest } from './harness/bridge.ts';
import { filesUnder } from './harness/datadir.ts';
import { createNetns, deleteNetns, type TestNetns } from './harness/netns.ts';
import { invoke } from './harness/plugin.ts';
import { createOutside, nodeLinks, type Outside } from './harness/topology.ts';
import { reach, serve, stopAllServers } from './harness/traffic.ts';

let dataDir = '';
let seq = 0;
const cid = () => `l${process.pid}x${seq++}`;
/** Reserved addresses of the store, as files named after them. */
const reserved = () => filesUnder(`${dataDir}/ipam`).filter((f) => /\/[0-9a-f.:]+$/.test(f) && !f.includes('last_reserved')).map((f) => f.split('/').pop()!).sort();
const sys = (link: string, file: string) => readFileSync(`/sys/class/net/${link}/${file}`, 'utf8').trim();
const ours = () => leftovers(dataDir);
const cnm = (...args: string[]) => execa(bin('cnm'), ['--data-dir', dataDir, ...args], { reject: false });

storePerTest(test, (d) => (dataDir = d), stopAllServers);

/** What a reboot takes: the pods' namespaces (their veths go with them), the bridge, the nft tables. */
async function reboot(net: TestNetwork, pods: TestNetns[]): Promise<void> {
  for (const ns of pods) await deleteNetns(ns);
  await execa('ip', ['link', 'del', net.bridge]);
  for (const t of [`cnm_${net.name}`, isolationTableOf(dataDir)]) await execa('nft', ['delete', 'table', 'inet', t]);
}

interface ListedEndpoint {
  containerId: string;
  state: string;
  stale: string | null;
}

test('reboot: with the kernel state gone and the data dir kept, a new pod reaches its gateway, the node and an outside host; DEL and GC of the old pods free every address', async () => {
  const net = bridgeNetwork(dataDir);
  const out = await createOutside();
  const old = [await createNetns('old'), await createNetns('old'), await createNetns('old')];
  const oldIds = old.map(() => cid());
  for (let i = 0; i < old.length; i++) await mustAdd(net.conf, old[i]!, oldIds[i]!);
  await reboot(net, old);

  const listed = JSON.parse((await cnm('endpoint', 'ls', '--json')).stdout) as ListedEndpoint[];
  assert.equal(listed.map((e) => e.stale), old.map((ns) => `netns ${ns.path} is gone`), 'endpoint ls says every old endpoint is stale');
  assert.match((await cnm('network', 'ls')).stdout, new RegExp(`${net.name}\\s+bridge\\s+\\S+\\s+3\\s+3`), 'network ls counts them: 3 endpoints, 3 stale');

  const pod = await createNetns('new');
  const id = cid();
  const p = await mustAdd(net.conf, pod, id);
  assert.is(sys(net.bridge, 'addr_assign_type'), '3', 'the recreated bridge has a MAC of its own');
  await serve(undefined, 'tcp', net.gateway, 7301);
  await serve(undefined, 'tcp', out.nodeIp, 7302);
  await serve(out.ns, 'tcp', out.ip, 7303);
  assert.is(await reach(pod, 'tcp', net.gateway, 7301), p.ip, 'the new pod reaches its gateway');
  assert.is(await reach(pod, 'tcp', out.nodeIp, 7302), p.ip, 'and the node at another of its addresses');
  assert.is(await reach(pod, 'tcp', out.ip, 7303), out.nodeIp, 'and an outside host, masqueraded (nft table recreated)');
  assert.is((await check(net.conf, pod, id, p.result)).exitCode, 0, 'CHECK of the new pod passes');

  // The runtime DELs what it knew before the reboot: once with the stale netns path, once with none.
  assert.is((await del(net.conf, old[0], oldIds[0]!)).exitCode, 0, 'DEL with a stale CNI_NETNS');
  assert.is((await del(net.conf, undefined, oldIds[1]!)).exitCode, 0, 'DEL with an empty CNI_NETNS');
  // And GC clears the rest: the valid list names only what runs now.
  const gc = await invoke(bin('cnm-bridge'), { command: 'GC', path: BIN_DIR }, { ...net.conf, 'cni.dev/valid-attachments': [{ containerID: id, ifname: 'eth0' }] });
  assert.is(gc.exitCode, 0, gc.stdout + gc.stderr);
  assert.equal(reserved(), [p.ip], 'no address of an old pod stays reserved');
  assert.equal(filesUnder(`${dataDir}/endpoints`), [`${net.name}/${id}:eth0.json`]);

  assert.is((await del(net.conf, pod, id)).exitCode, 0);
  assert.is((await cnm('network', 'rm', net.name)).exitCode, 0);
  assert.equal(await ours(), [], 'no bridge or nft table left');
});

test('reboot: an endpoint recorded under another boot id is listed as stale', async () => {
  const net = bridgeNetwork(dataDir);
  const pod = await createNetns('p');
  const id = cid();
  await mustAdd(net.conf, pod, id);
  const file = `${dataDir}/endpoints/${net.name}/${id}:eth0.json`;
  const rec = JSON.parse(readFileSync(file, 'utf8')) as { boot: string };
  assert.is(rec.boot, readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), 'each endpoint records the boot it was made in');
  let listed = JSON.parse((await cnm('endpoint', 'ls', '--json')).stdout) as ListedEndpoint[];
  assert.is(listed[0]!.stale, null, 'a running pod of this boot is not stale');
  // The record as a previous boot left it.
  await execa('sh', ['-c', 'sed -i "s/\\"boot\\":\\"[^\\"]*\\"/\\"boot\\":\\"00000000-0000-0000-0000-000000000000\\"/" "$0"', file]);
  listed = JSON.parse((await cnm('endpoint', 'ls', '--json')).stdout) as ListedEndpoint[];
  assert.is(listed[0]!.stale, 'made before the last reboot');
  assert.match((await cnm('endpoint', 'ls')).stdout, new RegExp(`${id}\\s+eth0\\s+stale`));
  assert.is((await del(net.conf, pod, id)).exitCode, 0);
});

function macvlanConf(out: Outside) {
  return {
    cniVersion: '1.1.0',
    name: `cnmt${process.pid}mv${seq++}`,
    type: 'cnm-macvlan',
    master: out.hostLink,
    mode: 'bridge',
    dataDir,
    ipam: { type: 'cnm-host-local', ranges: [[{ subnet: out.ip.replace(/\.2$/, '.0/24'), rangeStart: out.ip.replace(/\.2$/, '.10'), gateway: out.ip }]] },
  };
}

test('reboot: macvlan with its master kept: a new pod reaches the outside host; DEL of the old pods frees their addresses', async () => {
  const out = await createOutside();
  const conf = macvlanConf(out);
  const run = (command: string, ns: TestNetns | undefined, id: string) => invoke(bin('cnm-macvlan'), { command, containerId: id, netns: ns?.path, ifname: 'eth0', path: BIN_DIR }, conf);
  const old = [await createNetns('mold'), await createNetns('mold')];
  const oldIds = old.map(() => cid());
  for (let i = 0; i < old.length; i++) assert.is((await run('ADD', old[i], oldIds[i]!)).exitCode, 0);
  for (const ns of old) await deleteNetns(ns);

  const pod = await createNetns('mnew');
  const id = cid();
  const r = await run('ADD', pod, id);
  assert.is(r.exitCode, 0, r.stdout + r.stderr);
  const ip = (r.json!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;
  await serve(out.ns, 'tcp', out.ip, 7311);
  assert.is(await reach(pod, 'tcp', out.ip, 7311), ip, 'the new pod reaches the outside host (its gateway)');
  assert.is((await run('DEL', old[0], oldIds[0]!)).exitCode, 0, 'DEL with a stale CNI_NETNS');
  assert.is((await run('DEL', undefined, oldIds[1]!)).exitCode, 0, 'DEL with an empty CNI_NETNS');
  assert.equal(reserved(), [ip], 'no address of an old pod stays reserved');
  assert.is((await run('DEL', pod, id)).exitCode, 0);
  assert.is((await cnm('network', 'rm', conf.name)).exitCode, 0);
  assert.equal((await nodeLinks(out.hostLink)).length, 1, 'the master, the node\'s own, is kept');
});

test('churn: pods leave one at a time, the lender of the lowest port MAC first: the bridge MAC never changes and every remaining pod reaches its gateway at once', async () => {
  const net = bridgeNetwork(dataDir);
  const pods = await Promise.all(Array.from({ length: 6 }, (_, i) => createNetns(`ch${i}`)));
  const running: Array<{ ns: TestNetns; id: string; ip: string }> = [];
  for (const ns of pods) {
    const id = cid();
    running.push({ ns, id, ip: (await mustAdd(net.conf, ns, id)).ip });
  }

  const mac = sys(net.bridge, 'address');
  assert.is(sys(net.bridge, 'addr_assign_type'), '3', 'the bridge has a MAC set at creation, not a port\'s');
  await serve(undefined, 'tcp', net.gateway, 7321);
  for (const pod of running) assert.is(await reach(pod.ns, 'tcp', net.gateway, 7321), pod.ip, 'every pod has resolved its gateway');

  // A bridge without a MAC of its own takes the lowest of its ports'; that port's pod goes first.
  const ports = JSON.parse((await execa('ip', ['-j', 'link', 'show', 'master', net.bridge])).stdout) as Array<{ ifname: string; address: string }>;
  const lender = ports.sort((a, b) => a.address.localeCompare(b.address))[0]!.ifname;
  const hostVethOf = (id: string) => (JSON.parse(readFileSync(`${dataDir}/endpoints/${net.name}/${id}:eth0.json`, 'utf8')) as { driverState: { hostVeth: string } }).driverState.hostVeth;
  running.sort((a, b) => Number(hostVethOf(b.id) === lender) - Number(hostVethOf(a.id) === lender));
  assert.is(hostVethOf(running[0]!.id), lender);

  while (running.length > 1) {
    const gone = running.shift()!;
    assert.is((await del(net.conf, gone.ns, gone.id)).exitCode, 0);
    assert.is(sys(net.bridge, 'address'), mac, `the bridge MAC is unchanged after ${gone.id} left`);
    for (const pod of running) assert.is(await reach(pod.ns, 'tcp', net.gateway, 7321), pod.ip, `${pod.id} reaches its gateway at once after ${gone.id} left`);
  }
  assert.is((await del(net.conf, running[0]!.ns, running[0]!.id)).exitCode, 0);
});

test('drift: the nft table, then the bridge, removed under running pods: CHECK names what is missing, inspect shows it, the next ADD repairs it and the running pods work again', async () => {
  const net = bridgeNetwork(dataDir, { capabilities: { portMappings: true }, macspoofchk: true });
  const out = await createOutside();
  const [a, b] = [await createNetns('da'), await createNetns('db')];
  const [ida, idb] = [cid(), cid()];
  const confA = { ...net.conf, runtimeConfig: { portMappings: [{ hostPort: 30731, containerPort: 80, protocol: 'tcp' }] } };
  const pa = await mustAdd(confA, a, ida);
  const pb = await mustAdd(net.conf, b, idb);
  const mac = sys(net.bridge, 'address');
  await serve(a, 'tcp', pa.ip, 80);
  await serve(b, 'tcp', pb.ip, 8080);
  await serve(undefined, 'tcp', net.gateway, 7331);
  assert.is(await reach(out.ns, 'tcp', out.nodeIp, 30731), out.ip, 'the hostPort works before');

  // Another tool flushes our table.
  await execa('nft', ['delete', 'table', 'inet', `cnm_${net.name}`]);
  await execa('nft', ['delete', 'table', 'bridge', `cnm_${net.name}`]);
  let c = await check(confA, a, ida, pa.result);
  assert.is(errorCode(c), 104, c.stdout);
  assert.match(String(c.json!.msg), `nft table inet cnm_${net.name} is missing`);
  assert.match(String(c.json!.msg), `nft table bridge cnm_${net.name} is missing`);
  assert.match((await cnm('network', 'inspect', net.name)).stdout, `Drift:     nft table inet cnm_${net.name} is missing`);
  const repair1 = await createNetns('dc');
  const idc = cid();
  const r1 = await add(net.conf, repair1, idc);
  assert.is(r1.exitCode, 0, r1.stdout + r1.stderr);
  assert.match(r1.stderr, `repaired: nft table inet cnm_${net.name} is missing`, 'the repair is logged');
  assert.is(await reach(out.ns, 'tcp', out.nodeIp, 30731), out.ip, 'the running pod\'s hostPort is back');
  const spoof = await execa('nft', ['list', 'set', 'bridge', `cnm_${net.name}`, 'allowed']);
  for (const id of [ida, idb]) assert.match(spoof.stdout, (JSON.parse(readFileSync(`${dataDir}/endpoints/${net.name}/${id}:eth0.json`, 'utf8')) as { driverState: { hostVeth: string } }).driverState.hostVeth, 'macspoofchk lists the running pods again');
  assert.is((await check(confA, a, ida, pa.result)).exitCode, 0, 'CHECK passes after the repair');

  // An operator deletes the bridge.
  await execa('ip', ['link', 'del', net.bridge]);
  c = await check(confA, a, ida, pa.result);
  assert.is(errorCode(c), 104);
  assert.match(String(c.json!.msg), `bridge ${net.bridge} is missing`);
  assert.match((await cnm('network', 'inspect', '--json', net.name)).stdout, `bridge ${net.bridge} is missing`);
  const repair2 = await createNetns('dd');
  const idd = cid();
  const r2 = await add(net.conf, repair2, idd);
  assert.is(r2.exitCode, 0, r2.stdout + r2.stderr);
  assert.is(sys(net.bridge, 'address'), mac, 'the recreated bridge has the MAC it had');
  assert.is(await reach(a, 'tcp', pb.ip, 8080), pa.ip, 'running pods reach each other again');
  assert.is(await reach(b, 'tcp', net.gateway, 7331), pb.ip, 'and their gateway');
  assert.is(await reach(out.ns, 'tcp', out.nodeIp, 30731), out.ip, 'and the hostPort');
  assert.is((await check(confA, a, ida, pa.result)).exitCode, 0, 'CHECK passes');
  assert.match((await cnm('network', 'inspect', net.name)).stdout, 'Drift:     -');

  for (const [ns, id] of [[a, ida], [b, idb], [repair1, idc], [repair2, idd]] as const) assert.is((await del(net.conf, ns, id)).exitCode, 0);
  assert.is((await cnm('network', 'rm', net.name)).exitCode, 0);
  assert.equal(await ours(), [], 'no bridge or nft table left');
});

test('a bridge an older cnm-cni made without a MAC of its own gets its current MAC pinned by the next ADD', async () => {
  const net = bridgeNetwork(dataDir);
  const [a, b] = [await createNetns('pa'), await createNetns('pb')];
  const [ida, idb] = [cid(), cid()];
  await mustAdd(net.conf, a, ida);
  // What an older cnm-cni left: a bridge it made (the record says so) whose MAC is a port's.
  await execa('ip', ['link', 'del', net.bridge]);
  await execa('ip', ['link', 'add', net.bridge, 'type', 'bridge']);
  const record = `${dataDir}/networks/${net.name}.json`;
  const rec = JSON.parse(readFileSync(record, 'utf8')) as { state: { createdBridge: boolean } };
  assert.is(rec.state.createdBridge, true);
  assert.is(sys(net.bridge, 'addr_assign_type'), '1', 'a bridge made without a MAC');
  const before = sys(net.bridge, 'address');
  await mustAdd(net.conf, b, idb);
  assert.is(sys(net.bridge, 'addr_assign_type'), '3', 'its MAC is set now');
  assert.is(sys(net.bridge, 'address'), before, 'and is the one it had: running pods keep their gateway');
  for (const [ns, id] of [[a, ida], [b, idb]] as const) assert.is((await del(net.conf, ns, id)).exitCode, 0);
});

test.run();
