// A real dockerd (Debian's docker.io 20.10) as the client of `cnm plugin serve`: Docker networks on cnm-cni's
// bridge driver, containers on them pinging each other, and `docker network rm` removing what the network
// made; then the same with cnm-host-local as the network's IPAM driver. Everything runs inside one test
// namespace; dockerd and the plugin are stopped by PID.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { filesUnder } from './harness/datadir.ts';
import { servePluginTo, startDockerdWithPlugin, stopDockerdWithPlugin, type Dockerd } from './harness/dockerd.ts';
import { cleanupNetns, createNetns, type TestNetns } from './harness/netns.ts';
import type { PluginServer } from './harness/plugin-server.ts';

const PREFIX = `cnmr${process.pid}`;
const PLUGIN = `${PREFIX}p`;
const IMAGE = 'cnmr/busybox:1';
let dir = '';
let ns: TestNetns;
let dockerd: Dockerd | undefined;
let plugin: PluginServer;

test.before(async () => {
  dir = mkdtempSync(`/tmp/cnmr-${process.pid}-docker-`);
  ns = await createNetns('docker');
  await execa('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
  ({ dockerd, plugin } = await startDockerdWithPlugin(dir, ns, { image: IMAGE, plugin: PLUGIN, dataDir: `${dir}/plugin` }));
});

test.after(async () => {
  await stopDockerdWithPlugin(dockerd);
  await cleanupNetns();
  rmSync(dir, { recursive: true, force: true });
});

/** Links and nft tables inside the daemon's namespace. */
async function inNamespace(): Promise<{ links: string[]; tables: string[] }> {
  const links = (JSON.parse((await execa('ip', ['-n', ns.name, '-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>).map((l) => l.ifname).filter((l) => l !== 'lo');
  const nft = await execa('ip', ['netns', 'exec', ns.name, 'nft', '-j', 'list', 'tables']);
  const tables = (JSON.parse(nft.stdout).nftables as Array<{ table?: { family: string; name: string } }>).filter((e) => e.table).map((e) => `${e.table!.family} ${e.table!.name}`);
  return { links, tables };
}

async function twoContainersPing(d: Dockerd, network: string): Promise<string> {
  await d.docker(['run', '-d', '--network', network, '--name', `${network}-a`, IMAGE, '/bin/sleep', '300']);
  const ip = (await d.docker(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', `${network}-a`])).stdout.trim();
  const ping = await d.docker(['run', '--rm', '--network', network, IMAGE, 'ping', '-c', '1', '-W', '5', ip], { reject: false });
  assert.is(ping.exitCode, 0, `ping ${ip}: ${ping.stdout} ${ping.stderr}`);
  assert.match(ping.stdout, /1 packets received/);
  return ip;
}

async function networkLifecycle(name: string, subnet: string, bridge: string, ipamArgs: string[]): Promise<void> {
  const d = dockerd!;
  const id = (await d.docker(['network', 'create', '-d', PLUGIN, ...ipamArgs, '--subnet', subnet, '-o', `bridge=${bridge}`, name])).stdout.trim();
  const table = `inet cnm_${id.slice(0, 12)}`;
  const made = await inNamespace();
  assert.ok(made.links.includes(bridge), `the network's bridge ${bridge} exists: ${made.links}`);
  assert.ok(made.tables.includes(table), `its nft table ${table} exists: ${made.tables}`);

  const ip = await twoContainersPing(d, name);
  assert.ok(ip.startsWith(subnet.replace(/0\/24$/, '')), `${ip} is from ${subnet}`);
  const gw = (await d.docker(['run', '--rm', '--network', name, IMAGE, 'ip', 'route'])).stdout;
  assert.match(gw, new RegExp(`default via ${subnet.replace(/0\/24$/, '1')}`), 'Docker set the default route from Join\'s Gateway');

  await d.docker(['rm', '-f', `${name}-a`]);
  await d.docker(['network', 'rm', name]);
  const left = await inNamespace();
  assert.not.ok(left.links.includes(bridge), `docker network rm removed ${bridge}`);
  assert.not.ok(left.tables.includes(table), `docker network rm removed ${table}`);
  assert.equal(left.links, [], 'no link left in the daemon\'s namespace');
}

test('docker network create -d <cnm plugin>: two containers ping each other on a cnm bridge; docker network rm removes the bridge and its nft table', async () => {
  await networkLifecycle(`${PREFIX}n1`, '172.20.40.0/24', `${PREFIX}d1`.slice(0, 15), []);
  assert.equal(filesUnder(`${dir}/plugin`).filter((f) => !f.startsWith('locks/')), [], 'nothing left in the plugin\'s store');
});

test('the same with --ipam-driver <cnm plugin>: addresses from cnm-host-local, every one and the pool released', async () => {
  await networkLifecycle(`${PREFIX}n2`, '172.20.41.0/24', `${PREFIX}d2`.slice(0, 15), ['--ipam-driver', PLUGIN]);
  assert.equal(filesUnder(`${dir}/plugin`).filter((f) => !f.startsWith('locks/') && !f.includes('last_reserved')), [], 'nothing left in the plugin\'s store: pool and addresses released');
});

test('--driver macvlan: the served macvlan driver gives two containers children of a parent in the daemon\'s namespace; they ping each other; rm leaves the parent alone', async () => {
  const d = dockerd!;
  // A veth pair as the parent (this kernel has no dummy links); its peer stands for the wire.
  const parent = `${PREFIX}par`.slice(0, 15);
  const wire = `${PREFIX}wir`.slice(0, 15);
  await execa('ip', ['-n', ns.name, 'link', 'add', parent, 'type', 'veth', 'peer', 'name', wire]);
  for (const l of [parent, wire]) await execa('ip', ['-n', ns.name, 'link', 'set', l, 'up']);
  const name = `${PREFIX}mv`;
  await servePluginTo(d, { name, dataDir: `${dir}/plugin-macvlan`, driver: 'macvlan' });
  await d.docker(['network', 'create', '-d', name, '--ipam-driver', name, '--subnet', '172.20.42.0/24', '-o', `parent=${parent}`, name]);
  await twoContainersPing(d, name);
  const kinds = JSON.parse((await execa('ip', ['-n', ns.name, '-d', '-j', 'link', 'show'])).stdout) as Array<{ ifname: string; linkinfo?: { info_kind?: string } }>;
  assert.equal(kinds.filter((l) => l.linkinfo?.info_kind === 'macvlan').map((l) => l.ifname), [], 'the containers\' macvlans are in their own namespaces');
  await d.docker(['rm', '-f', `${name}-a`]);
  await d.docker(['network', 'rm', name]);
  assert.equal((await inNamespace()).links.sort(), [parent, wire].sort(), 'only the parent (and its wire) is left');
  assert.equal(filesUnder(`${dir}/plugin-macvlan`).filter((f) => !f.startsWith('locks/') && !f.includes('last_reserved')), [], 'nothing left in the plugin\'s store');
});

test.run();
