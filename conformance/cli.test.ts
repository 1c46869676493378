// The operator's side: `cnm install` onto a node's dirs, and cnitool's verbs (add, check, del, gc, status) over a
// conf dir, as a runtime would run them.
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin } from './harness/bins.ts';
import { filesUnder, makeDataDir, removeDataDir } from './harness/datadir.ts';
import { cleanupNetns, createNetns } from './harness/netns.ts';
import { forceCleanup, leftovers, snapshotVeths } from './harness/bridge.ts';

let dataDir = '';
let node = '';
test.before(snapshotVeths);
test.before.each(() => {
  dataDir = makeDataDir();
  node = mkdtempSync(`/tmp/cnmt-data-${process.pid}-node-`);
});
test.after.each(async () => {
  await forceCleanup(dataDir);
  await cleanupNetns();
  removeDataDir(dataDir);
  rmSync(node, { recursive: true, force: true });
});

const cnm = (args: string[], env: Record<string, string> = {}) => execa(bin('cnm'), args, { reject: false, env });
const network = `cnmt${process.pid}cli`;
const bridge = `cnmtbc${process.pid % 100000}`.slice(0, 15);

async function installNetwork(extra: string[] = []) {
  return cnm(['install', '--bin-dir', `${node}/bin`, '--conf-dir', `${node}/net.d`, '--network', network, '--driver', 'bridge', '--subnet', '10.230.0.0/24', '--bridge', bridge, '--data-dir', dataDir, ...extra]);
}

test('cnm install puts every executable (and a loopback) in the bin dir and writes the conflist', async () => {
  const r = await installNetwork();
  assert.is(r.exitCode, 0, r.stderr);
  const names = readdirSync(`${node}/bin`).sort();
  assert.equal(names, ['cnm', 'cnm-bridge', 'cnm-host', 'cnm-host-local', 'cnm-ipvlan', 'cnm-macvlan', 'cnm-null', 'cnm-overlay', 'cnm-remote', 'cnm-remote-ipam', 'loopback']);
  assert.is(statSync(`${node}/bin/cnm-bridge`).ino, statSync(`${node}/bin/cnm`).ino, 'plugins are hard links of one file');
  const v = await execa(`${node}/bin/cnm-bridge`, [], { env: { CNI_COMMAND: 'VERSION' }, extendEnv: false });
  assert.match(v.stdout, '"supportedVersions"');
  const conf = JSON.parse(readFileSync(`${node}/net.d/10-${network}.conflist`, 'utf8'));
  assert.is(conf.name, network);
  assert.is(conf.plugins[0].type, 'cnm-bridge');
  assert.equal(conf.plugins[0].ipam.ranges, [[{ subnet: '10.230.0.0/24' }]]);
  assert.equal(readdirSync(`${node}/net.d`), [`10-${network}.conflist`], 'no temp file left');
});

test('cnm install never overwrites an operator\'s conflist without --force, and keeps an existing loopback', async () => {
  assert.is((await installNetwork()).exitCode, 0);
  assert.is((await installNetwork()).exitCode, 0, 'the same content again is fine');
  const file = `${node}/net.d/10-${network}.conflist`;
  writeFileSync(file, '{"operator": "wrote this"}');
  writeFileSync(`${node}/bin/loopback`, 'the operator\'s loopback');
  const refused = await installNetwork();
  assert.is(refused.exitCode, 1);
  assert.match(refused.stderr, '--force');
  assert.is(readFileSync(file, 'utf8'), '{"operator": "wrote this"}');
  const forced = await installNetwork(['--force']);
  assert.is(forced.exitCode, 0, forced.stderr);
  assert.is(JSON.parse(readFileSync(file, 'utf8')).name, network);
  assert.is(readFileSync(`${node}/bin/loopback`, 'utf8'), 'the operator\'s loopback', 'an existing loopback is kept');
  const bad = await cnm(['install', '--bin-dir', `${node}/bin`, '--network', 'x', '--driver', 'bridge']);
  assert.is(bad.exitCode, 2);
  assert.match(bad.stderr, '--subnet');
});

test('cnitool\'s verbs: add, check, gc, status and del of a named network from a conf dir', async () => {
  assert.is((await installNetwork(['--cni-version', '1.1.0'])).exitCode, 0);
  const ns = await createNetns('tool');
  const env = { NETCONFPATH: `${node}/net.d`, CNI_PATH: `${node}/bin` };
  const cache = ['--cache-dir', `${node}/cache`];
  const added = await cnm(['add', network, ns.path, ...cache], env);
  assert.is(added.exitCode, 0, added.stderr);
  const result = JSON.parse(added.stdout);
  assert.match(result.ips[0].address, /^10\.230\.0\.\d+\/24$/);
  const addr = await execa('ip', ['-n', ns.name, '-4', '-o', 'addr', 'show', 'eth0']);
  assert.match(addr.stdout, result.ips[0].address);
  assert.ok(filesUnder(`${node}/cache`).some((f) => f.startsWith(`results/${network}-cnitool-`)), 'the result is cached as libcni caches it');
  for (const verb of [['check', network, ns.path], ['status', network], ['gc', network]]) {
    const r = await cnm([...verb, ...cache], env);
    assert.is(r.exitCode, 0, `${verb[0]}: ${r.stderr}`);
  }
  assert.is(filesUnder(`${dataDir}/endpoints`).length, 1, 'GC kept the cached attachment');
  const unknown = await cnm(['add', 'no-such-net', ns.path, ...cache], env);
  assert.is(unknown.exitCode, 1);
  assert.match(unknown.stderr, 'no network named "no-such-net"');
  const deleted = await cnm(['del', network, ns.path, ...cache], env);
  assert.is(deleted.exitCode, 0, deleted.stderr);
  assert.equal(filesUnder(`${dataDir}/endpoints`), []);
  assert.not.ok(filesUnder(`${node}/cache`).some((f) => f.startsWith('results/')), 'DEL dropped the cache entry');
  assert.is((await cnm(['--data-dir', dataDir, 'network', 'rm', network])).exitCode, 0);
  assert.equal(await leftovers(dataDir), []);
  assert.not.ok(existsSync(`${dataDir}/networks/${network}.json`));
});

test.run();
