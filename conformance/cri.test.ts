// The kubelet path: a private containerd with its CRI plugin runs the conflist `cnm install` wrote, with the
// executables `cnm install` put in a bin dir; a CRI client makes the calls kubelet makes for a pod's network.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin } from './harness/bins.ts';
import { forceCleanup, leftovers, snapshotVeths } from './harness/bridge.ts';
import { criClient, startContainerd, stopContainerd, unmountUnder, type Containerd, type CriClient, type PodSandboxConfig } from './harness/containerd.ts';
import { filesUnder, makeDataDir, removeDataDir } from './harness/datadir.ts';
import { buildPauseArchive, PAUSE_IMAGE } from './harness/images.ts';
import { cleanupNetns } from './harness/netns.ts';
import { cleanupLinks, createOutside } from './harness/topology.ts';
import { existingDirs, removeNewDirs, runtimeDirs } from './harness/machine-dirs.ts';
import { pathNetns, reach, serve, stopAllServers } from './harness/traffic.ts';

const network = `cnmt${process.pid}cri`;
const subnet = `10.236.${process.pid % 250}.0/24`;
let dir = '';
let dataDir = '';
let containerd: Containerd;
let cri: CriClient;
let seq = 0;
const machineDirs = runtimeDirs();
const dirsBefore = existingDirs(machineDirs);

interface Endpoint {
  containerId: string;
  addresses: string[];
  netns: string;
}

const endpoints = async (): Promise<Endpoint[]> => JSON.parse((await execa(bin('cnm'), ['--data-dir', dataDir, 'endpoint', 'ls', '--json'])).stdout);

function sandboxConfig(name: string, portMappings: PodSandboxConfig['portMappings'] = []): PodSandboxConfig {
  const uid = `${process.pid}-${seq++}`;
  return {
    metadata: { name, uid, namespace: 'cnm-test', attempt: 0 },
    hostname: name,
    logDirectory: `${dir}/logs/${uid}`,
    portMappings,
    linux: { securityContext: { namespaceOptions: { network: 'POD' } } },
  };
}

async function removeAllSandboxes(): Promise<void> {
  const { items } = await cri.listPodSandbox({});
  for (const s of items) {
    await cri.stopPodSandbox({ podSandboxId: s.id });
    await cri.removePodSandbox({ podSandboxId: s.id });
  }
}

test.before(async () => {
  await snapshotVeths();
  dir = mkdtempSync(`/tmp/cnmt-data-${process.pid}-cri-`);
  dataDir = makeDataDir();
  const installed = await execa(bin('cnm'), ['install', '--bin-dir', `${dir}/bin`, '--conf-dir', `${dir}/net.d`, '--network', network, '--driver', 'bridge', '--subnet', subnet, '--bridge', `cnmtbcri${process.pid % 10000}`, '--data-dir', dataDir], { reject: false });
  assert.is(installed.exitCode, 0, `cnm install: ${installed.stderr}`);
  const archive = await buildPauseArchive(dir);
  containerd = await startContainerd(`${dir}/containerd`, `${dir}/bin`, `${dir}/net.d`, PAUSE_IMAGE);
  const imported = await execa('ctr', ['--address', containerd.socket, '-n', 'k8s.io', 'images', 'import', archive], { reject: false });
  assert.is(imported.exitCode, 0, `ctr images import: ${imported.stderr}`);
  cri = criClient(containerd.socket);
});

test.after(async () => {
  await stopAllServers();
  if (cri) {
    await removeAllSandboxes().catch(() => undefined);
    cri.close();
  }
  if (containerd) await stopContainerd(containerd);
  await unmountUnder(dir);
  await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'prune'], { reject: false });
  await forceCleanup(dataDir);
  await cleanupLinks();
  await cleanupNetns();
  rmSync(dir, { recursive: true, force: true });
  removeDataDir(dataDir);
  assert.equal(removeNewDirs(machineDirs, dirsBefore), [], 'containerd left nothing on the machine');
});

test('two pod sandboxes get the addresses cnm endpoint ls shows, and reach each other over TCP', async () => {
  const a = (await cri.runPodSandbox({ config: sandboxConfig('pod-a') })).podSandboxId;
  const b = (await cri.runPodSandbox({ config: sandboxConfig('pod-b') })).podSandboxId;
  const ipOf = async (id: string) => (await cri.podSandboxStatus({ podSandboxId: id })).status.network!.ip;
  const [ipA, ipB] = [await ipOf(a), await ipOf(b)];
  assert.match(ipA, new RegExp(`^${subnet.replace(/\.0\/24$/, '').replace(/\./g, '\\.')}\\.\\d+$`), 'pod a has an address of the network');
  const eps = await endpoints();
  const epA = eps.find((e) => e.containerId === a);
  const epB = eps.find((e) => e.containerId === b);
  assert.ok(epA && epB, `cnm endpoint ls shows both sandboxes (${JSON.stringify(eps.map((e) => e.containerId))})`);
  assert.equal(epA!.addresses.map((x) => x.split('/')[0]), [ipA]);
  assert.equal(epB!.addresses.map((x) => x.split('/')[0]), [ipB]);
  await serve(pathNetns(epB!.netns), 'tcp', ipB, 8080);
  assert.is(await reach(pathNetns(epA!.netns), 'tcp', ipB, 8080), ipA, 'sandbox a reaches sandbox b');
  await stopAllServers();

  for (const id of [a, b]) {
    await cri.stopPodSandbox({ podSandboxId: id });
    await cri.removePodSandbox({ podSandboxId: id });
  }
  assert.equal((await cri.listPodSandbox({})).items, []);
  assert.equal(await endpoints(), [], 'no endpoint left');
  assert.equal(filesUnder(`${dataDir}/ipam`).filter((f) => /\/[\d.]+$/.test(f)), [], 'no reservation left');
  const links = await execa('ip', ['-j', 'link', 'show', 'master', `cnmtbcri${process.pid % 10000}`]);
  assert.equal(JSON.parse(links.stdout || '[]'), [], 'no veth left on the bridge');
});

test('a sandbox with a hostPort is reached through it from an outside namespace; removing it removes the mapping', async () => {
  const out = await createOutside();
  const hostPort = 32000 + (process.pid % 700);
  const id = (await cri.runPodSandbox({ config: sandboxConfig('pod-web', [{ protocol: 'TCP', containerPort: 80, hostPort }]) })).podSandboxId;
  const ep = (await endpoints()).find((e) => e.containerId === id)!;
  await serve(pathNetns(ep.netns), 'tcp', '0.0.0.0', 80);
  assert.is(await reach(out.ns, 'tcp', out.nodeIp, hostPort), out.ip, 'outside -> node:hostPort -> sandbox:80');
  await stopAllServers();
  await cri.stopPodSandbox({ podSandboxId: id });
  await cri.removePodSandbox({ podSandboxId: id });
  const table = await execa('nft', ['list', 'table', 'inet', `cnm_${network}`]);
  assert.not.match(table.stdout, String(hostPort), 'the mapping went with the sandbox');
  assert.equal(await endpoints(), []);
  const rm = await execa(bin('cnm'), ['--data-dir', dataDir, 'network', 'rm', network], { reject: false });
  assert.is(rm.exitCode, 0, rm.stderr);
  assert.equal(await leftovers(dataDir), [], 'no bridge, veth or nft table left');
});

test.run();
