import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeJson, parseNetConf } from '../shared/cni/config.ts';
import { parseEnv } from '../shared/cni/env.ts';
import { CniError } from '../shared/cni/errors.ts';

const code = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof CniError ? e.code : -1;
  }
  return undefined;
};

const base = { cniVersion: '1.1.0', name: 'pods', type: 'cnm-null' };

test('a minimal config parses, runtimeConfig defaults to empty', () => {
  const c = parseNetConf({ ...base });
  assert.is(c.name, 'pods');
  assert.is(c.type, 'cnm-null');
  assert.equal(c.runtimeConfig, {});
});

test('a config without cniVersion is 0.1.0, as libcni assumes', () => {
  assert.is(parseNetConf({ name: 'pods', type: 'cnm-null' }).cniVersion, '0.1.0');
});

test('an unsupported cniVersion is error 1', () => {
  assert.is(code(() => parseNetConf({ ...base, cniVersion: '2.0.0' })), 1);
});

test('missing name or type is error 7', () => {
  assert.is(code(() => parseNetConf({ cniVersion: '1.0.0', type: 'x' })), 7);
  assert.is(code(() => parseNetConf({ cniVersion: '1.0.0', name: 'n' })), 7);
});

test('a network name libcni would refuse is error 7', () => {
  assert.is(code(() => parseNetConf({ ...base, name: 'bad name' })), 7);
  assert.is(code(() => parseNetConf({ ...base, name: '-x' })), 7);
  assert.is(code(() => parseNetConf({ ...base, name: '_x' })), 7);
  for (const ok of ['0', 'a.b_c-d', 'Net9']) assert.is(parseNetConf({ ...base, name: ok }).name, ok);
});

test('ipam without a type is error 7 naming ipam', () => {
  try {
    parseNetConf({ ...base, ipam: { subnet: '10.0.0.0/24' } });
    assert.unreachable();
  } catch (e) {
    assert.is((e as CniError).code, 7);
    assert.match((e as CniError).msg, 'ipam');
  }
});

test('wrongly typed keys name the field', () => {
  try {
    parseNetConf({ ...base, dns: { nameservers: 'x' } });
    assert.unreachable();
  } catch (e) {
    assert.match((e as CniError).msg, 'dns.nameservers');
  }
});

test('prevResult of any version is read', () => {
  const c = parseNetConf({ ...base, prevResult: { cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24' } } });
  assert.equal(c.prevResult!.ips, [{ address: '10.0.0.2/24' }]);
});

test('GC valid attachments are read', () => {
  const c = parseNetConf({ ...base, 'cni.dev/valid-attachments': [{ containerID: 'a', ifname: 'eth0' }] });
  assert.equal(c.validAttachments, [{ containerID: 'a', ifname: 'eth0' }]);
  assert.is(code(() => parseNetConf({ ...base, 'cni.dev/valid-attachments': [{ containerID: 'a' }] })), 7);
});

test('GC: the older key cni.dev/attachments is read; a missing or null list is empty (nothing valid)', () => {
  const a = [{ containerID: 'a', ifname: 'eth0' }];
  assert.equal(parseNetConf({ ...base, 'cni.dev/attachments': a }).validAttachments, a);
  assert.equal(parseNetConf({ ...base, 'cni.dev/valid-attachments': a, 'cni.dev/attachments': [] }).validAttachments, a, 'the spec key wins');
  assert.equal(parseNetConf(base).validAttachments, []);
  assert.equal(parseNetConf({ ...base, 'cni.dev/valid-attachments': null }).validAttachments, [], "Go's nil slice");
  assert.is(code(() => parseNetConf({ ...base, 'cni.dev/attachments': 'a' })), 7);
});

test('bad JSON is error 6', () => {
  assert.is(code(() => decodeJson('{')), 6);
  assert.is(code(() => decodeJson('[]')), 6);
});

const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin' };

test('a full ADD env parses, CNI_ARGS into pairs and CNI_PATH into dirs', () => {
  const e = parseEnv({ ...env, CNI_ARGS: 'IgnoreUnknown=1;IP=10.0.0.5', CNI_PATH: '/a:/b' });
  assert.equal(e.args, [['IgnoreUnknown', '1'], ['IP', '10.0.0.5']]);
  assert.equal(e.path, ['/a', '/b']);
});

test('env validation: each bad variable is error 4', () => {
  for (const bad of [
    { CNI_COMMAND: undefined },
    { CNI_COMMAND: 'FROB' },
    { CNI_CONTAINERID: undefined },
    { CNI_CONTAINERID: 'has space' },
    { CNI_CONTAINERID: '-leading' },
    { CNI_IFNAME: 'a-name-that-is-too-long' },
    { CNI_IFNAME: '..' },
    { CNI_IFNAME: 'eth/0' },
    { CNI_IFNAME: 'eth:0' },
    { CNI_IFNAME: 'eth 0' },
    { CNI_IFNAME: 'eth\t0' },
    { CNI_IFNAME: 'eth\u00a00' },
    { CNI_CONTAINERID: 'a/b' },
    { CNI_CONTAINERID: '.hidden' },
    { CNI_CONTAINERID: 'caf\u00e9' },
    { CNI_NETNS: undefined },
    { CNI_NETNS: 'relative/path' },
    { CNI_ARGS: 'novalue' },
  ]) {
    assert.is(code(() => parseEnv({ ...env, ...bad })), 4, JSON.stringify(bad));
  }
});

test('DEL needs no CNI_NETNS; VERSION, GC and STATUS need only the command', () => {
  assert.is(parseEnv({ ...env, CNI_COMMAND: 'DEL', CNI_NETNS: undefined }).netns, '');
  for (const c of ['VERSION', 'GC', 'STATUS']) assert.is(parseEnv({ CNI_COMMAND: c }).command, c);
});

test('VERSION ignores the placeholders libcni sends with it', () => {
  const e = parseEnv({ CNI_COMMAND: 'VERSION', CNI_CONTAINERID: 'dummy', CNI_NETNS: 'dummy', CNI_IFNAME: 'dummy', CNI_PATH: 'dummy' });
  assert.is(e.command, 'VERSION');
});

test('a 15-byte interface name is fine, 16 is not', () => {
  assert.is(parseEnv({ ...env, CNI_IFNAME: 'a'.repeat(15) }).ifname, 'a'.repeat(15));
  assert.is(code(() => parseEnv({ ...env, CNI_IFNAME: 'a'.repeat(16) })), 4);
});

test.run();
