// Images and rootfs the runtime suites need, made here from Debian's packages: nothing can be pulled.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A pause that blocks until SIGTERM/SIGINT, as a pod sandbox's infra process does. */
const PAUSE_C = `#include <signal.h>
#include <unistd.h>
static void done(int sig) { (void)sig; _exit(0); }
int main(void) {
  signal(SIGTERM, done);
  signal(SIGINT, done);
  for (;;) pause();
}
`;

export const PAUSE_IMAGE = 'cnm.test/pause:1';

/** A one-layer docker-archive with a static pause binary, for `ctr images import`. */
export async function buildPauseArchive(dir: string): Promise<string> {
  const work = join(dir, 'pause-image');
  mkdirSync(join(work, 'rootfs'), { recursive: true });
  writeFileSync(join(work, 'pause.c'), PAUSE_C);
  await execa('cc', ['-static', '-O2', '-o', join(work, 'rootfs', 'pause'), join(work, 'pause.c')]);
  await execa('tar', ['-C', join(work, 'rootfs'), '-cf', join(work, 'layer.tar'), 'pause']);
  const diffId = `sha256:${createHash('sha256').update(readFileSync(join(work, 'layer.tar'))).digest('hex')}`;
  const config = { architecture: 'amd64', os: 'linux', config: { Entrypoint: ['/pause'] }, rootfs: { type: 'layers', diff_ids: [diffId] } };
  writeFileSync(join(work, 'config.json'), JSON.stringify(config));
  writeFileSync(join(work, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: [PAUSE_IMAGE], Layers: ['layer.tar'] }]));
  const archive = join(dir, 'pause.tar');
  await execa('tar', ['-C', work, '-cf', archive, 'manifest.json', 'config.json', 'layer.tar']);
  return archive;
}

/** A rootfs of Debian's busybox-static, for containers started image-free (`--rootfs`). */
export function buildBusyboxRootfs(dir: string): string {
  const root = join(dir, 'busybox-rootfs');
  if (existsSync(join(root, 'bin', 'busybox'))) return root;
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'sleep', 'nc', 'ip', 'cat', 'echo', 'ls', 'hostname', 'ifconfig', 'wget', 'true']) symlinkSync('busybox', join(root, 'bin', a));
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/:/bin/sh\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\n');
  return root;
}
