import { existsSync } from '../kernel/fs.ts';
import { CniError, ErrorCode } from './errors.ts';
import type { CniEnv, Command } from './env.ts';
import { parseResult, type Result } from './result.ts';
import { run } from '../kernel/spawn.ts';

/** Finds a plugin executable in CNI_PATH, as libcni's FindInPath does. */
export function findPlugin(type: string, path: string[]): string {
  if (type.includes('/')) throw new CniError(ErrorCode.InvalidConfig, `plugin type ${JSON.stringify(type)} may not contain "/"`);
  for (const dir of path) {
    const file = `${dir}/${type}`;
    if (existsSync(file)) return file;
  }
  throw new CniError(ErrorCode.InvalidConfig, `plugin ${JSON.stringify(type)} is not in CNI_PATH (${path.join(':') || 'empty'})`, 'install it there or fix the type');
}

/**
 * Runs a plugin executable with a CNI environment and a config on stdin; returns what it printed, or throws its
 * error reply as ours, code and all.
 */
export function execPlugin(file: string, type: string, env: Record<string, string>, stdin: string): string {
  const r = run(file, [], stdin, env);
  const text = r.stdout.trim();
  if (r.status !== 0) {
    let err: { code?: number; msg?: string; details?: string } = {};
    try {
      err = JSON.parse(text);
    } catch {
      // not an error JSON: report what it printed
    }
    throw new CniError(err.code ?? ErrorCode.Internal, `${type}: ${err.msg ?? (r.stderr.trim() || text || `exit ${r.status}`)}`, err.details ?? '');
  }
  return text;
}

/** This process's environment with CNI_* variables set over it. */
export function pluginEnv(vars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  return Object.assign(env, vars);
}

/**
 * Runs another plugin (an IPAM plugin, as the spec's delegation) with this invocation's env and the same
 * network config, and reads its answer.
 */
export function delegate(type: string, command: Command, env: CniEnv, rawConf: string): Result | undefined {
  const text = execPlugin(findPlugin(type, env.path), type, pluginEnv({ CNI_COMMAND: command }), rawConf);
  if (command !== 'ADD') return undefined;
  try {
    return parseResult(JSON.parse(text));
  } catch (err) {
    throw new CniError(ErrorCode.DecodeFailure, `${type} answered ADD with something that is not a result: ${(err as Error).message}`);
  }
}
