import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canonicalIp, formatCidr, formatIp, parseCidr, parseIp } from '../shared/ipam/ip.ts';

test('IPv4 text round-trips, and malformed IPv4 is refused', () => {
  for (const t of ['0.0.0.0', '10.1.2.3', '255.255.255.255', '192.0.2.254']) assert.is(canonicalIp(t), t);
  for (const t of ['256.1.1.1', '1.2.3', '01.2.3.4', '1.2.3.4.5', '1.2.3.4/24', 'a.b.c.d', '', '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.0004', '+1.2.3.4', '1.2.3.-4', '１.2.3.4']) assert.is(parseIp(t), undefined, t);
});

test('IPv6 text is written as RFC 5952 says', () => {
  const cases: Array<[string, string]> = [
    ['fd00:0:0:0:0:0:0:1', 'fd00::1'],
    ['FD00::A', 'fd00::a'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::', '::'],
    ['::1', '::1'],
    ['fd00::', 'fd00::'],
    ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'],
  ];
  for (const [given, want] of cases) assert.is(canonicalIp(given), want, given);
  for (const t of ['fd00:::1', 'fd00::1::2', 'gggg::1', '::ffff:10.0.0.1', 'fe80::1%eth0']) assert.is(parseIp(t), undefined, t);
});

test('CIDR parsing masks host bits and knows the last address', () => {
  const c = parseCidr('10.9.8.7/20')!;
  assert.is(formatCidr(c), '10.9.0.0/20');
  assert.is(formatIp(4, c.last), '10.9.15.255');
  const v6 = parseCidr('fd00:1::5/120')!;
  assert.is(formatCidr(v6), 'fd00:1::/120');
  assert.is(formatIp(6, v6.last), 'fd00:1::ff');
  for (const t of ['10.0.0.0/33', '10.0.0.0', 'fd00::/129', '10.0.0.0/x', '10.0.0.0/', '10.0.0.0/0024', '10.0.0.0/ 8', '10.0.0.0/+8', '10.0.0.0/8.0']) assert.is(parseCidr(t), undefined, t);
  assert.is(formatCidr(parseCidr('10.0.0.0/008')!), '10.0.0.0/8');
  assert.is(formatCidr(parseCidr('0.0.0.0/0')!), '0.0.0.0/0');
});

test.run();
