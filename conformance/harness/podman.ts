// podman (Debian's 4.3, CNI network backend) run entirely from a test dir: storage, run root, containers.conf,
// CNI conf and plugin dirs. runc cannot raise rlimits here (no CAP_SYS_RESOURCE), hence the fixed ulimits.
import { execa } from 'execa';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
