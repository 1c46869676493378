// A qemu VM booting Debian's own kernel (which has ipvlan and 8021q, unlike this machine's), under software
// emulation. Its kernel and initramfs are built from Debian packages and cached outside the clone; the
// executables under test and the scenario reach it through a virtio-9p share, and so do its results.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { cpioGz, type CpioEntry } from './cpio.ts';

export const VM_CACHE = process.env.CNM_VM_CACHE ?? '/var/cache/cnm-cni/vm';

/** The modules the scenarios need; their dependencies are found from each module's modinfo. */
const WANTED_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'veth', 'ipvlan', 'macvlan', '8021q'];

const APPLETS = ['sh', 'mount', 'insmod', 'mkdir', 'cat', 'echo', 'grep', 'head', 'tr', 'sleep', 'ls', 'ln', 'rm', 'find', 'poweroff', 'nc', 'ping', 'seq', 'wc', 'kill', 'timeout', 'env', 'true', 'false', 'test', '['];

const INIT = `#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox mount -t tmpfs run /run
/bin/busybox mount -t tmpfs tmp /tmp
for m in $(/bin/busybox cat /modules/order); do /bin/busybox insmod /modules/$m || echo "insmod $m failed"; done
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144,cache=loose share /mnt || echo "9p mount failed"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
cd /mnt && /bin/busybox sh /mnt/scenario.sh > /mnt/result.log 2>&1
echo $? > /mnt/exit-code
/bin/busybox poweroff -f
`;

/** The kernel package linux-image-amd64 points at, e.g. linux-image-6.1.0-56-amd64. */
async function kernelPackage(): Promise<string> {
  const { stdout } = await execa('apt-cache', ['depends', 'linux-image-amd64']);
  const pkg = /Depends: (linux-image-[\w.-]+)/.exec(stdout)?.[1];
  if (!pkg) throw new Error(`cannot tell which kernel linux-image-amd64 depends on:\n${stdout}`);
  return pkg;
}

/** Module name -> file, and each module's dependencies, read from the .modinfo strings. */
function moduleIndex(modRoot: string): Map<string, { file: string; depends: string[] }> {
  const index = new Map<string, { file: string; depends: string[] }>();
  const walk = (dir: string) => {
    for (const n of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, n.name);
      if (n.isDirectory()) walk(p);
      else if (n.name.endsWith('.ko')) index.set(n.name.slice(0, -3).replace(/-/g, '_'), { file: p, depends: [] });
    }
  };
  walk(modRoot);
  return index;
}

function dependsOf(file: string): string[] {
  const text = readFileSync(file).toString('latin1');
  const m = /depends=([^\0]*)\0/.exec(text);
  return m && m[1] ? m[1].split(',').filter(Boolean).map((d) => d.replace(/-/g, '_')) : [];
}

/** The wanted modules and everything they need, dependencies first. */
function moduleClosure(modRoot: string, builtin: Set<string>): string[] {
  const index = moduleIndex(modRoot);
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || builtin.has(name)) return;
    seen.add(name);
    const mod = index.get(name);
    if (!mod) throw new Error(`kernel module ${name} is not in ${modRoot}`);
    for (const dep of dependsOf(mod.file)) visit(dep);
    order.push(mod.file);
  };
  for (const name of WANTED_MODULES) visit(name);
  return order;
}

async function sharedLibs(binaries: string[]): Promise<string[]> {
  const libs = new Set<string>();
  for (const b of binaries) {
    const { stdout } = await execa('ldd', [b]);
    for (const m of stdout.matchAll(/(\/\S+\.so[\w.]*)/g)) libs.add(m[1]!);
  }
  return [...libs];
}

export interface VmImage {
  kernel: string;
  initrd: string;
}

/** Builds (or finds in the cache) the kernel and initramfs. */
export async function ensureVmImage(cnmBinary: string): Promise<VmImage> {
  const pkg = await kernelPackage();
  const dir = join(VM_CACHE, pkg);
  const libs = await sharedLibs(['/usr/sbin/ip', cnmBinary, '/bin/busybox'].filter((b) => existsSync(b)).filter((b) => b !== '/bin/busybox'));
  const key = createHash('sha256').update(JSON.stringify({ INIT, WANTED_MODULES, APPLETS, libs, ip: readFileSync('/usr/sbin/ip').length, bb: readFileSync('/bin/busybox').length })).digest('hex').slice(0, 12);
  const initrd = join(dir, `initramfs-${key}.gz`);
  const root = join(dir, 'root');
  if (!existsSync(join(root, 'boot'))) {
    mkdirSync(dir, { recursive: true });
    await execa('apt-get', ['download', pkg], { cwd: dir });
    const deb = readdirSync(dir).find((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${dir}`);
    rmSync(`${root}.tmp`, { recursive: true, force: true });
    await execa('dpkg-deb', ['-x', join(dir, deb), `${root}.tmp`]);
    renameSync(`${root}.tmp`, root);
    rmSync(join(dir, deb));
  }
  const kernel = join(root, 'boot', readdirSync(join(root, 'boot')).find((n) => n.startsWith('vmlinuz-'))!);
  if (existsSync(initrd)) return { kernel, initrd };

  const modRoot = join(root, 'lib/modules', readdirSync(join(root, 'lib/modules'))[0]!);
  const builtin = new Set(readFileSync(join(modRoot, 'modules.builtin'), 'utf8').split('\n').filter(Boolean).map((l) => basename(l, '.ko').replace(/-/g, '_')));
  const modules = moduleClosure(join(modRoot, 'kernel'), builtin);

  const entries: CpioEntry[] = [];
  const dirs = new Set<string>();
  const addDir = (d: string) => {
    if (d === '/' || dirs.has(d)) return;
    addDir(dirname(d));
    dirs.add(d);
    entries.push({ path: d, type: 'dir' });
  };
  const addFile = (path: string, data: Buffer, mode = 0o755) => {
    addDir(dirname(path));
    entries.push({ path, type: 'file', data, mode });
  };
  for (const d of ['/proc', '/sys', '/dev', '/run', '/tmp', '/mnt', '/etc', '/var']) addDir(d);
  entries.push({ path: '/var/run', type: 'symlink', target: '/run' });
  addFile('/bin/busybox', readFileSync('/bin/busybox'));
  for (const a of APPLETS) entries.push({ path: `/bin/${a}`, type: 'symlink', target: 'busybox' });
  addFile('/usr/sbin/ip', readFileSync('/usr/sbin/ip'));
  for (const lib of libs) {
    addFile(realpathSync(lib), readFileSync(realpathSync(lib)));
    if (realpathSync(lib) !== lib) {
      addDir(dirname(lib));
      entries.push({ path: lib, type: 'symlink', target: realpathSync(lib) });
    }
  }
  addFile('/init', Buffer.from(INIT));
  const order: string[] = [];
  for (const m of modules) {
    addFile(`/modules/${basename(m)}`, readFileSync(m), 0o644);
    order.push(basename(m));
  }
  addFile('/modules/order', Buffer.from(order.join('\n') + '\n'), 0o644);
  writeFileSync(`${initrd}.tmp`, cpioGz(entries));
  renameSync(`${initrd}.tmp`, initrd);
  return { kernel, initrd };
}

export interface VmRun {
  console: string;
  result: string;
  exitCode: number | undefined;
}

/** Boots the VM with a share dir holding scenario.sh; returns its console and what the scenario wrote. */
export async function runVm(image: VmImage, share: string, timeoutMs = 600_000): Promise<VmRun> {
  const r = await execa(
    'qemu-system-x86_64',
    [
      '-accel', 'tcg', '-cpu', 'max', '-m', '1024', '-smp', '1', '-nographic', '-no-reboot', '-nodefaults',
      '-serial', 'stdio',
      '-kernel', image.kernel, '-initrd', image.initrd,
      '-append', 'console=ttyS0 panic=-1 quiet',
      '-virtfs', `local,path=${share},mount_tag=share,security_model=none,id=share`,
    ],
    { reject: false, timeout: timeoutMs, killSignal: 'SIGKILL', stdin: 'ignore', all: true },
  );
  const read = (f: string) => (existsSync(join(share, f)) ? readFileSync(join(share, f), 'utf8') : '');
  const code = read('exit-code').trim();
  return { console: r.all ?? '', result: read('result.log'), exitCode: code === '' ? undefined : Number(code) };
}
