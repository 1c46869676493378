// The pure parts of the remote driver: Docker's plugin discovery order, HTTP response framing, and Docker's
// -o options onto a driver's keys.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CniError } from '../shared/cni/errors.ts';
import { driverOptions } from '../shared/docker/options.ts';
import { overlayNetwork } from '../shared/docker/overlay-door.ts';
import { discoverPlugin, parsePluginUrl } from '../shared/remote/discovery.ts';
import { parseResponse } from '../shared/remote/transport.ts';

test('discovery: NAME.sock, then NAME/NAME.sock, then NAME.spec and NAME.json in each spec dir; paths and URLs as they are', async () => {
  const root = mkdtempSync('/tmp/cnmr-unit-');
  const roots = { sockets: `${root}/run`, specs: [`${root}/etc`, `${root}/lib`] };
  for (const d of [roots.sockets, `${roots.sockets}/b`, ...roots.specs]) mkdirSync(d, { recursive: true });
  const listen = (path: string) => new Promise<ReturnType<typeof createServer>>((resolve) => {
    const s = createServer();
    s.listen(path, () => resolve(s));
  });
  const servers = [await listen(`${roots.sockets}/a.sock`), await listen(`${roots.sockets}/b/b.sock`)];
  writeFileSync(`${root}/etc/c.spec`, 'unix:///run/c/c.sock\n');
  writeFileSync(`${root}/lib/d.json`, JSON.stringify({ Name: 'd', Addr: 'tcp://127.0.0.1:9090' }));
  writeFileSync(`${root}/lib/e.json`, JSON.stringify({ Name: 'e', Addr: 'tcp://127.0.0.1:9091', TLSConfig: { CAFile: '/x' } }));
  try {
    assert.equal(discoverPlugin('a', roots).address, { kind: 'unix', path: `${roots.sockets}/a.sock` });
    assert.equal(discoverPlugin('b', roots).address, { kind: 'unix', path: `${roots.sockets}/b/b.sock` });
    assert.equal(discoverPlugin('c', roots).address, { kind: 'unix', path: '/run/c/c.sock' });
    assert.equal(discoverPlugin('d', roots).address, { kind: 'tcp', host: '127.0.0.1', port: 9090 });
    assert.throws(() => discoverPlugin('e', roots), (e: unknown) => e instanceof CniError && e.msg.includes('TLS'));
    assert.throws(() => discoverPlugin('missing', roots), (e: unknown) => e instanceof CniError && e.code === 7 && e.msg.includes('missing.spec'));
    assert.equal(discoverPlugin('/some/where.sock', roots).address, { kind: 'unix', path: '/some/where.sock' });
    assert.equal(parsePluginUrl('tcp://[::1]:80', 'x'), { kind: 'tcp', host: '::1', port: 80 });
  } finally {
    for (const s of servers) s.close();
    rmSync(root, { recursive: true, force: true });
  }
});

test('HTTP framing: Content-Length, chunked, and a body read to the end of the connection', () => {
  const b = (s: string) => Buffer.from(s);
  assert.equal(parseResponse(b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}'), false), { status: 200, body: '{}' });
  assert.is(parseResponse(b('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}'), false), undefined, 'incomplete');
  assert.equal(parseResponse(b('HTTP/1.1 500 Internal\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{"E\r\n9\r\nrr":"x"}\n\r\n0\r\n\r\n'), false), { status: 500, body: '{"Err":"x"}\n' });
  assert.is(parseResponse(b('HTTP/1.1 200 OK\r\n\r\n{"a":1}'), false), undefined, 'no length: until the server closes');
  assert.equal(parseResponse(b('HTTP/1.1 200 OK\r\n\r\n{"a":1}'), true), { status: 200, body: '{"a":1}' });
  assert.throws(() => parseResponse(b('SSH-2.0\r\n\r\n'), true));
});

test('docker -o options: Docker\'s names onto the bridge keys, text typed, gateway on the bridge and the default route left to Docker', () => {
  const o = driverOptions('bridge', '0123456789abcdef', { 'com.docker.network.bridge.name': 'br0', 'com.docker.network.driver.mtu': '1400', icc: 'false' }, false);
  assert.equal(o, { bridge: 'br0', ipMasq: true, mtu: 1400, icc: false, isGateway: true, isDefaultGateway: false });
  assert.equal(driverOptions('bridge', '0123456789abcdef', {}, true), { bridge: 'br-0123456789ab', ipMasq: false, internal: true, isGateway: true, isDefaultGateway: false });
  assert.equal(driverOptions('macvlan', 'x', { parent: 'eth0', mode: 'bridge' }, false), { parent: 'eth0', mode: 'bridge' });
  assert.equal(
    driverOptions('overlay', 'x', { etcdEndpoints: 'http://10.0.0.1:2379,http://10.0.0.2:2379', network: '10.240.0.0/16', vni: '7', name: 'pods' }, false),
    { etcdEndpoints: ['http://10.0.0.1:2379', 'http://10.0.0.2:2379'], network: '10.240.0.0/16', vni: 7, name: 'pods' },
    'overlay: etcdEndpoints comma-separated into the list the config takes',
  );
});

test('docker -o name= for the overlay: a network name or refused, before the agent is asked', () => {
  const keys = { etcdEndpoints: ['http://10.0.0.1:2379'], network: '10.240.0.0/16' };
  assert.throws(() => overlayNetwork('0123456789abcdef', { ...keys, name: '../x' }, [], [], '/nonexistent'), (e: CniError) => /-o name=\.\.\/x is not a network name/.test(e.msg));
  assert.throws(() => overlayNetwork('0123456789abcdef', keys, [], [{ AddressSpace: 'null', Pool: 'fd00::/64' }], '/nonexistent'), (e: CniError) => /IPv4 only/.test(e.msg));
});

test.run();
