import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convertResult, parseResult, type Result } from '../shared/cni/result.ts';
import { CniError } from '../shared/cni/errors.ts';

const dualStack: Result = {
  cniVersion: '1.1.0',
  interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', mtu: 1450, sandbox: '/var/run/netns/p' }],
  ips: [
    { address: '10.1.0.5/24', gateway: '10.1.0.1', interface: 0 },
    { address: 'fd00::5/64', gateway: 'fd00::1', interface: 0 },
  ],
  routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1', mtu: 1400 }, { dst: '::/0' }],
  dns: { nameservers: ['10.1.0.2'] },
};

test('1.1.0 keeps the interface mtu and route attributes', () => {
  const out = convertResult(dualStack, '1.1.0') as unknown as Result;
  assert.is(out.interfaces![0]!.mtu, 1450);
  assert.is(out.routes![0]!.mtu, 1400);
  assert.is(out.cniVersion, '1.1.0');
});

test('1.0.0 drops 1.1-only fields and has no ip version', () => {
  const out = convertResult(dualStack, '1.0.0') as unknown as Result;
  assert.is(out.interfaces![0]!.mtu, undefined);
  assert.is(out.routes![0]!.mtu, undefined);
  assert.is((out.ips![0] as unknown as Record<string, unknown>).version, undefined);
  assert.equal(out.ips![1], { address: 'fd00::5/64', gateway: 'fd00::1', interface: 0 });
});

for (const v of ['0.3.0', '0.3.1', '0.4.0'] as const) {
  test(`${v} gives every ip its version field`, () => {
    const out = convertResult(dualStack, v) as { ips: Array<{ version: string; address: string }> };
    assert.equal(out.ips.map((ip) => ip.version), ['4', '6']);
  });
}

for (const v of ['0.1.0', '0.2.0'] as const) {
  test(`${v} folds ips and routes into ip4 / ip6`, () => {
    const out = convertResult(dualStack, v);
    assert.equal(out, {
      cniVersion: v,
      ip4: { ip: '10.1.0.5/24', gateway: '10.1.0.1', routes: [{ dst: '0.0.0.0/0', gw: '10.1.0.1' }] },
      ip6: { ip: 'fd00::5/64', gateway: 'fd00::1', routes: [{ dst: '::/0' }] },
      dns: { nameservers: ['10.1.0.2'] },
    });
  });
}

test('0.2.0 keeps the first address of each family, as libcni converts', () => {
  const several: Result = { cniVersion: '1.1.0', ips: [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }, { address: 'fd00::2/64' }, { address: '10.0.1.2/24' }] };
  assert.equal(convertResult(several, '0.2.0'), { cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24', gateway: '10.0.0.1' }, ip6: { ip: 'fd00::2/64' } });
});

test('a 0.2.0 prevResult is read into the current shape', () => {
  const r = parseResult({ cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24', gateway: '10.0.0.1', routes: [{ dst: '0.0.0.0/0' }] } });
  assert.equal(r.ips, [{ address: '10.0.0.2/24', gateway: '10.0.0.1' }]);
  assert.equal(r.routes, [{ dst: '0.0.0.0/0' }]);
});

test('a 0.4.0 prevResult loses its ip version fields', () => {
  const r = parseResult({ cniVersion: '0.4.0', interfaces: [{ name: 'eth0' }], ips: [{ version: '4', address: '10.0.0.2/24', interface: 0 }] });
  assert.equal(r.ips, [{ address: '10.0.0.2/24', interface: 0 }]);
});

test('round trip: current -> 0.3.1 -> current keeps addresses, gateways and interface indexes', () => {
  const back = parseResult(convertResult(dualStack, '0.3.1'));
  assert.equal(back.ips, dualStack.ips);
  assert.equal(back.interfaces![0]!.name, 'eth0');
});

test('a result without ips address is a decode failure', () => {
  assert.throws(() => parseResult({ cniVersion: '1.0.0', ips: [{ gateway: '10.0.0.1' }] }), (e: unknown) => e instanceof CniError && e.code === 6);
});

test.run();
