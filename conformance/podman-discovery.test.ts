// podman (CNI backend) on a cnm-bridge network with serviceDiscovery: containers resolve each other by
// container name through the resolv.conf podman writes from the ADD result's dns.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allNetns, otherSuites } from './harness/netns.ts';
import { bin } from './harness/bins.ts';
import { makeDataDir, removeDataDir } from './harness/datadir.ts';
import { alive, forceCleanup, leftovers, serverPid, until } from './harness/discovery.ts';
import { existingDirs, removeNewDirs, runtimeDirs } from './harness/machine-dirs.ts';
import { podmanOnNetwork, RUN_LIMITS, type Podman } from './harness/podman.ts';
import { unmountUnder } from './harness/containerd.ts';

const network = `cnmd${process.pid}pm`;
const subnet = `172.21.${(process.pid % 8) * 30 + 28}.0/24`;
const machineDirs = [...runtimeDirs(), ...runtimeDirs().filter((d) => d.endsWith('/k8s.io')).map((d) => d.replace(/k8s\.io$/, 'libpod_parent'))];
const dirsBefore = existingDirs(machineDirs);
const netnsBefore = new Set<string>();
let dir = '';
let dataDir = '';
let runDir = '';
let pm: Podman;
let rootfs = '';

test.before(async () => {
  for (const n of await allNetns()) netnsBefore.add(n);
  dir = mkdtempSync(`/tmp/cnmd-data-${process.pid}-podman-`);
  dataDir = makeDataDir();
  runDir = `${dir}/dns`;
  // The conflist an operator would edit: service discovery on, aliases asked of the runtime.
  const edit = (plugin: Record<string, unknown>) => Object.assign(plugin, { serviceDiscovery: { runDir }, capabilities: { ...(plugin.capabilities as object), aliases: true } });
  ({ pm, rootfs } = await podmanOnNetwork(dir, { network, subnet, bridge: `cnmd${process.pid % 100000}bpm`, dataDir, edit }));
});

test.after(async () => {
  await pm?.run(['rm', '-af', '-t', '0']);
  await unmountUnder(dir);
  await forceCleanup(dataDir, runDir);
  rmSync(dir, { recursive: true, force: true });
  removeDataDir(dataDir);
  assert.equal(removeNewDirs(machineDirs, dirsBefore), [], 'podman left nothing on the machine');
  assert.equal((await allNetns()).filter((n) => !netnsBefore.has(n) && !otherSuites(n)), [], 'no namespace left');
});

test('two podman containers on a network with serviceDiscovery resolve each other by container name through podman\'s resolv.conf', async () => {
  const run = (name: string) => pm.run(['run', '-d', '--name', name, '--network', network, ...RUN_LIMITS, '--rootfs', rootfs, '/bin/sleep', '300']);
  for (const name of ['cnmd-web', 'cnmd-db']) {
    const r = await run(name);
    assert.is(r.exitCode, 0, `podman run ${name}: ${r.stderr}`);
  }
  const ipOf = async (name: string) => String((await pm.run(['inspect', name, '--format', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`])).stdout).trim();
  const [web, db] = [await ipOf('cnmd-web'), await ipOf('cnmd-db')];
  const gateway = subnet.replace(/0\/24$/, '1');

  const resolv = String((await pm.run(['exec', 'cnmd-web', '/bin/cat', '/etc/resolv.conf'])).stdout);
  assert.match(resolv, `nameserver ${gateway}`, `podman wrote the gateway into resolv.conf:\n${resolv}`);
  assert.match(resolv, /search .*cnm\.internal/, resolv);

  // busybox nslookup with no server argument reads the container's resolv.conf.
  const lookup = async (from: string, name: string) => String((await pm.run(['exec', from, '/bin/busybox', 'nslookup', name])).stdout);
  let seen = '';
  await until(async () => (seen = await lookup('cnmd-web', 'cnmd-db.cnm.internal')).includes(db), 20_000);
  assert.match(seen, db, `web resolves db:\n${seen}`);
  const back = await lookup('cnmd-db', 'cnmd-web.cnm.internal');
  assert.match(back, web, `db resolves web:\n${back}`);
  const ping = await pm.run(['exec', 'cnmd-db', '/bin/busybox', 'ping', '-c', '1', '-W', '3', 'cnmd-web']);
  assert.is(ping.exitCode, 0, `db reaches web by its bare name through the search domain: ${ping.stdout} ${ping.stderr}`);

  const pid = serverPid(runDir)!;
  assert.is((await pm.run(['rm', '-f', '-t', '0', 'cnmd-web', 'cnmd-db'])).exitCode, 0);
  assert.ok(await until(() => !alive(pid)), 'the DNS server stops with the last container');
  assert.is((await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', network], { reject: false })).exitCode, 0);
  assert.equal(await leftovers(), []);
});

test.run();
