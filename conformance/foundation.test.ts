// The foundation: cnm-null and cnm-host driven exactly as a runtime drives them, at every cniVersion,
// with every kind of malformed input, on real namespaces. Runs against each executable format.
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { execa } from 'execa';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bin, BIN_DIR, FORMAT, REFERENCE_DIR } from './harness/bins.ts';
import { ConflistRunner } from './harness/conflist.ts';
import { filesUnder, makeDataDir, removeDataDir } from './harness/datadir.ts';
import { cleanupNetns, createNetns, deleteNetns, listTestNetns, type TestNetns } from './harness/netns.ts';
import { errorCode, invoke, RUNTIME_PATH, type RuntimeEnv } from './harness/plugin.ts';

const VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const NODE_NETNS = `/proc/${process.pid}/ns/net`;
let dataDir = '';
let ns: TestNetns;
let seq = 0;

const cid = () => `c${process.pid}x${seq++}`;
const conf = (type: string, cniVersion = '1.1.0', extra: object = {}) => ({ cniVersion, name: `net-${type}`, type, dataDir, ...extra });
const env = (command: string, containerId: string, netns = ns.path, ifname = 'eth0'): RuntimeEnv => ({ command, containerId, netns, ifname, path: BIN_DIR });
const endpointRecords = () => filesUnder(`${dataDir}/endpoints`);

test.before.each(async () => {
  dataDir = makeDataDir();
  ns = await createNetns('pod');
});
test.after.each(async () => {
  await cleanupNetns();
  removeDataDir(dataDir);
});
test.after(async () => {
  await cleanupNetns();
  assert.equal(await listTestNetns(), [], 'no test namespace outlives the suite');
});

test(`[${FORMAT}] VERSION prints the seven versions from an empty dir with no node or bun on PATH`, async () => {
  const empty = mkdtempSync(`/tmp/cnmt-data-${process.pid}-empty-`);
  try {
    for (const name of ['cnm-null', 'cnm-host']) {
      copyFileSync(bin(name), `${empty}/${name}`);
      await execa('chmod', ['+x', `${empty}/${name}`]);
      const noNode = await execa('/bin/sh', ['-c', 'command -v node || command -v bun || echo none'], { env: { PATH: RUNTIME_PATH }, extendEnv: false });
      assert.is(noNode.stdout.trim(), 'none', 'the PATH given has no node and no bun');
      const r = await invoke(`${empty}/${name}`, { command: 'VERSION' }, '{"cniVersion":"1.1.0"}', { cwd: empty });
      assert.is(r.exitCode, 0, r.stderr);
      assert.equal(r.json!.supportedVersions, VERSIONS);
    }
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

for (const v of VERSIONS) {
  test(`[${FORMAT}] cnm-null at ${v}: ADD brings lo up and reports it in ${v}'s shape, then every command`, async () => {
    const id = cid();
    const add = await invoke(bin('cnm-null'), env('ADD', id), conf('cnm-null', v));
    assert.is(add.exitCode, 0, add.stdout + add.stderr);
    const r = add.json!;
    assert.is(r.cniVersion, v);
    if (v === '0.1.0' || v === '0.2.0') {
      assert.equal(r.ip4, { ip: '127.0.0.1/8' });
      assert.equal(r.ip6, { ip: '::1/128' });
    } else {
      assert.equal(r.interfaces, [{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: ns.path }]);
      const ips = r.ips as Array<Record<string, unknown>>;
      assert.equal(ips.map((ip) => ip.address), ['127.0.0.1/8', '::1/128']);
      assert.is(ips[0]!.version, v.startsWith('0.') ? '4' : undefined, 'ips carry a version before 1.0.0 only');
    }
    const lo = await execa('ip', ['-n', ns.name, '-j', 'link', 'show', 'lo']);
    assert.ok(JSON.parse(lo.stdout)[0].flags.includes('UP'), 'lo is up in the pod namespace');

    const check = await invoke(bin('cnm-null'), env('CHECK', id), conf('cnm-null', v, { prevResult: r }));
    if (v >= '0.4.0') assert.is(check.exitCode, 0, check.stdout);
    else assert.is(errorCode(check), 1, 'CHECK needs cniVersion 0.4.0');

    for (const command of ['STATUS', 'GC']) {
      const extra = command === 'GC' ? { 'cni.dev/valid-attachments': [{ containerID: id, ifname: 'eth0' }] } : {};
      const reply = await invoke(bin('cnm-null'), { command, path: BIN_DIR }, conf('cnm-null', v, extra));
      if (v === '1.1.0') assert.is(reply.exitCode, 0, reply.stdout);
      else assert.is(errorCode(reply), 1, `${command} needs cniVersion 1.1.0`);
    }
    assert.equal(endpointRecords(), [`net-cnm-null/${id}:eth0.json`], 'GC kept the valid attachment');

    const del = await invoke(bin('cnm-null'), env('DEL', id), conf('cnm-null', v));
    assert.is(del.exitCode, 0, del.stdout);
    assert.is(del.stdout, '', 'DEL prints nothing');
    assert.equal(endpointRecords(), []);
  });

  test(`[${FORMAT}] cnm-host at ${v}: ADD in the node's namespace reports the node's interfaces`, async () => {
    const id = cid();
    const add = await invoke(bin('cnm-host'), env('ADD', id, NODE_NETNS), conf('cnm-host', v));
    assert.is(add.exitCode, 0, add.stdout + add.stderr);
    if (v >= '0.3.0') {
      const names = (add.json!.interfaces as Array<{ name: string }>).map((i) => i.name);
      assert.ok(names.includes('lo'), `interfaces ${names} include lo`);
    } else {
      assert.is(add.json!.cniVersion, v);
      // One address per family at these versions: the node's primary one, on the link of its default route.
      const dev = (JSON.parse((await execa('ip', ['-j', '-4', 'route', 'show', 'default'])).stdout) as Array<{ dev: string }>)[0]?.dev;
      if (dev) {
        const primary = (JSON.parse((await execa('ip', ['-j', '-4', 'addr', 'show', 'dev', dev])).stdout) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>)[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
        assert.ok(primary.includes((add.json!.ip4 as { ip: string }).ip), `ip4 ${JSON.stringify(add.json!.ip4)} is on ${dev}, the default route's link`);
      }
    }
    const del = await invoke(bin('cnm-host'), env('DEL', id, NODE_NETNS), conf('cnm-host', v));
    assert.is(del.exitCode, 0, del.stdout);
    assert.equal(endpointRecords(), []);
  });
}

test(`[${FORMAT}] loopback (containerd's per-pod plugin) brings lo up and keeps no record anywhere`, async () => {
  const conf = { cniVersion: '0.3.1', name: 'cni-loopback', type: 'loopback' };
  const storeBefore = filesUnder('/var/lib/cni/cnm').length;
  const add = await invoke(bin('loopback'), env('ADD', cid(), ns.path, 'lo'), conf);
  assert.is(add.exitCode, 0, add.stdout);
  assert.equal((add.json!.interfaces as Array<{ name: string }>).map((i) => i.name), ['lo']);
  const lo = await execa('ip', ['-n', ns.name, '-j', 'link', 'show', 'lo']);
  assert.ok(JSON.parse(lo.stdout)[0].flags.includes('UP'));
  assert.is((await invoke(bin('loopback'), env('CHECK', cid(), ns.path, 'lo'), { ...conf, cniVersion: '1.0.0' })).exitCode, 0);
  assert.is((await invoke(bin('loopback'), env('DEL', cid(), ns.path, 'lo'), conf)).exitCode, 0);
  assert.is(filesUnder('/var/lib/cni/cnm').length, storeBefore, 'the operator store is untouched');
});

test(`[${FORMAT}] cnm-host refuses a pod with its own namespace (error 7) and leaves nothing`, async () => {
  const r = await invoke(bin('cnm-host'), env('ADD', cid()), conf('cnm-host'));
  assert.is(errorCode(r), 7);
  assert.match(r.json!.msg as string, 'namespace of its own');
  assert.equal(filesUnder(dataDir), [], 'no endpoint or network record left');
});

test(`[${FORMAT}] DEL is idempotent: twice, after the namespace is gone, and for what was never added`, async () => {
  for (const plugin of ['cnm-null', 'cnm-host']) {
    const id = cid();
    const netns = plugin === 'cnm-host' ? NODE_NETNS : ns.path;
    assert.is((await invoke(bin(plugin), env('ADD', id, netns), conf(plugin))).exitCode, 0);
    for (let i = 0; i < 2; i++) {
      const del = await invoke(bin(plugin), env('DEL', id, netns), conf(plugin));
      assert.is(del.exitCode, 0, `DEL #${i + 1}: ${del.stdout}`);
    }
    const never = await invoke(bin(plugin), env('DEL', 'never-added'), conf(plugin));
    assert.is(never.exitCode, 0, never.stdout);
    const noNetns = await invoke(bin(plugin), { command: 'DEL', containerId: 'no-netns', ifname: 'eth0', path: BIN_DIR }, conf(plugin));
    assert.is(noNetns.exitCode, 0, noNetns.stdout);
  }
  const id = cid();
  assert.is((await invoke(bin('cnm-null'), env('ADD', id), conf('cnm-null'))).exitCode, 0);
  await deleteNetns(ns);
  const del = await invoke(bin('cnm-null'), env('DEL', id), conf('cnm-null'));
  assert.is(del.exitCode, 0, del.stdout);
  assert.equal(endpointRecords(), []);
});

test(`[${FORMAT}] malformed input gets the spec's error code and leaves nothing behind`, async () => {
  const good = env('ADD', 'c-bad');
  const cases: Array<[string, RuntimeEnv, string | object, number]> = [
    ['bad JSON', good, '{"cniVersion": ', 6],
    ['a JSON array', good, '[]', 6],
    ['no CNI_COMMAND', { ...good, command: '' }, conf('cnm-null'), 4],
    ['an unknown command', { ...good, command: 'FROB' }, conf('cnm-null'), 4],
    ['no CNI_CONTAINERID', { ...good, containerId: undefined }, conf('cnm-null'), 4],
    ['no CNI_NETNS on ADD', { ...good, netns: undefined }, conf('cnm-null'), 4],
    ['no CNI_IFNAME', { ...good, ifname: undefined }, conf('cnm-null'), 4],
    ['no CNI_PATH', { ...good, path: undefined }, conf('cnm-null'), 4],
    ['an ifname over 15 bytes', { ...good, ifname: 'abcdefghijklmnop' }, conf('cnm-null'), 4],
    ['ifname ".."', { ...good, ifname: '..' }, conf('cnm-null'), 4],
    ['an ifname with "/"', { ...good, ifname: 'et/h0' }, conf('cnm-null'), 4],
    ['an ifname with whitespace', { ...good, ifname: 'eth 0' }, conf('cnm-null'), 4],
    ['a container id with "/"', { ...good, containerId: 'a/b' }, conf('cnm-null'), 4],
    ['a netns path that does not exist', { ...good, netns: '/var/run/netns/cnmt-missing' }, conf('cnm-null'), 3],
    ['a netns path that is not a namespace', { ...good, netns: '/etc/hostname' }, conf('cnm-null'), 4],
    ['an unsupported cniVersion', good, conf('cnm-null', '9.9.9'), 1],
    ['a config without name', good, { cniVersion: '1.1.0', type: 'cnm-null', dataDir }, 7],
    ['a config without type', good, { cniVersion: '1.1.0', name: 'x', dataDir }, 7],
    ['cnm-null given an ipam section', good, conf('cnm-null', '1.1.0', { ipam: { type: 'cnm-host-local', subnet: '10.9.0.0/24' } }), 7],
    ['a relative dataDir', good, { ...conf('cnm-null'), dataDir: 'rel/dir' }, 7],
  ];
  for (const [what, e, stdin, want] of cases) {
    const r = await invoke(bin('cnm-null'), e, stdin);
    assert.is(r.exitCode, 1, `${what}: exit code`);
    assert.is(errorCode(r), want, `${what}: ${r.stdout}`);
    assert.type(r.json!.msg, 'string');
    assert.ok(!r.stdout.includes('    at '), `${what}: no stack trace on stdout`);
    assert.ok('cniVersion' in r.json! && 'details' in r.json!, `${what}: error has cniVersion and details`);
  }
  assert.equal(filesUnder(dataDir), [], 'no record left by any failed invocation');
  const lo = await execa('ip', ['-n', ns.name, '-j', 'link', 'show', 'lo']);
  assert.not.ok(JSON.parse(lo.stdout)[0].flags.includes('UP'), 'the namespace was not touched');
});

test(`[${FORMAT}] diagnostics go to stderr and to the config's logFile, never to stdout`, async () => {
  const logFile = `${dataDir}/plugin.log`;
  const r = await invoke(bin('cnm-null'), env('ADD', cid(), '/var/run/netns/cnmt-no-such'), conf('cnm-null', '1.1.0', { logFile }));
  assert.is(errorCode(r), 3);
  assert.match(r.stderr, 'does not exist');
  assert.match(readFileSync(logFile, 'utf8'), /cnm-null error: code 3: network namespace \/var\/run\/netns\/cnmt-no-such does not exist/);
  assert.is(JSON.parse(r.stdout).code, 3, 'stdout holds the error JSON alone');
});

test(`[${FORMAT}] a conflist runs as libcni runs it: ADD in order with prevResult, CHECK, DEL with the cached result, GC, STATUS`, async () => {
  const cache = `${dataDir}/libcni-cache`;
  const list = {
    cniVersion: '1.0.0',
    name: 'chain',
    plugins: [{ type: 'cnm-null', dataDir }, { type: 'loopback' }],
  };
  const runner = new ConflistRunner(list, [BIN_DIR, REFERENCE_DIR], cache);
  const att = { containerId: cid(), netns: ns.path, ifname: 'eth0' };
  const result = await runner.add(att);
  assert.ok((result.interfaces as Array<{ name: string }>).some((i) => i.name === 'lo'), 'the chain result carries the interface');
  assert.ok(runner.cached(att), 'the result is cached for DEL and CHECK');
  await runner.check(att);
  await runner.del(att);
  assert.equal(endpointRecords(), []);

  const list11 = { ...list, cniVersion: '1.1.0', plugins: [{ type: 'cnm-null', dataDir }] };
  const runner11 = new ConflistRunner(list11, [BIN_DIR], cache);
  const a = { ...att, containerId: cid() };
  const b = { ...att, containerId: cid(), ifname: 'net1' };
  await runner11.add(a);
  await runner11.add(b);
  await runner11.status();
  // An attachment libcni's cache does not know (its entry lost): only the plugin's own GC can find it.
  const leak = async () => {
    const id = cid();
    const r = await invoke(bin('cnm-null'), env('ADD', id), { ...list11.plugins[0], name: 'chain', cniVersion: '1.1.0' });
    assert.is(r.exitCode, 0, r.stdout);
    return id;
  };
  const leaked = await leak();
  await runner11.gc([{ containerID: a.containerId, ifname: a.ifname }]);
  assert.equal(endpointRecords(), [`chain/${a.containerId}:eth0.json`], 'GC with a list (sent under both keys, as libcni does) kept only it');
  assert.not.ok(endpointRecords().some((f) => f.includes(leaked)), 'the uncached attachment went by the plugin\'s GC');

  // cnitool's `gc` sends no list: nothing is valid, so the cached attachment and another leaked one both go.
  await leak();
  await runner11.gc();
  assert.equal(endpointRecords(), [], 'GC without a list collected everything');
});

test.run();
