// podman (Debian's 4.3, CNI network backend) run entirely from a test dir: storage, run root, containers.conf,
// CNI conf and plugin dirs. runc cannot raise rlimits here (no CAP_SYS_RESOURCE), hence the fixed ulimits.
import { execa } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin } from './bins.ts';
import { buildBusyboxRootfs } from './images.ts';

export interface Podman {
  dir: string;
  run(args: string[]): ReturnType<typeof execa>;
}

export function podman(dir: string, binDir: string, confDir: string): Podman {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'containers.conf');
  writeFileSync(
    conf,
    `[network]
network_backend = "cni"
cni_plugin_dirs = ["${binDir}"]
network_config_dir = "${confDir}"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${dir}/events.log"
tmp_dir = "${dir}/tmp"
runtime = "runc"
`,
  );
  const global = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--cni-config-dir', confDir, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  return {
    dir,
    run: (args) => execa('podman', [...global, ...args], { reject: false, env: { CONTAINERS_CONF: conf }, timeout: 120_000 }),
  };
}

/** Options every `podman run` here needs. */
export const RUN_LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/**
 * A private podman over a conf dir that `cnm install` filled with one cnm-bridge network (`edit` changes its plugin
 * config first, as an operator would), and a busybox rootfs to run; fails when podman cannot start.
 */
export async function podmanOnNetwork(
  dir: string,
  n: { network: string; subnet: string; bridge: string; dataDir: string; edit?: (plugin: Record<string, unknown>) => void },
): Promise<{ pm: Podman; rootfs: string }> {
  const installed = await execa(bin('cnm'), ['install', '--bin-dir', `${dir}/bin`, '--conf-dir', `${dir}/net.d`, '--network', n.network, '--driver', 'bridge', '--subnet', n.subnet, '--bridge', n.bridge, '--data-dir', n.dataDir], { reject: false });
  if (installed.exitCode !== 0) throw new Error(`cnm install: ${installed.stderr}`);
  if (n.edit) {
    const file = `${dir}/net.d/10-${n.network}.conflist`;
    const conflist = JSON.parse(readFileSync(file, 'utf8')) as { plugins: Array<Record<string, unknown>> };
    n.edit(conflist.plugins[0]!);
    writeFileSync(file, JSON.stringify(conflist, null, 2));
  }
  const rootfs = buildBusyboxRootfs(dir);
  const pm = podman(`${dir}/podman`, `${dir}/bin`, `${dir}/net.d`);
  const version = await pm.run(['version', '--format', '{{.Client.Version}}']);
  if (version.exitCode !== 0) throw new Error(`podman cannot start: ${String(version.stderr)}`);
  return { pm, rootfs };
}
