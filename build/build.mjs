#!/usr/bin/env node
// Bundles each plugins/<name>/main.ts once with esbuild, then compiles every bundle into a standalone
// executable: `--format bun` (default, Bun's compiler) or `--format sea` (@yao-pkg/pkg's single-executable
// mode on this machine's own node). Output: dist/bin (bun) or dist/sea (sea), or --out DIR.
import { build } from 'esbuild';
import { execa } from 'execa';
import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    format: { type: 'string', default: 'bun' },
    out: { type: 'string' },
    only: { type: 'string' },
  },
});
if (!['bun', 'sea'].includes(values.format)) throw new Error(`--format must be bun or sea, not ${values.format}`);
const outDir = resolve(root, values.out ?? (values.format === 'bun' ? 'dist/bin' : 'dist/sea'));

/** plugins/<dir> is installed as cnm-<dir>; plugins/cnm is the operator CLI `cnm`. */
export function executableName(dir) {
  return dir === 'cnm' ? 'cnm' : `cnm-${dir}`;
}

async function pluginDirs() {
  const dirs = (await readdir(join(root, 'plugins'), { withFileTypes: true }))
    .filter((d) => d.isDirectory() && existsSync(join(root, 'plugins', d.name, 'main.ts')))
    .map((d) => d.name);
  const only = values.only?.split(',');
  return only ? dirs.filter((d) => only.includes(d) || only.includes(executableName(d))) : dirs;
}

async function bundle(dirs) {
  const bundleDir = join(root, 'dist/bundle');
  await mkdir(bundleDir, { recursive: true });
  await build({
    entryPoints: Object.fromEntries(dirs.map((d) => [executableName(d), join(root, 'plugins', d, 'main.ts')])),
    outdir: bundleDir,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  return bundleDir;
}

async function compileBun(name, bundleFile) {
  const out = join(outDir, name);
  await execa(join(root, 'node_modules/.bin/bun'), ['build', '--compile', '--minify', '--bytecode', bundleFile, '--outfile', out], { cwd: root });
  return out;
}

async function compileSea(name, bundleFile) {
  const { default: sea } = await import('@yao-pkg/pkg/lib-es5/sea.js');
  const out = join(outDir, name);
  await rm(out, { force: true });
  const major = process.versions.node.split('.')[0];
  // sea() works in os.tmpdir() and runs `npx postject` there: a temp dir inside the project lets npx find
  // our postject devDependency instead of asking the registry.
  const tmp = join(root, '.cache/sea-tmp');
  await mkdir(tmp, { recursive: true });
  process.env.TMPDIR = tmp;
  await (sea.default ?? sea)(bundleFile, {
    targets: [{ nodeRange: `node${major}`, platform: 'linux', arch: 'x64', output: out }],
    useLocalNode: true,
  });
  // sea() swallows a failed bake: the file is the proof.
  if (!existsSync(out)) throw new Error(`pkg sea() produced no ${out}`);
  await chmod(out, 0o755);
  return out;
}

const dirs = await pluginDirs();
const started = Date.now();
const bundleDir = await bundle(dirs);
await mkdir(outDir, { recursive: true });
const compile = values.format === 'bun' ? compileBun : compileSea;
for (const dir of dirs) {
  const name = executableName(dir);
  const out = await compile(name, join(bundleDir, `${name}.cjs`));
  const { size } = await stat(out);
  process.stderr.write(`built ${out} (${(size / 1e6).toFixed(1)} MB)\n`);
}
process.stderr.write(`${dirs.length} executables in ${outDir}, ${values.format} format, ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
