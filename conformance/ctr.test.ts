// containerd's `ctr run --cni` on a cnm-bridge network, with the busybox rootfs: the container gets an address of
// the network, reaches the node, and `--rm` tears the network down, leaving nothing.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { allNetns, otherSuites } from './harness/netns.ts';
import { bin, ROOT } from './harness/bins.ts';
import { forceCleanup, leftovers, snapshotVeths } from './harness/bridge.ts';
import { startContainerd, stopContainerd, unmountUnder, type Containerd } from './harness/containerd.ts';
import { filesUnder, makeDataDir, removeDataDir } from './harness/datadir.ts';
import { buildBusyboxRootfs, PAUSE_IMAGE } from './harness/images.ts';
import { existingDirs, removeNewDirs, runtimeDirs } from './harness/machine-dirs.ts';
import { serve, stopAllServers } from './harness/traffic.ts';

const network = `cnmt${process.pid}ctr`;
const prefix = `10.238.${process.pid % 250}`;
const machineDirs = runtimeDirs();
const dirsBefore = existingDirs(machineDirs);
let dir = '';
let dataDir = '';
let containerd: Containerd;

let netnsBefore: string[] = [];

test.before(async () => {
  await snapshotVeths();
  netnsBefore = await allNetns();
  dir = mkdtempSync(`/tmp/cnmt-data-${process.pid}-ctr-`);
  dataDir = makeDataDir();
  const installed = await execa(bin('cnm'), ['install', '--bin-dir', `${dir}/bin`, '--conf-dir', `${dir}/net.d`, '--network', network, '--driver', 'bridge', '--subnet', `${prefix}.0/24`, '--bridge', `cnmtbct${process.pid % 10000}`, '--data-dir', dataDir], { reject: false });
  assert.is(installed.exitCode, 0, installed.stderr);
  containerd = await startContainerd(`${dir}/containerd`, `${dir}/bin`, `${dir}/net.d`, PAUSE_IMAGE);
});

test.after(async () => {
  await stopAllServers();
  if (containerd) await stopContainerd(containerd);
  await unmountUnder(dir);
  await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'prune'], { reject: false });
  await forceCleanup(dataDir);
  rmSync(dir, { recursive: true, force: true });
  removeDataDir(dataDir);
  assert.equal(removeNewDirs(machineDirs, dirsBefore), [], 'ctr and containerd left nothing on the machine');
  assert.equal((await allNetns()).filter((n) => !netnsBefore.includes(n) && !otherSuites(n)), [], 'no namespace left');
});

test('ctr run --cni: the container gets an address of the network, reaches the node, and --rm leaves nothing', async () => {
  const rootfs = buildBusyboxRootfs(dir);
  await serve(undefined, 'tcp', '0.0.0.0', 8095);
  const r = await execa(
    'unshare',
    [
      '-m', '/bin/sh', `${ROOT}/conformance/ctr/run-with-cni.sh`, `${dir}/bin`, `${dir}/net.d`,
      '--address', containerd.socket, 'run', '--cni', '--rm', '--env', `GW=${prefix}.1`, '--rootfs', rootfs, `cnmt-ctr-${process.pid}`,
      '/bin/sh', '-c', 'ip -4 addr show eth0; echo | nc -w 3 "$GW" 8095',
    ],
    { reject: false, timeout: 120_000 },
  );
  assert.is(r.exitCode, 0, `ctr run: ${r.stderr}`);
  assert.match(r.stdout, new RegExp(`inet ${prefix.replace(/\./g, '\\.')}\\.\\d+/24`), 'eth0 has an address of the network');
  assert.match(r.stdout, new RegExp(`${prefix.replace(/\./g, '\\.')}\\.\\d+\\s*$`), 'the node saw the container connect from its address');
  assert.equal(JSON.parse((await execa(bin('cnm'), ['--data-dir', dataDir, 'endpoint', 'ls', '--json'])).stdout), [], 'the network was torn down');
  assert.equal(filesUnder(`${dataDir}/ipam`).filter((f) => /\/[\d.]+$/.test(f)), [], 'no reservation left');
  const rm = await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', network], { reject: false });
  assert.is(rm.exitCode, 0, rm.stderr);
  assert.equal(await leftovers(dataDir), []);
});

test.run();
