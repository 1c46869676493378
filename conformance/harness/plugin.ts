import { execa } from 'execa';

/** The CNI_* environment a runtime sets. */
export interface RuntimeEnv {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  path?: string;
}

export interface Invocation {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it is JSON. */
  json: Record<string, unknown> | undefined;
}

/** A PATH with the tools plugins need and neither node nor bun, as on a node without them. */
export const RUNTIME_PATH = '/usr/local/sbin:/usr/sbin:/sbin';

/** Runs a plugin exactly as a runtime does: a clean env of CNI_* variables, the config on stdin. */
export async function invoke(
  file: string,
  env: RuntimeEnv,
  stdin: string | object,
  opts: { cwd?: string; extraEnv?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Invocation> {
  const vars: Record<string, string> = { PATH: RUNTIME_PATH, CNI_COMMAND: env.command, ...opts.extraEnv };
  if (env.containerId !== undefined) vars.CNI_CONTAINERID = env.containerId;
  if (env.netns !== undefined) vars.CNI_NETNS = env.netns;
  if (env.ifname !== undefined) vars.CNI_IFNAME = env.ifname;
  if (env.args !== undefined) vars.CNI_ARGS = env.args;
  if (env.path !== undefined) vars.CNI_PATH = env.path;
  const r = await execa(file, [], {
    input: typeof stdin === 'string' ? stdin : JSON.stringify(stdin),
    env: vars,
    extendEnv: false,
    reject: false,
    cwd: opts.cwd,
    timeout: opts.timeoutMs ?? 30_000,
  });
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

/** Asserts a CNI error reply and returns its code. */
export function errorCode(r: Invocation): number | undefined {
  return r.exitCode !== 0 && r.json && typeof r.json.code === 'number' ? r.json.code : undefined;
}
