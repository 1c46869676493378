// The CNM core and cnm-host-local under a runtime's hands: concurrency, dual stack, requested addresses, GC,
// kills at random points, delegation to the Go reference IPAM plugins, and the operator CLI's view.
import { execa } from 'execa';
import { readdirSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin, BIN_DIR } from './harness/bins.ts';
import { add, addKilled, bridgeNetwork, del, forceCleanup, leftovers, mustAdd, snapshotVeths, killedAddRounds } from './harness/bridge.ts';
import { filesUnder, makeDataDir, removeDataDir } from './harness/datadir.ts';
import { cleanupNetns, createNetns } from './harness/netns.ts';
import { errorCode, invoke } from './harness/plugin.ts';

let dataDir = '';
let seq = 0;
const cid = () => `i${process.pid}x${seq++}`;
const ipFiles = (dir: string) => filesUnder(dir).filter((f) => /^[0-9a-f.:]+$/.test(f.split('/').pop()!) && !f.includes('last_reserved') && !f.includes('attachments/'));

test.before(snapshotVeths);
test.before.each(() => {
  dataDir = makeDataDir();
});
test.after.each(async () => {
  await forceCleanup(dataDir);
  await cleanupNetns();
  removeDataDir(dataDir);
});

const ipamConf = (ipam: object, name = `cnmt${process.pid}ipam${seq++}`) => ({ cniVersion: '1.1.0', name, type: 'cnm-bridge', dataDir, ipam: { type: 'cnm-host-local', ...ipam } });
/** What a killed ADD of `id` (ifname eth0) left in the store: its endpoint record, its IPAM attachment file. */
const leftBy = (id: string) => ({
  recorded: filesUnder(`${dataDir}/endpoints`).some((f) => f.endsWith(`/${id}:eth0.json`)),
  held: filesUnder(`${dataDir}/ipam`).some((f) => f.endsWith(`/attachments/${id}:eth0`)),
});

/** `cnm network rm`, then nothing of the test's left on the node or in its data dir. */
async function removedLeavingNothing(network: string): Promise<void> {
  await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', network]);
  assert.equal(await leftovers(dataDir), []);
}

/** The links enslaved to a bridge: its pods' host veths. */
const portsOf = async (bridge: string) => (JSON.parse((await execa('ip', ['-j', 'link', 'show', 'master', bridge])).stdout || '[]') as Array<{ ifname: string }>).map((l) => l.ifname);
const ipamEnv = (command: string, containerId: string, args?: string) => ({ command, containerId, netns: '/var/run/netns/unused', ifname: 'eth0', path: BIN_DIR, args });

test('300 concurrent ADDs on a /24 give 253 distinct addresses and clear exhaustion errors for the rest; DEL of all leaves no reservation', async () => {
  const conf = ipamConf({ ranges: [[{ subnet: '10.240.0.0/24' }]] });
  const ids = Array.from({ length: 300 }, cid);
  const replies = await Promise.all(ids.map((id) => invoke(bin('cnm-host-local'), ipamEnv('ADD', id), conf, { timeoutMs: 120_000 })));
  const ok = replies.filter((r) => r.exitCode === 0);
  const addresses = ok.map((r) => (r.json!.ips as Array<{ address: string }>)[0]!.address);
  assert.is(ok.length, 253, 'every usable address is handed out');
  assert.is(new Set(addresses).size, 253, 'no address twice');
  assert.not.ok(addresses.includes('10.240.0.1/24'), 'never the gateway');
  const refused = replies.filter((r) => r.exitCode !== 0);
  assert.is(refused.length, 47);
  for (const r of refused) {
    assert.is(errorCode(r), 102, r.stdout);
    assert.match(String(r.json!.msg), 'no free address left in range set ipam.ranges[0] (10.240.0.0/24');
  }
  const status = await invoke(bin('cnm-host-local'), { command: 'STATUS', path: BIN_DIR }, conf);
  assert.is(errorCode(status), 50, 'STATUS says no address is left');
  await Promise.all(ids.map((id) => invoke(bin('cnm-host-local'), { command: 'DEL', containerId: id, ifname: 'eth0', path: BIN_DIR }, conf, { timeoutMs: 120_000 })));
  assert.equal(ipFiles(dataDir), [], 'no reservation file left');
  assert.equal(filesUnder(dataDir).filter((f) => f.includes('attachments/')), []);
  assert.is((await invoke(bin('cnm-host-local'), { command: 'STATUS', path: BIN_DIR }, conf)).exitCode, 0);
});

test('dual stack: one IPv4 and one IPv6 address, with their gateways and the routes', async () => {
  const conf = ipamConf({ ranges: [[{ subnet: '10.241.0.0/24' }], [{ subnet: 'fd41::/64' }]], routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0' }] });
  const r = await invoke(bin('cnm-host-local'), ipamEnv('ADD', cid()), conf);
  assert.is(r.exitCode, 0, r.stdout);
  assert.equal(r.json!.ips, [
    { address: '10.241.0.2/24', gateway: '10.241.0.1' },
    { address: 'fd41::2/64', gateway: 'fd41::1' },
  ]);
  assert.equal(r.json!.routes, [{ dst: '0.0.0.0/0' }, { dst: '::/0' }]);
});

test('a requested address is honoured through CNI_ARGS, args and runtimeConfig, and refused when taken', async () => {
  const base = ipamConf({ ranges: [[{ subnet: '10.242.0.0/24' }]] });
  const viaEnv = await invoke(bin('cnm-host-local'), ipamEnv('ADD', cid(), 'IgnoreUnknown=1;IP=10.242.0.50'), base);
  assert.equal((viaEnv.json!.ips as Array<{ address: string }>)[0]!.address, '10.242.0.50/24');
  const viaArgs = await invoke(bin('cnm-host-local'), ipamEnv('ADD', cid()), { ...base, args: { cni: { ips: ['10.242.0.51'] } } });
  assert.equal((viaArgs.json!.ips as Array<{ address: string }>)[0]!.address, '10.242.0.51/24');
  const viaRuntime = await invoke(bin('cnm-host-local'), ipamEnv('ADD', cid()), { ...base, runtimeConfig: { ips: ['10.242.0.52/24'] } });
  assert.equal((viaRuntime.json!.ips as Array<{ address: string }>)[0]!.address, '10.242.0.52/24');
  const taken = await invoke(bin('cnm-host-local'), ipamEnv('ADD', cid(), 'IP=10.242.0.50'), base);
  assert.is(errorCode(taken), 103);
  assert.match(String(taken.json!.msg), 'requested IP 10.242.0.50 is already reserved by container');
  const outside = await invoke(bin('cnm-host-local'), ipamEnv('ADD', cid(), 'IP=10.9.9.9'), base);
  assert.is(errorCode(outside), 7);
  assert.match(String(outside.json!.msg), 'in none of the ranges');
});

test('GC with a valid list releases exactly the others', async () => {
  const conf = ipamConf({ ranges: [[{ subnet: '10.243.0.0/24' }]] });
  const ids = [cid(), cid(), cid(), cid()];
  for (const id of ids) assert.is((await invoke(bin('cnm-host-local'), ipamEnv('ADD', id), conf)).exitCode, 0);
  const gc = await invoke(bin('cnm-host-local'), { command: 'GC', path: BIN_DIR }, { ...conf, 'cni.dev/valid-attachments': [{ containerID: ids[1], ifname: 'eth0' }, { containerID: ids[3], ifname: 'eth0' }] });
  assert.is(gc.exitCode, 0, gc.stdout);
  assert.equal(ipFiles(dataDir).map((f) => f.split('/').pop()), ['10.243.0.3', '10.243.0.5']);
});

test('malformed IPAM configs are error 7 naming the field, and reserve nothing', async () => {
  const cases: Array<[object, string]> = [
    [{ ranges: [[{ subnet: '10.0.0.0/33' }]] }, 'ipam.ranges[0][0].subnet'],
    [{ ranges: [[{ subnet: '10.244.0.0/24', rangeStart: '10.245.0.5' }]] }, 'ipam.ranges[0][0].rangeStart'],
    [{ ranges: [[{ subnet: '10.244.0.0/24', gateway: '10.245.0.1' }]] }, 'ipam.ranges[0][0].gateway'],
    [{ ranges: [[{ subnet: '10.244.0.0/24' }], [{ subnet: '10.244.0.128/25' }]] }, 'overlaps'],
    [{ ranges: [[{ subnet: 'fd44::/64', rangeStart: '10.244.0.9' }]] }, 'is IPv4 but subnet fd44::/64 is IPv6'],
    [{ subnet: 'nonsense' }, 'ipam.subnet'],
  ];
  for (const [ipam, words] of cases) {
    const r = await invoke(bin('cnm-host-local'), ipamEnv('ADD', cid()), ipamConf(ipam));
    assert.is(errorCode(r), 7, r.stdout);
    assert.match(String(r.json!.msg), words);
  }
  assert.equal(ipFiles(dataDir), []);
});

test('an ADD killed with SIGKILL at random points, then DEL, leaves no reservation, endpoint record, veth or rule', async () => {
  const net = bridgeNetwork(dataDir, { capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 30500, containerPort: 80 }] } });
  const pod = await createNetns('kill');
  const rounds = 60;
  const killedMidway = await killedAddRounds(net.conf, pod, 'kill', { rounds, minMs: 0, maxMs: 25 }, async (_id, i) => {
    assert.equal(filesUnder(`${dataDir}/endpoints`), [], `no endpoint record after kill #${i}`);
    assert.equal(filesUnder(`${dataDir}/ipam`).filter((f) => !/\/last_reserved_ip\.\d+$/.test(f)), [], `no reservation, index or staged file after kill #${i}`);
    const links = await execa('ip', ['-n', pod.name, '-j', 'link', 'show']);
    assert.equal((JSON.parse(links.stdout) as Array<{ ifname: string }>).map((l) => l.ifname), ['lo'], `no pod interface after kill #${i}`);
  });
  assert.ok(killedMidway > rounds / 4, `most ADDs were killed before they finished (${killedMidway}/${rounds})`);
  const table = await execa('nft', ['-j', 'list', 'map', 'inet', `cnm_${net.name}`, 'hostports4']);
  assert.not.match(table.stdout, '"elem"', 'no hostPort mapping left in the nft map');
  await removedLeavingNothing(net.name);
});

test('a plain pod (nothing recorded before join) killed at random points, then DEL, leaves no reservation, veth or record', async () => {
  const net = bridgeNetwork(dataDir);
  const pod = await createNetns('plainkill');
  const rounds = 60;
  const killedMidway = await killedAddRounds(net.conf, pod, 'plain', { rounds, minMs: 0, maxMs: 25 }, async (_id, i) => {
    assert.equal(filesUnder(`${dataDir}/endpoints`), [], `no endpoint record after kill #${i}`);
    assert.equal(filesUnder(`${dataDir}/ipam`).filter((f) => !/\/last_reserved_ip\.\d+$/.test(f)), [], `no reservation, index or staged file after kill #${i}`);
    assert.equal(await portsOf(net.bridge), [], `no host veth on the bridge after kill #${i}`);
    const links = await execa('ip', ['-n', pod.name, '-j', 'link', 'show']);
    assert.equal((JSON.parse(links.stdout) as Array<{ ifname: string }>).map((l) => l.ifname), ['lo'], `no pod interface after kill #${i}`);
  });
  assert.ok(killedMidway > rounds / 4, `most ADDs were killed before they finished (${killedMidway}/${rounds})`);
  await removedLeavingNothing(net.name);
});

test('a plain pod whose ADD was killed, added again without a DEL: the new ADD undoes what the killed one left and succeeds', async () => {
  const net = bridgeNetwork(dataDir);
  const pod = await createNetns('readd');
  await mustAdd(net.conf, pod, 'warm-up');
  assert.is((await del(net.conf, pod, 'warm-up')).exitCode, 0);
  let leftBehind = 0;
  for (let i = 0; i < 30; i++) {
    const id = `readd${i}`;
    const killed = await addKilled(net.conf, pod, id, 2, 20);
    const left = leftBy(id);
    if (!killed || left.recorded) {
      // It finished before the kill: a second ADD would rightly be refused.
      assert.is((await del(net.conf, pod, id)).exitCode, 0);
      continue;
    }
    if (left.held) leftBehind++;
    const again = await add(net.conf, pod, id);
    assert.is(again.exitCode, 0, `ADD after kill #${i}: ${again.stdout}`);
    assert.is(filesUnder(`${dataDir}/ipam`).filter((f) => /\/[0-9.]+$/.test(f)).length, 1, `one reservation after the second ADD #${i}, not the killed one's too`);
    assert.is((await portsOf(net.bridge)).length, 1, `one veth on the bridge after the second ADD #${i}`);
    assert.is((await del(net.conf, pod, id)).exitCode, 0);
  }
  assert.ok(leftBehind > 0, 'some killed ADD had reserved its address before it died');
  await removedLeavingNothing(net.name);
});

test('a plain pod whose ADD was killed, then GC without it: its veth and addresses go too', async () => {
  const net = bridgeNetwork(dataDir);
  const pod = await createNetns('killgc');
  await mustAdd(net.conf, pod, 'keeper');
  let caught = 0;
  for (let i = 0; i < 20 && caught < 3; i++) {
    const id = `killgc${i}`;
    const killed = await addKilled(net.conf, pod, id, 6, 16);
    const left = leftBy(id);
    if (killed && !left.recorded && left.held) caught++;
    // GC as a runtime sends it after a restart that lost the killed sandbox: only the keeper is valid.
    const gc = await invoke(bin('cnm-bridge'), { command: 'GC', path: BIN_DIR }, { ...net.conf, 'cni.dev/valid-attachments': [{ containerID: 'keeper', ifname: 'eth0' }] });
    assert.is(gc.exitCode, 0, gc.stdout);
    assert.equal(filesUnder(`${dataDir}/ipam`).filter((f) => f.includes('/attachments/')).map((f) => f.split('/').pop()), ['keeper:eth0'], `only the keeper's attachment after GC #${i}`);
    assert.is((await portsOf(net.bridge)).length, 1, `only the keeper's veth on the bridge after GC #${i}`);
  }
  assert.ok(caught > 0, 'some ADD was killed after it took its address and before it recorded its endpoint');
  assert.is((await del(net.conf, pod, 'keeper')).exitCode, 0);
  await removedLeavingNothing(net.name);
});

test('a main plugin given the Go reference host-local or static IPAM works through CNI_PATH', async () => {
  const refDir = `${dataDir}/reference-host-local`;
  // The Go reference plugins speak CNI up to 1.0.0.
  const net = bridgeNetwork(dataDir, { cniVersion: '1.0.0', ipam: { type: 'host-local', ranges: [[{ subnet: '10.246.0.0/24' }]], dataDir: refDir } });
  const pod = await createNetns('ref');
  const id = cid();
  const p = await mustAdd(net.conf, pod, id);
  assert.is(p.ip, '10.246.0.2');
  assert.ok(readdirSync(`${refDir}/${net.name}`).includes('10.246.0.2'), 'the reference plugin holds the reservation');
  assert.is((await del(net.conf, pod, id)).exitCode, 0);
  assert.not.ok(readdirSync(`${refDir}/${net.name}`).includes('10.246.0.2'), 'DEL released it through the reference plugin');

  const tooNew = await add(bridgeNetwork(dataDir, { ipam: { type: 'host-local', subnet: '10.248.0.0/24', dataDir: refDir } }).conf, pod, cid());
  assert.is(errorCode(tooNew), 1, "the reference plugin's version refusal reaches the runtime as it is");
  const stat = bridgeNetwork(dataDir, { cniVersion: '1.0.0', ipam: { type: 'static', addresses: [{ address: '10.247.0.9/24', gateway: '10.247.0.1' }] } });
  const pod2 = await createNetns('static');
  const s = await mustAdd(stat.conf, pod2, cid());
  assert.is(s.ip, '10.247.0.9');
  const addr = await execa('ip', ['-n', pod2.name, '-4', 'addr', 'show', 'eth0']);
  assert.match(addr.stdout, '10.247.0.9/24');

  const missing = await add(bridgeNetwork(dataDir, { ipam: { type: 'no-such-ipam' } }).conf, pod2, cid(), 'net1');
  assert.is(errorCode(missing), 7);
  assert.match(String(missing.json!.msg), 'no-such-ipam');
});

test('cnm-null, cnm-host and cnm-bridge endpoints appear in `cnm endpoint ls` and `cnm network inspect`', async () => {
  const pod = await createNetns('cli');
  const net = bridgeNetwork(dataDir);
  const id = cid();
  const p = await mustAdd(net.conf, pod, id);
  const nullConf = { cniVersion: '1.1.0', name: `cnmt${process.pid}null`, type: 'cnm-null', dataDir };
  assert.is((await invoke(bin('cnm-null'), { command: 'ADD', containerId: id, netns: pod.path, ifname: 'lo0', path: BIN_DIR }, nullConf)).exitCode, 0);
  const hostConf = { cniVersion: '1.1.0', name: `cnmt${process.pid}host`, type: 'cnm-host', dataDir };
  assert.is((await invoke(bin('cnm-host'), { command: 'ADD', containerId: 'hostpod', netns: `/proc/${process.pid}/ns/net`, ifname: 'eth0', path: BIN_DIR }, hostConf)).exitCode, 0);

  const ls = await execa(bin('cnm'), ['--data-dir', dataDir, 'endpoint', 'ls', '--json']);
  const eps = JSON.parse(ls.stdout) as Array<{ network: string; containerId: string; addresses: string[] }>;
  assert.equal(eps.map((e) => e.network).sort(), [net.name, nullConf.name, hostConf.name].sort());
  assert.ok(eps.find((e) => e.network === net.name)!.addresses.includes(`${p.ip}/24`));

  const table = await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'ls']);
  assert.match(table.stdout, /NAME\s+DRIVER\s+SUBNETS\s+ENDPOINTS/);
  assert.match(table.stdout, new RegExp(`${net.name}\\s+bridge\\s+${net.subnet.replace(/\./g, '\\.')}\\s+1`));
  const inspect = await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'inspect', net.name]);
  assert.match(inspect.stdout, `Subnets:   ${net.subnet} gateway ${net.gateway}`);
  assert.match(inspect.stdout, id);
  const unknown = await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'inspect', 'nope'], { reject: false });
  assert.is(unknown.exitCode, 2);
  assert.match(unknown.stderr, 'no network named "nope"');
  const busy = await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', net.name], { reject: false });
  assert.is(busy.exitCode, 1);
  assert.match(busy.stderr, 'still has 1 endpoint');
  const noStore = await execa(bin('cnm'), ['--data-dir', '/nonexistent/store', 'network', 'inspect', 'x'], { reject: false });
  assert.match(noStore.stderr, 'does not exist');

  assert.is((await del(net.conf, pod, id)).exitCode, 0);
  assert.is((await invoke(bin('cnm-null'), { command: 'DEL', containerId: id, netns: pod.path, ifname: 'lo0', path: BIN_DIR }, nullConf)).exitCode, 0);
  assert.is((await invoke(bin('cnm-host'), { command: 'DEL', containerId: 'hostpod', ifname: 'eth0', path: BIN_DIR }, hostConf)).exitCode, 0);
  const prune = await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'prune']);
  assert.equal(prune.stdout.trim().split('\n').sort(), [net.name, nullConf.name, hostConf.name].sort());
  assert.equal(await leftovers(dataDir), []);
});

test.run();
