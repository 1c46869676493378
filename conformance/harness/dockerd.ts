// A private dockerd (Debian's docker.io 20.10) inside a test network namespace: its own /run (a directory bound
// over it), a tmpfs over /etc/docker (plugin discovery paths are fixed), data, exec root and API socket under
// the test's dir. Entered with nsenter + unshare -m, not `ip netns exec`, whose /sys remount hides the cgroup
// mounts dockerd needs. Started and stopped by PID.
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { TestNetns } from './netns.ts';
import { buildBusyboxRootfs } from './images.ts';
import { startPluginServer, stopAllPluginServers, type PluginServer } from './plugin-server.ts';

/** Debian's binaries: another docker client may come first on PATH. */
export const DOCKER = '/usr/bin/docker';
export const DOCKERD = '/usr/sbin/dockerd';

export interface Dockerd {
  pid: number;
  socket: string;
  /** The docker client against this daemon. */
  docker(args: string[], opts?: { reject?: boolean }): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Runs argv inside the daemon's mount and network namespaces, with its own /sys (what a plugin needs). */
  wrap(): string[];
  stop(): Promise<void>;
}

const MOUNTS = 'mount --bind "$1" /run && mount -t tmpfs tmpfs /etc/docker && shift && exec "$@"';

export async function startDockerd(dir: string, ns: TestNetns): Promise<Dockerd> {
  for (const d of ['run', 'data', 'exec']) mkdirSync(join(dir, d), { recursive: true });
  const socket = join(dir, 'docker.sock');
  const log = join(dir, 'dockerd.log');
  const child: ResultPromise = execa(
    'nsenter',
    [`--net=${ns.path}`, 'unshare', '-m', 'sh', '-c', MOUNTS, 'sh', join(dir, 'run'), DOCKERD,
      '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '-H', `unix://${socket}`,
      '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none', '--storage-driver=vfs'],
    { reject: false, buffer: false, stdout: { file: log }, stderr: { file: log } },
  );
  const docker = async (args: string[], opts: { reject?: boolean } = {}) => {
    const r = await execa(DOCKER, ['-H', `unix://${socket}`, ...args], { reject: opts.reject ?? true, timeout: 60_000 });
    return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  const deadline = Date.now() + 60_000;
  while ((await docker(['version'], { reject: false })).exitCode !== 0) {
    if (Date.now() > deadline || child.exitCode !== undefined && child.exitCode !== null) throw new Error(`dockerd did not come up: see ${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const pid = child.pid!;
  return {
    pid,
    socket,
    docker,
    wrap: () => ['nsenter', '-t', String(pid), '-m', '-n', 'unshare', '-m', 'sh', '-c', 'mount -t sysfs sysfs /sys && exec "$@"', 'sh'],
    stop: async () => {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await child;
      clearTimeout(timer);
    },
  };
}

/** Removes every container and network the daemon has (a suite's teardown, also after a failure). */
export async function clearDockerd(d: Dockerd): Promise<void> {
  const all = await d.docker(['ps', '-aq'], { reject: false });
  if (all.stdout.trim()) await d.docker(['rm', '-f', ...all.stdout.trim().split('\n')], { reject: false });
  await d.docker(['network', 'prune', '-f'], { reject: false });
}

/** A busybox image from Debian's busybox-static, by `docker import` of a rootfs tarball. */
export async function importBusybox(d: Dockerd, dir: string, tag: string): Promise<void> {
  const root = buildBusyboxRootfs(dir);
  if (!existsSync(join(root, 'bin', 'ping'))) symlinkSync('busybox', join(root, 'bin', 'ping'));
  const tar = join(dir, 'busybox.tar');
  await execa('tar', ['-C', root, '-cf', tar, '.']);
  await d.docker(['import', tar, tag]);
}

/**
 * The set-up of a Docker-front-door suite: dockerd in `ns` with the busybox image `image`, and `cnm plugin serve`
 * under the plugin name `plugin` inside the daemon's namespaces, where Docker's discovery finds its socket.
 */
export async function startDockerdWithPlugin(
  dir: string,
  ns: TestNetns,
  o: { image: string; plugin: string; dataDir: string; driver?: string },
): Promise<{ dockerd: Dockerd; plugin: PluginServer }> {
  const dockerd = await startDockerd(dir, ns);
  await importBusybox(dockerd, dir, o.image);
  return { dockerd, plugin: await servePluginTo(dockerd, { name: o.plugin, dataDir: o.dataDir, driver: o.driver }) };
}

/** `cnm plugin serve` inside the daemon's namespaces, waited for where Docker's discovery finds its socket. */
export function servePluginTo(d: Dockerd, o: { name: string; dataDir: string; driver?: string }): Promise<PluginServer> {
  return startPluginServer({ ...o, wrap: d.wrap(), socketSeenAt: `/proc/${d.pid}/root/run/docker/plugins/${o.name}.sock` });
}

/** Its teardown, also after a failed set-up: containers and networks, the plugin servers, then the daemon. */
export async function stopDockerdWithPlugin(dockerd: Dockerd | undefined): Promise<void> {
  if (dockerd) await clearDockerd(dockerd);
  await stopAllPluginServers();
  await dockerd?.stop();
}
