// podman with its CNI network backend on a cnm-bridge network: containers started image-free from a busybox
// rootfs get their addresses and reach each other; podman rm cleans up.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allNetns, otherSuites } from './harness/netns.ts';
import { bin } from './harness/bins.ts';
import { forceCleanup, leftovers, snapshotVeths } from './harness/bridge.ts';
import { filesUnder, makeDataDir, removeDataDir } from './harness/datadir.ts';
import { existingDirs, removeNewDirs, runtimeDirs } from './harness/machine-dirs.ts';
import { podmanOnNetwork, RUN_LIMITS, type Podman } from './harness/podman.ts';
import { unmountUnder } from './harness/containerd.ts';

const network = `cnmt${process.pid}pod`;
const subnet = `10.237.${process.pid % 250}.0/24`;
const machineDirs = [...runtimeDirs(), ...runtimeDirs().filter((d) => d.endsWith('/k8s.io')).map((d) => d.replace(/k8s\.io$/, 'libpod_parent'))];
const dirsBefore = existingDirs(machineDirs);
const netnsBefore = new Set<string>();
let dir = '';
let dataDir = '';
let pm: Podman;
let rootfs = '';


test.before(async () => {
  await snapshotVeths();
  for (const n of await allNetns()) netnsBefore.add(n);
  dir = mkdtempSync(`/tmp/cnmt-data-${process.pid}-podman-`);
  dataDir = makeDataDir();
  ({ pm, rootfs } = await podmanOnNetwork(dir, { network, subnet, bridge: `cnmtbpm${process.pid % 10000}`, dataDir }));
});

test.after(async () => {
  await pm?.run(['rm', '-af', '-t', '0']);
  await unmountUnder(dir);
  await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'prune'], { reject: false });
  await forceCleanup(dataDir);
  rmSync(dir, { recursive: true, force: true });
  removeDataDir(dataDir);
  assert.equal(removeNewDirs(machineDirs, dirsBefore), [], 'podman left nothing on the machine');
  assert.equal((await allNetns()).filter((n) => !netnsBefore.has(n) && !otherSuites(n)), [], 'no namespace left');
});

test('a container on a cnm-bridge network gets its address and a second container reaches it; podman rm cleans up', async () => {
  const server = await pm.run(['run', '-d', '--name', 'cnmt-web', '--network', network, ...RUN_LIMITS, '--rootfs', rootfs, '/bin/nc', '-ll', '-p', '8080', '-e', '/bin/echo', 'hello-from-web']);
  assert.is(server.exitCode, 0, `podman run: ${server.stderr}`);
  const inspect = await pm.run(['inspect', 'cnmt-web', '--format', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`]);
  const ip = String(inspect.stdout).trim();
  assert.match(ip, new RegExp(`^${subnet.replace(/\.0\/24$/, '').replace(/\./g, '\\.')}\\.\\d+$`), `the container has an address of the network (${inspect.stderr})`);
  const eps = JSON.parse((await execa(bin('cnm'), ['--data-dir', dataDir, 'endpoint', 'ls', '--json'])).stdout) as Array<{ addresses: string[] }>;
  assert.ok(eps.some((e) => e.addresses.includes(`${ip}/24`)), 'cnm endpoint ls shows it');

  const client = await pm.run(['run', '--rm', '--network', network, ...RUN_LIMITS, '--rootfs', rootfs, '/bin/sh', '-c', `echo | nc -w 3 ${ip} 8080`]);
  assert.is(client.exitCode, 0, `client: ${client.stderr}`);
  assert.match(String(client.stdout), 'hello-from-web', 'the second container reached the first over TCP');

  const rm = await pm.run(['rm', '-f', '-t', '0', 'cnmt-web']);
  assert.is(rm.exitCode, 0, String(rm.stderr));
  assert.equal(JSON.parse((await execa(bin('cnm'), ['--data-dir', dataDir, 'endpoint', 'ls', '--json'])).stdout), [], 'no endpoint left');
  assert.equal(filesUnder(`${dataDir}/ipam`).filter((f) => /\/[\d.]+$/.test(f)), [], 'no reservation left');
  assert.is((await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', network], { reject: false })).exitCode, 0);
  assert.equal(await leftovers(dataDir), []);
});

test.run();
