import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createExclusive, listDir, readJson, sweepTemps, withLock, writeJsonAtomic } from '../shared/cnm/store.ts';
import { listEndpoints, listNetworks } from '../shared/cnm/inventory.ts';
import { CniError } from '../shared/cni/errors.ts';

let dir = '';
test.before.each(() => {
  dir = mkdtempSync(`/tmp/cnmt-data-${process.pid}-unit-`);
});
test.after.each(() => rmSync(dir, { recursive: true, force: true }));

test('records are written whole, 0600 in 0700 directories, with no temp file left', () => {
  writeJsonAtomic(`${dir}/networks/a.json`, { name: 'a' });
  assert.equal(readJson(`${dir}/networks/a.json`), { name: 'a' });
  assert.is(statSync(`${dir}/networks/a.json`).mode & 0o777, 0o600);
  assert.is(statSync(`${dir}/networks`).mode & 0o777, 0o700);
  assert.equal(readdirSync(`${dir}/networks`).filter((n) => n !== '.tmp'), ['a.json']);
  assert.equal(readdirSync(`${dir}/networks/.tmp`), []);
});

test('a missing record reads as undefined; a corrupt one is a store error naming the file', () => {
  assert.is(readJson(`${dir}/nope.json`), undefined);
  writeFileSync(`${dir}/bad.json`, '{');
  assert.throws(() => readJson(`${dir}/bad.json`), (e: unknown) => e instanceof CniError && e.code === 101 && e.msg.includes('bad.json'));
});

test('an exclusive create succeeds once, and the file has its content from the start', () => {
  assert.ok(createExclusive(`${dir}/x`, '1'));
  assert.not.ok(createExclusive(`${dir}/x`, '2'));
  assert.is(readJson(`${dir}/x`), 1);
  assert.equal(readdirSync(`${dir}/.tmp`), [], 'nothing staged is left');
});

test('listDir skips the staging dir and a missing dir is empty', () => {
  writeJsonAtomic(`${dir}/a.json`, {});
  assert.equal(listDir(dir), ['a.json']);
  assert.equal(listDir(`${dir}/missing`), []);
});

test('sweepTemps removes what dead writers staged and keeps what live ones stage', () => {
  writeJsonAtomic(`${dir}/a.json`, {});
  writeFileSync(`${dir}/.tmp/a.json.999999999.0`, '{');
  writeFileSync(`${dir}/.tmp/a.json.${process.pid}.7`, '{');
  sweepTemps(dir);
  assert.equal(readdirSync(`${dir}/.tmp`), [`a.json.${process.pid}.7`]);
});

test('a lock held by a dead process is taken over', () => {
  writeFileSync(`${dir}/lock`, '999999999');
  assert.is(withLock(`${dir}/lock`, () => 42), 42);
  assert.equal(listDir(dir), [], 'released after use');
});

test('a lock held by a live process times out with try-again-later (11)', () => {
  writeFileSync(`${dir}/lock`, String(process.pid));
  assert.throws(() => withLock(`${dir}/lock`, () => 1, 50), (e: unknown) => e instanceof CniError && e.code === 11);
});

test('inventory lists networks and endpoints from the records', () => {
  writeJsonAtomic(`${dir}/networks/b.json`, { name: 'b', driver: 'null', options: {}, subnets: [], created: '' });
  writeJsonAtomic(`${dir}/networks/a.json`, { name: 'a', driver: 'host', options: {}, subnets: [], created: '' });
  writeJsonAtomic(`${dir}/endpoints/a/c1:eth0.json`, { network: 'a', containerId: 'c1', ifname: 'eth0', ips: [] });
  assert.equal(listNetworks(dir).map((n) => n.name), ['a', 'b']);
  assert.equal(listEndpoints(dir).map((e) => `${e.network}/${e.containerId}`), ['a/c1']);
  assert.equal(listEndpoints(dir, 'b'), []);
});

test.run();
