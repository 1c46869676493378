import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

// shared/kernel/fs.ts takes libc through Bun's FFI only under Bun, so its scenarios run in a Bun process
// (test/fixtures/fs-facade-scenarios.ts), each once through the facade and once through node:fs.
const root = process.env.CNM_ROOT ?? process.cwd();

interface Report {
  report: Record<string, { facade: unknown; node: unknown }>;
  message: string;
  pipe: number | string;
  usedFfi: boolean;
}

let result: Report;
test.before(async () => {
  const dir = mkdtempSync(`/tmp/cnmt-data-${process.pid}-fs-`);
  try {
    const r = await execa(join(root, 'node_modules/.bin/bun'), [join(root, 'test/fixtures/fs-facade-scenarios.ts'), dir], { cwd: root });
    result = JSON.parse(r.stdout) as Report;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the scenarios ran under Bun, through libc', () => {
  assert.ok(result.usedFfi);
  assert.ok(Object.keys(result.report).length >= 12);
});

test("an error reads like node:fs's: code, text, call and path", () => {
  assert.match(result.message, /^ENOENT: no such file or directory, open '\/tmp\/cnmt-data-\d+-fs-\w+\/none\/x'$/);
});

test('a write to a full non-blocking pipe waits for its reader instead of failing with EAGAIN', () => {
  assert.is(result.pipe, 1 << 20);
});

test('every scenario gives through libc what it gives through node:fs', () => {
  for (const [name, { facade, node }] of Object.entries(result.report)) assert.equal(facade, node, name);
});

test('the scenarios prove something: files are read back, errors carry their codes', () => {
  const r = result.report;
  assert.equal(r['text round trip, multi-byte']!.facade, ['grüße, 世界\n', 0o600]);
  assert.equal(r['a shorter write replaces a longer file whole']!.facade, ['short', 5]);
  assert.equal(r['exclusive open: once, then EEXIST']!.facade, ['content', 0o640, { code: 'EEXIST' }]);
  assert.equal((r['readdir lists every name, past one getdents buffer']!.facade as string[]).length, 601);
  assert.equal(r['paths longer than the reused path buffer, beside short ones']!.facade, [true, 'deep', false]);
  assert.equal(r['stat if it exists: undefined for a missing path, links counted']!.facade, [null, null, 2, true, 1], 'undefined, as JSON carries it');
  assert.equal(r['missing files']!.facade, [{ code: 'ENOENT' }, { code: 'ENOENT' }, { code: 'ENOENT' }, { code: 'ENOENT' }, { code: 'ENOENT' }, 'no error', false, { code: 'ENOENT' }]);
});

test.run();
