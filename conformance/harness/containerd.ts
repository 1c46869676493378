// A private containerd (Debian's, with its built-in CRI plugin) for the kubelet-path suite: config, root,
// state and sockets all under a test dir, CNI dirs pointed at a test install. And a CRI client speaking to it
// over gRPC, from the RuntimeService subset in conformance/cri/runtime.proto.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './bins.ts';

export interface Containerd {
  dir: string;
  socket: string;
  log: string;
  process: ResultPromise;
}

function config(dir: string, binDir: string, confDir: string, sandboxImage: string): string {
  return `version = 2
root = "${dir}/root"
state = "${dir}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "${dir}/containerd.sock"

[ttrpc]
  address = "${dir}/containerd.sock.ttrpc"

[debug]
  address = "${dir}/debug.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "${dir}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${sandboxImage}"
  # This machine lacks CAP_SYS_RESOURCE: runc could not set the sandbox's oom_score_adj.
  restrict_oom_score_adj = true
  # Pod namespaces under the state dir, not the machine's /run/netns.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "${dir}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${binDir}"
    conf_dir = "${confDir}"
    max_conf_num = 1
`;
}

/** Starts containerd and waits until it answers; fails with its log when it does not. */
export async function startContainerd(dir: string, binDir: string, confDir: string, sandboxImage: string): Promise<Containerd> {
  mkdirSync(dir, { recursive: true });
  const cfg = join(dir, 'config.toml');
  writeFileSync(cfg, config(dir, binDir, confDir, sandboxImage));
  const log = join(dir, 'containerd.log');
  const proc = execa('containerd', ['--config', cfg, '--log-level', 'info'], { reject: false, stdout: { file: log }, stderr: { file: log }, env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' } });
  const socket = join(dir, 'containerd.sock');
  for (let i = 0; i < 100; i++) {
    if (existsSync(socket)) {
      const v = await execa('ctr', ['--address', socket, 'version'], { reject: false });
      if (v.exitCode === 0) return { dir, socket, log, process: proc };
    }
    if (proc.exitCode !== null && proc.exitCode !== undefined) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  proc.kill('SIGKILL');
  await proc;
  throw new Error(`containerd did not start; its log: ${join(dir, 'containerd.log')}`);
}

export async function stopContainerd(c: Containerd): Promise<void> {
  c.process.kill('SIGTERM');
  const timer = setTimeout(() => c.process.kill('SIGKILL'), 10_000);
  await c.process;
  clearTimeout(timer);
}

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  hostname: string;
  logDirectory: string;
  portMappings?: Array<{ protocol: 'TCP' | 'UDP'; containerPort: number; hostPort: number; hostIp?: string }>;
  linux: { securityContext: { namespaceOptions: { network: 'POD' } } };
}

export interface PodSandboxStatus {
  id: string;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  network?: { ip: string; additionalIps: Array<{ ip: string }> };
}

type Call<Req, Res> = (req: Req) => Promise<Res>;

/** The calls kubelet makes for a pod's network. */
export interface CriClient {
  runPodSandbox: Call<{ config: PodSandboxConfig }, { podSandboxId: string }>;
  podSandboxStatus: Call<{ podSandboxId: string; verbose?: boolean }, { status: PodSandboxStatus; info: Record<string, string> }>;
  stopPodSandbox: Call<{ podSandboxId: string }, object>;
  removePodSandbox: Call<{ podSandboxId: string }, object>;
  listPodSandbox: Call<object, { items: Array<{ id: string; state: string; metadata: { name: string } }> }>;
  close(): void;
}

export function criClient(socket: string): CriClient {
  const def = protoLoader.loadSync(join(ROOT, 'conformance/cri/runtime.proto'), { longs: String, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
  const client = new pkg.runtime.v1.RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure());
  const call = <Req, Res>(method: string): Call<Req, Res> => (req) =>
    new Promise((resolve, reject) => {
      (client as unknown as Record<string, (r: Req, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, res: Res) => void) => void>)[method]!(
        req,
        new grpc.Metadata(),
        { deadline: Date.now() + 120_000 },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  return {
    runPodSandbox: call('RunPodSandbox'),
    podSandboxStatus: call('PodSandboxStatus'),
    stopPodSandbox: call('StopPodSandbox'),
    removePodSandbox: call('RemovePodSandbox'),
    listPodSandbox: call('ListPodSandbox'),
    close: () => client.close(),
  };
}

/** Mounts a test left under its dir (overlay rootfs, pod netns): unmounted so the dir can go. */
export async function unmountUnder(dir: string): Promise<void> {
  const { stdout } = await execa('findmnt', ['-rn', '-o', 'TARGET']);
  const targets = stdout.split('\n').filter((t) => t.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
  for (const t of targets) await execa('umount', ['-l', t], { reject: false });
}
