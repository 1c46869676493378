import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { capacity, parseHostLocalConf } from '../shared/ipam/config.ts';
import { formatIp, parseCidr } from '../shared/ipam/ip.ts';
import { CniError } from '../shared/cni/errors.ts';

const fieldError = (ipam: object): string => {
  try {
    parseHostLocalConf(ipam as Record<string, unknown>);
  } catch (e) {
    assert.ok(e instanceof CniError, String(e));
    assert.is((e as CniError).code, 7);
    return (e as CniError).msg;
  }
  throw new Error('expected an error');
};

test('a bare IPv4 subnet hands out .2 to .254: .0 is the network, .1 the gateway, .255 the broadcast', () => {
  const conf = parseHostLocalConf({ type: 'cnm-host-local', ranges: [[{ subnet: '10.1.0.0/24' }]] });
  const r = conf.ranges[0]!.ranges[0]!;
  assert.is(formatIp(4, r.start), '10.1.0.1');
  assert.is(formatIp(4, r.end), '10.1.0.254');
  assert.is(formatIp(4, r.gateway!), '10.1.0.1');
  assert.is(capacity(conf.ranges[0]!), 253n);
});

test('an IPv6 subnet runs to its last address', () => {
  const conf = parseHostLocalConf({ type: 'x', ranges: [[{ subnet: 'fd00::/120' }]] });
  const r = conf.ranges[0]!.ranges[0]!;
  assert.is(formatIp(6, r.end), 'fd00::ff');
  assert.is(conf.ranges[0]!.family, 6);
});

test('the older top-level subnet form is one range set', () => {
  const conf = parseHostLocalConf({ type: 'x', subnet: '10.2.0.0/16', rangeStart: '10.2.1.10', rangeEnd: '10.2.1.20', gateway: '10.2.0.1' });
  assert.is(conf.ranges.length, 1);
  assert.is(capacity(conf.ranges[0]!), 11n);
});

test('host bits in a subnet are masked off', () => {
  const c = parseCidr('10.3.7.9/16')!;
  assert.is(formatIp(4, c.network), '10.3.0.0');
});

test('dual stack: two range sets, one per family', () => {
  const conf = parseHostLocalConf({ type: 'x', ranges: [[{ subnet: '10.4.0.0/24' }], [{ subnet: 'fd04::/64' }]] });
  assert.equal(conf.ranges.map((s) => s.family), [4, 6]);
});

test('routes and dataDir are read', () => {
  const conf = parseHostLocalConf({ type: 'x', subnet: '10.5.0.0/24', routes: [{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16', gw: '10.5.0.254' }], dataDir: '/run/x' });
  assert.equal(conf.routes, [{ dst: '0.0.0.0/0' }, { dst: '192.168.0.0/16', gw: '10.5.0.254' }]);
  assert.is(conf.dataDir, '/run/x');
});

test('malformed ranges are error 7 and name the field', () => {
  assert.match(fieldError({ ranges: [[{ subnet: '10.0.0.0/33' }]] }), 'ipam.ranges[0][0].subnet');
  assert.match(fieldError({ ranges: [[{ subnet: 'banana' }]] }), 'ipam.ranges[0][0].subnet');
  assert.match(fieldError({ ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.1.5' }]] }), 'ipam.ranges[0][0].rangeStart 10.0.1.5 is outside');
  assert.match(fieldError({ ranges: [[{ subnet: '10.0.0.0/24', gateway: '10.9.9.9' }]] }), 'ipam.ranges[0][0].gateway');
  assert.match(fieldError({ ranges: [[{ subnet: 'fd00::/64', rangeStart: '10.0.0.1' }]] }), 'is IPv4 but subnet fd00::/64 is IPv6');
  assert.match(fieldError({ ranges: [[{ subnet: '10.0.0.0/24' }], [{ subnet: '10.0.0.0/25' }]] }), 'ipam.ranges[1][0] overlaps ipam.ranges[0][0]');
  assert.match(fieldError({ ranges: [[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.9', rangeEnd: '10.0.0.3' }]] }), 'is after rangeEnd');
  assert.match(fieldError({ ranges: [[{ subnet: '10.0.0.0/24' }, { subnet: 'fd00::/64' }]] }), 'mixes IPv6');
  assert.match(fieldError({ routes: [{ dst: 'x' }], subnet: '10.0.0.0/24' }), 'ipam.routes[0].dst');
  assert.match(fieldError({}), 'neither "ranges" nor "subnet"');
  assert.match(fieldError({ subnet: '10.0.0.0/31' }), 'too small');
});

test.run();
