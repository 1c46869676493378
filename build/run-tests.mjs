#!/usr/bin/env node
// Runs every uvu suite (test/**/*.test.ts, then conformance/**/*.test.ts) and ends with "N passed, N failed".
// Each suite file is bundled with esbuild and run in its own node process; conformance suites marked
// `bothFormats` in PLAN run once per executable format.
import { build } from 'esbuild';
import { execa } from 'execa';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const filters = process.argv.slice(2);
const outDir = join(root, '.cache/tests');

function testFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.test.ts')) out.push(p);
    }
  };
  walk(join(root, dir));
  return out.sort();
}

/**
 * Suites run once per format: the foundation, and the bridge, lifecycle and overlay suites, whose kernel work takes
 * rtnetlink under Bun and iproute2 under SEA; remote; discovery, whose DNS server runs on either runtime's sockets.
 */
const BOTH_FORMATS = new Set(['conformance/remote.test.ts', 'conformance/foundation.test.ts', 'conformance/bridge.test.ts', 'conformance/lifecycle.test.ts', 'conformance/discovery.test.ts', 'conformance/overlay.test.ts', 'conformance/overlay-discovery.test.ts']);

const files = [...testFiles('test'), ...testFiles('conformance')].filter(
  (f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x)),
);
const runs = files.flatMap((f) => {
  const rel = relative(root, f);
  const bun = { file: f, rel, label: rel, env: { CNM_BIN_DIR: join(root, 'dist/bin'), CNM_FORMAT: 'bun' } };
  if (!BOTH_FORMATS.has(rel)) return [bun];
  return [bun, { file: f, rel, label: `${rel} [sea]`, env: { CNM_BIN_DIR: join(root, 'dist/sea'), CNM_FORMAT: 'sea' } }];
});

rmSync(outDir, { recursive: true, force: true });
await build({
  entryPoints: files,
  outdir: outDir,
  outbase: root,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'inline',
  logLevel: 'warning',
  // Lazy require() of an external package (ip-address) needs a real require in an ES module.
  banner: { js: "import { createRequire as __cnmCreateRequire } from 'node:module'; const require = __cnmCreateRequire(import.meta.url);" },
});

// Leftovers of an earlier run that was killed: namespaces and data dirs carry the pid of the suite that made
// them (cnmt-<pid>-... and the overlay cluster's cnmo-<pid>-..., /tmp/cnm[to]-data-<pid>-...); only those of dead processes go, so a concurrent run is safe.
const alive = (pid) => {
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
};
const netnsList = await execa('ip', ['-j', 'netns', 'list'], { reject: false });
for (const { name } of netnsList.stdout.trim() ? JSON.parse(netnsList.stdout) : []) {
  const pid = /^cnm[to]-(\d+)-/.exec(name)?.[1];
  if (!pid || alive(pid)) continue;
  // A killed overlay suite leaves its daemons (etcd, agents) running inside its namespaces: they go first.
  const pids = await execa('ip', ['netns', 'pids', name], { reject: false });
  for (const p of pids.stdout.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(p), 'SIGKILL');
    } catch {}
  }
  await execa('ip', ['netns', 'delete', name], { reject: false });
}
for (const name of readdirSync('/tmp')) {
  const pid = /^cnm[to]-data-(\d+)-/.exec(name)?.[1];
  if (pid && !alive(pid)) rmSync(join('/tmp', name), { recursive: true, force: true });
}

let passed = 0;
let failed = 0;
let skipped = 0;
for (const run of runs) {
  const bundled = join(outDir, run.rel.replace(/\.ts$/, '.mjs'));
  process.stdout.write(`\n## ${run.label}\n`);
  const r = await execa('node', ['--enable-source-maps', bundled], {
    cwd: root,
    env: { ...run.env, CNM_ROOT: root },
    reject: false,
    all: true,
    timeout: 20 * 60_000,
  });
  process.stdout.write(r.all ?? '');
  const count = (label) => Number(new RegExp(`${label}:\\s+(\\d+)`).exec(r.all ?? '')?.[1] ?? 0);
  const total = count('Total');
  const ok = count('Passed');
  const skip = count('Skipped');
  let bad = total - ok - skip;
  if (r.exitCode !== 0 && bad === 0) bad = 1; // a suite that crashed before counting
  if (total === 0 && r.exitCode === 0) bad = 1; // a suite that ran nothing proves nothing
  passed += ok;
  failed += bad;
  skipped += skip;
  process.stdout.write(`\n-> ${run.label}: ${ok} passed, ${bad} failed${skip ? `, ${skip} skipped` : ''}\n`);
}
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exitCode = failed > 0 ? 1 : 0;
