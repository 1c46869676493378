import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { parseHostLocalConf } from '../shared/ipam/config.ts';
import { Reservations } from '../shared/ipam/reservations.ts';
import { CniError } from '../shared/cni/errors.ts';

let dir = '';
test.before.each(() => {
  dir = mkdtempSync(`/tmp/cnmt-data-${process.pid}-unit-`);
});
test.after.each(() => rmSync(dir, { recursive: true, force: true }));

const sets = (ranges: object) => parseHostLocalConf({ type: 'x', ranges }).ranges;
const att = (n: number, ifname = 'eth0') => ({ containerID: `c${n}`, ifname });

test('allocation walks the range in order, skipping the gateway', () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/29' }]]);
  const got = [1, 2, 3].map((n) => res.allocate(att(n), s, [])[0]!.ip);
  assert.equal(got, ['10.0.0.2', '10.0.0.3', '10.0.0.4']);
});

test('round robin: a released address is not reused until the range wraps', () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/29' }]]); // .2 to .6
  for (const n of [1, 2, 3]) res.allocate(att(n), s, []);
  res.release(att(1));
  assert.is(res.allocate(att(4), s, [])[0]!.ip, '10.0.0.5');
  assert.is(res.allocate(att(5), s, [])[0]!.ip, '10.0.0.6');
  assert.is(res.allocate(att(6), s, [])[0]!.ip, '10.0.0.2', 'wraps to the freed address');
});

test('several ranges in a set are walked one after another', () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/24', rangeStart: '10.0.0.10', rangeEnd: '10.0.0.11' }, { subnet: '10.0.1.0/24', rangeStart: '10.0.1.10', rangeEnd: '10.0.1.10' }]]);
  const got = [1, 2, 3].map((n) => res.allocate(att(n), s, [])[0]!.ip);
  assert.equal(got, ['10.0.0.10', '10.0.0.11', '10.0.1.10']);
});

test('an exhausted set is error 102 naming the range, and leaves no half allocation', () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/30' }], [{ subnet: 'fd00::/126' }]]); // v4: .2 only; v6: ::2, ::3
  res.allocate(att(1), s, []);
  try {
    res.allocate(att(2), s, []);
    assert.unreachable();
  } catch (e) {
    assert.is((e as CniError).code, 102);
    assert.match((e as CniError).msg, 'ipam.ranges[0] (10.0.0.0/30');
  }
  assert.equal(res.held(att(2)), []);
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('fd00')), ['fd00::2'], 'the v6 address of the failed allocation is not kept');
});

test('a requested address is honoured, or refused with 103 when another holds it', () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/24' }]]);
  assert.is(res.allocate(att(1), s, ['10.0.0.77'])[0]!.ip, '10.0.0.77');
  try {
    res.allocate(att(2), s, ['10.0.0.77']);
    assert.unreachable();
  } catch (e) {
    assert.is((e as CniError).code, 103);
    assert.match((e as CniError).msg, 'c1');
  }
});

test('a reservation file holds the container id and ifname, as the reference writes them', () => {
  const res = new Reservations(dir);
  res.allocate(att(9, 'net1'), sets([[{ subnet: '10.0.0.0/24' }]]), []);
  assert.is(readFileSync(`${dir}/10.0.0.2`, 'utf8'), 'c9\r\nnet1');
});

test('release after a kill mid-allocation (index still pending) finds the addresses by owner', () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/24' }]]);
  writeFileSync(`${dir}/10.0.0.2`, 'c1\r\neth0');
  writeFileSync(`${dir}/10.0.0.3`, 'c2\r\neth0');
  rmSync(`${dir}/attachments`, { recursive: true, force: true });
  res.allocate(att(7), s, []); // makes the attachments dir
  writeFileSync(`${dir}/attachments/c1:eth0`, JSON.stringify({ state: 'pending', ips: [] }));
  res.release(att(1));
  assert.not.ok(readdirSync(dir).includes('10.0.0.2'));
  assert.ok(readdirSync(dir).includes('10.0.0.3'), 'another container keeps its address');
});

test("an attachment's addresses are links of its one file: a dual-stack attachment makes one new file", () => {
  const res = new Reservations(dir);
  const got = res.allocate(att(1), sets([[{ subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/64' }]]), []);
  assert.equal(got.map((a) => a.ip), ['10.0.0.2', 'fd00::2']);
  const file = statSync(`${dir}/attachments/c1:eth0`);
  assert.is(file.nlink, 3);
  assert.is(statSync(`${dir}/10.0.0.2`).ino, file.ino);
  assert.is(statSync(`${dir}/fd00::2`).ino, file.ino);
  assert.is(readFileSync(`${dir}/fd00::2`, 'utf8'), 'c1\r\neth0');
  assert.equal(res.held(att(1)).sort(), ['10.0.0.2', 'fd00::2']);
});

test("a release takes only the attachment's own links, whatever its caller's list says", () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/24' }], [{ subnet: 'fd00::/64' }]]);
  res.allocate(att(1), s, []); // 10.0.0.2, fd00::2
  res.allocate(att(2), s, []); // 10.0.0.3, fd00::3
  res.release(att(1), ['10.0.0.3', '10.0.0.2']); // one wrong, one missing: found by looking
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('10.') || n.startsWith('fd00')).sort(), ['10.0.0.3', 'fd00::3']);
  assert.not.ok(readdirSync(`${dir}/attachments`).includes('c1:eth0'));
  res.release(att(2), ['10.0.0.3', 'fd00::3']);
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('10.') || n.startsWith('fd00')), []);
  res.release(att(2));
  assert.equal(res.held(att(2)), [], 'a second release finds nothing and is no error');
});

test('a release after a kill between the attachment file and its first address, or before its content, leaves nothing', () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/24' }]]);
  res.allocate(att(7), s, []); // makes the attachments dir
  writeFileSync(`${dir}/attachments/c1:eth0`, 'c1\r\neth0');
  writeFileSync(`${dir}/attachments/c2:eth0`, '');
  res.release(att(1));
  res.release(att(2));
  assert.equal(readdirSync(`${dir}/attachments`).sort(), ['c7:eth0']);
  assert.throws(() => res.allocate(att(7), s, []), /already holds addresses/);
  assert.is(res.allocate(att(1), s, [])[0]!.ip, '10.0.0.3', 'the killed attachment can be added again');
});

test('reservations of the layout before 2026-11-26 (own files, a JSON index) are released by the index', () => {
  const res = new Reservations(dir);
  mkdirSync(`${dir}/attachments`, { recursive: true });
  writeFileSync(`${dir}/10.0.0.9`, 'c1\r\neth0');
  writeFileSync(`${dir}/10.0.0.10`, 'c2\r\neth0');
  writeFileSync(`${dir}/attachments/c1:eth0`, JSON.stringify({ state: 'done', ips: ['10.0.0.9'] }));
  assert.equal(res.held(att(1)), ['10.0.0.9']);
  assert.throws(() => res.allocate(att(1), sets([[{ subnet: '10.0.0.0/24' }]]), []), /already holds addresses/);
  res.release(att(1));
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('10.')), ['10.0.0.10']);
  assert.equal(readdirSync(`${dir}/attachments`), []);
});

test('gc keeps exactly the valid attachments', () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/24' }]]);
  for (const n of [1, 2, 3, 4]) res.allocate(att(n), s, []);
  assert.is(res.gc([att(2), att(4)]), 2);
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('10.')).sort(), ['10.0.0.3', '10.0.0.5']);
  assert.equal(readdirSync(`${dir}/attachments`).filter((n) => n !== '.tmp').sort(), ['c2:eth0', 'c4:eth0']);
});

test('adding an attachment twice is refused', () => {
  const res = new Reservations(dir);
  const s = sets([[{ subnet: '10.0.0.0/24' }]]);
  res.allocate(att(1), s, []);
  assert.throws(() => res.allocate(att(1), s, []), /already holds addresses/);
});

test.run();
