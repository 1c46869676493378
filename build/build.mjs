#!/usr/bin/env node
// Bundles plugins/dispatch.ts (every plugin behind one name switch) with esbuild, compiles it once into
// dist/<format>/cnm, and hard-links each plugin name to it: one executable on disk, one name per plugin in
// CNI_PATH. `--format bun` (default, Bun's compiler, dist/bin) or `--format sea` (@yao-pkg/pkg's
// single-executable mode on this machine's own node, dist/sea); --out DIR to put it elsewhere.
import { build } from 'esbuild';
import { execa } from 'execa';
import { chmod, link, mkdir, rm, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    format: { type: 'string', default: 'bun' },
    out: { type: 'string' },
  },
});
if (!['bun', 'sea'].includes(values.format)) throw new Error(`--format must be bun or sea, not ${values.format}`);
const outDir = resolve(root, values.out ?? (values.format === 'bun' ? 'dist/bin' : 'dist/sea'));

/** The names the dispatcher answers to (plugins/names.ts, plus cnm); each must bring its plugin into the bundle. */
export const NAMES = ['cnm', 'cnm-bridge', 'cnm-host', 'cnm-host-local', 'cnm-ipvlan', 'cnm-macvlan', 'cnm-null', 'cnm-overlay', 'cnm-remote', 'cnm-remote-ipam', 'loopback'];

const pluginDir = (name) => (name === 'cnm' || name === 'loopback' ? name : name.slice(4));

/**
 * The bun format gets one module per executable name beside a tiny dispatcher (Bun embeds them all in the one
 * executable, and a plugin loads only its own: Bun's start-up grows with the code it loads, ~2.5 ms for the
 * whole CLI and every driver, measured). The sea format's runtime embeds one script: everything in it.
 */
function splitPerExecutable() {
  return {
    name: 'split-per-executable',
    setup(b) {
      b.onResolve({ filter: /^\.\/[a-z-]+\/main\.ts$/ }, (args) => {
        if (!args.importer.endsWith('plugins/dispatch.ts')) return undefined;
        const dir = args.path.split('/')[1];
        const name = NAMES.find((n) => pluginDir(n) === dir);
        if (!name) return { errors: [{ text: `dispatch requires ${args.path}, which no name in NAMES runs` }] };
        return { path: `./${name}.cjs`, external: true };
      });
    },
  };
}

/** Bundles into dist/bundle; returns the files to compile, the entry (the dispatcher) first. */
async function bundle(split) {
  const dir = join(root, 'dist/bundle');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const entryPoints = { 'cnm-dispatch': join(root, 'plugins/dispatch.ts') };
  if (split) for (const name of NAMES) entryPoints[name] = join(root, `plugins/${pluginDir(name)}/main.ts`);
  const result = await build({
    entryPoints,
    outdir: dir,
    outExtension: { '.js': '.cjs' },
    bundle: true,
    // Bun's FFI module exists only inside Bun; it is required lazily (shared/kernel/libc.ts).
    external: ['bun:ffi'],
    plugins: split ? [splitPerExecutable()] : [],
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  for (const name of NAMES) {
    if (!JSON.stringify(result.metafile).includes(`plugins/${pluginDir(name)}/main.ts`)) {
      throw new Error(`${name} is in NAMES but its plugin is not in the bundle`);
    }
  }
  return Object.keys(entryPoints).map((n) => join(dir, `${n}.cjs`));
}

async function compileBun(bundleFiles, out) {
  const flags = [
    // A plugin must not read .env or bunfig.toml from whatever directory the runtime starts it in.
    '--no-compile-autoload-dotenv',
    '--no-compile-autoload-bunfig',
    // A plugin lives ~20 ms and runs its code once: JIT tier-up thresholds x1000 keep it in the interpreter and
    // spare the JIT's start-up (measured: ~1.5 ms and ~250 page faults less per invocation). `cnm` resets it.
    '--compile-jit-policy=1000',
  ];
  await execa(join(root, 'node_modules/.bin/bun'), ['build', '--compile', '--minify', '--bytecode', ...flags, ...bundleFiles, '--outfile', out], { cwd: root });
}

async function compileSea([bundleFile], out) {
  const { default: sea } = await import('@yao-pkg/pkg/lib-es5/sea.js');
  const major = process.versions.node.split('.')[0];
  // sea() works in os.tmpdir() and runs `npx postject` there: a temp dir inside the project lets npx find
  // our postject devDependency instead of asking the registry.
  const tmp = join(root, '.cache/sea-tmp');
  await mkdir(tmp, { recursive: true });
  process.env.TMPDIR = tmp;
  await (sea.default ?? sea)(bundleFile, {
    targets: [{ nodeRange: `node${major}`, platform: 'linux', arch: 'x64', output: out }],
    useLocalNode: true,
    // V8's code cache in the blob: ~3 ms less start-up, measured.
    seaConfig: { useCodeCache: true },
  });
  // sea() swallows a failed bake: the file is the proof.
  if (!existsSync(out)) throw new Error(`pkg sea() produced no ${out}`);
  await chmod(out, 0o755);
}

const started = Date.now();
const bundleFiles = await bundle(values.format === 'bun');
await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });
const main = join(outDir, 'cnm');
await (values.format === 'bun' ? compileBun : compileSea)(bundleFiles, main);
for (const name of NAMES.filter((n) => n !== 'cnm')) await link(main, join(outDir, name));
const { size } = await stat(main);
process.stderr.write(
  `built ${main} (${(size / 1e6).toFixed(1)} MB) + hard links ${NAMES.filter((n) => n !== 'cnm').join(', ')}: ${values.format} format, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
);
