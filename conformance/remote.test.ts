// cnm-remote and cnm-remote-ipam driving `cnm plugin serve`, both real processes: pods attach through
// libnetwork's remote protocol, every call over the plugin's unix socket. Then the same calls broken one at a
// time by a proxy in front of the server (an Err reply, a 404, a body that is not JSON, no answer at all).
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shortHash } from '../shared/cnm/names.ts';
import { bin, BIN_DIR, REFERENCE_DIR } from './harness/bins.ts';
import { isolationTableOf } from './harness/bridge.ts';
import { filesUnder } from './harness/datadir.ts';
import { cleanupNetns, createNetns, type TestNetns } from './harness/netns.ts';
import { errorCode, invoke } from './harness/plugin.ts';
import { startFaultyProxy, startPluginServer, stopAllPluginServers, type Fault, type PluginServer } from './harness/plugin-server.ts';
import { nftTables, nodeLinks } from './harness/topology.ts';
import { reach, serve, stopAllServers } from './harness/traffic.ts';

const PREFIX = `cnmr${process.pid}`;
let dir = '';
let seq = 0;
const cid = () => `r${process.pid}x${seq++}`;

test.before.each(() => {
  dir = mkdtempSync(`/tmp/cnmr-${process.pid}-`);
});
test.after.each(async () => {
  await stopAllServers();
  await stopAllPluginServers();
  await cleanupNetns();
  // Whatever a failed test left of ours: bridges carry our prefix, tables come from our servers' stores, and a
  // bridge's veths die with the pods' and the servers' staging namespaces.
  for (const l of await ourLinks()) await execa('ip', ['link', 'del', l], { reject: false });
  for (const t of await ourTables()) await execa('nft', ['delete', 'table', ...t.split(' ')], { reject: false });
  await execa('ip', ['netns', 'delete', stagingNetns()], { reject: false });
  rmSync(dir, { recursive: true, force: true });
});

/** Our bridges, and links `cnm plugin serve` handed over under a SrcName (cnmsrc*: only plugin servers make them). */
async function ourLinks(): Promise<string[]> {
  return [...(await nodeLinks(PREFIX)), ...(await nodeLinks('cnmsrc'))];
}

/** The namespace where the server joins endpoints before handing their links over (named after its data dir). */
const stagingNetns = () => `cnm-stage-${shortHash(`${dir}/server`).slice(0, 8)}`;

const serverNetworks = new Set<string>();
async function ourTables(): Promise<string[]> {
  const tables = [...(await nftTables(isolationTableOf(`${dir}/server`)))];
  for (const n of serverNetworks) tables.push(...(await nftTables(`cnm_${n}`)));
  return tables;
}

async function leftovers(): Promise<string[]> {
  return [...(await ourLinks()), ...(await ourTables())];
}

async function startServer(): Promise<PluginServer> {
  return startPluginServer({ dataDir: `${dir}/server`, socket: `${dir}/plugin.sock` });
}

function remoteConf(plugin: string, subnet: string, extra: Record<string, unknown> = {}) {
  const n = seq++;
  return {
    cniVersion: '1.1.0',
    name: `${PREFIX}n${n}`,
    type: 'cnm-remote',
    plugin,
    options: { bridge: `${PREFIX}b${n}`.slice(0, 15) },
    timeout: 2,
    dataDir: `${dir}/cni`,
    ipam: { type: 'cnm-remote-ipam', plugin, pool: subnet, timeout: 2 },
    ...extra,
  };
}

const run = (command: string, conf: object, ns: TestNetns | undefined, id: string, type = 'cnm-remote') =>
  invoke(type === 'bridge' ? `${REFERENCE_DIR}/bridge` : bin(type), { command, containerId: id, netns: ns?.path, ifname: 'eth0', path: `${BIN_DIR}:${REFERENCE_DIR}` }, conf);

async function mustAdd(conf: object, ns: TestNetns, id: string, type?: string): Promise<string> {
  const r = await run('ADD', conf, ns, id, type);
  assert.is(r.exitCode, 0, `ADD: ${r.stdout} ${r.stderr}`);
  return (r.json!.ips as Array<{ address: string }>)[0]!.address.split('/')[0]!;
}

/** What the server's store still holds: networks, endpoints, IPAM reservations (the gateway's range state aside). */
function serverState(): string[] {
  return filesUnder(`${dir}/server`).filter((f) => !f.startsWith('locks/') && !f.includes('last_reserved'));
}

async function rememberServerNetworks(): Promise<void> {
  const r = await execa(bin('cnm'), ['--data-dir', `${dir}/server`, 'network', 'ls', '--json'], { reject: false });
  for (const n of JSON.parse(r.stdout || '[]') as Array<{ name: string }>) serverNetworks.add(n.name);
}

test('two pods on a remote network exchange traffic with addresses from cnm-remote-ipam; DEL and network rm leave nothing on either side', async () => {
  const server = await startServer();
  const conf = remoteConf(server.socket, '172.20.1.0/24');
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const [ida, idb] = [cid(), cid()];
  const ipA = await mustAdd(conf, a, ida);
  const ipB = await mustAdd(conf, b, idb);
  assert.ok(ipA.startsWith('172.20.1.') && ipB.startsWith('172.20.1.') && ipA !== ipB, `${ipA} ${ipB}`);
  await rememberServerNetworks();
  assert.is(serverNetworks.size > 0, true, 'the server made a network in its store');
  await serve(b, 'tcp', ipB, 8080);
  assert.is(await reach(a, 'tcp', ipB, 8080), ipA, 'pod a reaches pod b over the plugin\'s bridge');
  const route = await execa('ip', ['-n', a.name, '-j', 'route', 'show', 'default']);
  assert.is(JSON.parse(route.stdout)[0]?.gateway, '172.20.1.1', 'the default route goes via Join\'s Gateway');

  for (const [ns, id] of [[a, ida], [b, idb]] as const) assert.is((await run('DEL', conf, ns, id)).exitCode, 0);
  assert.is((await run('DEL', conf, a, ida)).exitCode, 0, 'DEL again is fine');
  const rm = await execa(bin('cnm'), ['--data-dir', `${dir}/cni`, 'network', 'rm', conf.name], { reject: false });
  assert.is(rm.exitCode, 0, rm.stderr);
  assert.equal(filesUnder(`${dir}/cni`).filter((f) => !f.startsWith('locks/')), [], 'nothing left in cnm-remote\'s store');
  assert.equal(serverState(), [], 'nothing left in the server\'s store: networks, endpoints, pools, addresses');
  assert.equal(await leftovers(), [], 'no bridge, veth or nft table left');
  assert.is(await server.stop(), 0, 'SIGTERM: a clean exit');
  assert.not.ok(existsSync(server.socket), 'and the socket is gone');
  assert.not.ok(existsSync(`/var/run/netns/${stagingNetns()}`), 'and the staging namespace');
});

test('the plugin killed: ADD answers error 11 within its timeout naming the socket; DEL still succeeds and forgets the pod', async () => {
  let server = await startServer();
  const conf = remoteConf(server.socket, '172.20.2.0/24');
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const [ida, idb] = [cid(), cid()];
  await mustAdd(conf, a, ida);
  await rememberServerNetworks();
  await server.kill();

  const started = Date.now();
  const r = await run('ADD', conf, b, idb);
  const took = Date.now() - started;
  assert.is(errorCode(r), 11, r.stdout);
  assert.ok(String(r.json!.msg).includes(server.socket), `names the socket: ${r.json!.msg}`);
  assert.ok(took < 2000 + 5000, `answered within the timeout (plus a loaded machine's slack): ${took} ms`);
  assert.equal(filesUnder(`${dir}/cni/endpoints`).filter((f) => f.includes(idb)), [], 'the failed ADD left no endpoint');

  const d = await run('DEL', conf, a, ida);
  assert.is(d.exitCode, 0, d.stdout + d.stderr);
  assert.match(d.stderr, /forgotten here/, 'the plugin\'s absence is logged');
  assert.equal(filesUnder(`${dir}/cni/endpoints`), [], 'DEL forgot the endpoint');
  assert.equal(filesUnder(`${dir}/cni/remote-ipam`).filter((f) => f.endsWith('.json') && !f.endsWith('pool.json')), [], 'DEL forgot the address');

  // SIGKILL cost the server nothing: a new one on the same data dir serves the network it made.
  server = await startServer();
  const ipB = await mustAdd(conf, b, idb);
  assert.ok(ipB.startsWith('172.20.2.'));
  assert.is((await run('DEL', conf, b, idb)).exitCode, 0);
  await server.stop();
});

const FAULTS: Array<[string, Fault, RegExp]> = [
  ['NetworkDriver.CreateNetwork', 'err', /NetworkDriver\.CreateNetwork failed: injected failure/],
  ['NetworkDriver.CreateEndpoint', 'err', /NetworkDriver\.CreateEndpoint failed: injected failure/],
  ['NetworkDriver.Join', '404', /NetworkDriver\.Join is not implemented \(HTTP 404\)/],
  ['IpamDriver.RequestAddress', 'not-json', /IpamDriver\.RequestAddress answered with something that is not JSON/],
  ['NetworkDriver.Join', 'hang', /NetworkDriver\.Join got no answer within 2\.0 s/],
  ['NetworkDriver.CreateEndpoint', 'changed-address', /NetworkDriver\.CreateEndpoint changed the Address it was given/],
];

for (const [method, fault, words] of FAULTS) {
  test(`${method} answering ${fault}: a CNI error naming the plugin and the call, nothing left behind`, async () => {
    const server = await startServer();
    const proxySocket = `${dir}/faulty.sock`;
    const proxy = await startFaultyProxy(proxySocket, server.socket, method, fault);
    const conf = remoteConf(proxySocket, `172.20.${3 + seq}.0/24`);
    const ns = await createNetns('f');
    const r = await run('ADD', conf, ns, cid());
    assert.is(errorCode(r), 11, r.stdout + r.stderr);
    const msg = String(r.json!.msg);
    assert.match(msg, words);
    assert.ok(msg.includes(proxySocket), `names the plugin's socket: ${msg}`);
    await rememberServerNetworks();
    assert.equal(filesUnder(`${dir}/cni`).filter((f) => !f.startsWith('locks/')), [], 'nothing left in cnm-remote\'s store');
    assert.equal(serverState(), [], 'nothing left in the plugin\'s store');
    assert.equal(await leftovers(), [], 'no link or table left');
    await proxy.close();
    await server.stop();
  });
}

test('cnm-remote-ipam under the reference bridge: addresses from the Docker IPAM plugin, released by DEL, the pool with the last one', async () => {
  const server = await startServer();
  const n = seq++;
  const conf = {
    cniVersion: '1.0.0',
    name: `${PREFIX}ref${n}`,
    type: 'bridge',
    bridge: `${PREFIX}r${n}`.slice(0, 15),
    isGateway: true,
    dataDir: `${dir}/cni`,
    ipam: { type: 'cnm-remote-ipam', plugin: server.socket, pool: '172.20.20.0/24', subPool: '172.20.20.128/25' },
  };
  const [a, b] = [await createNetns('a'), await createNetns('b')];
  const [ida, idb] = [cid(), cid()];
  const ipA = await mustAdd(conf, a, ida, 'bridge');
  const ipB = await mustAdd(conf, b, idb, 'bridge');
  assert.ok(Number(ipA.split('.')[3]) >= 128 && Number(ipB.split('.')[3]) >= 128, `from the sub-pool: ${ipA} ${ipB}`);
  await serve(b, 'tcp', ipB, 8080);
  assert.is(await reach(a, 'tcp', ipB, 8080), ipA);
  for (const [ns, id] of [[a, ida], [b, idb]] as const) assert.is((await run('DEL', conf, ns, id, 'bridge')).exitCode, 0);
  assert.equal(serverState(), [], 'every address and the pool went back to the plugin');
  await execa('ip', ['link', 'del', conf.bridge], { reject: false });
  await server.stop();
});

test.run();
