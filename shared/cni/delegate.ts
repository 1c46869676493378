import { existsSync } from 'node:fs';
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
 * Runs another plugin (an IPAM plugin, as the spec's delegation) with this invocation's env and the same
 * network config, and reads its answer. Its error becomes ours, code and all.
 */
export function delegate(type: string, command: Command, env: CniEnv, rawConf: string): Result | undefined {
  const file = findPlugin(type, env.path);
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) childEnv[k] = v;
  childEnv.CNI_COMMAND = command;
  const r = run(file, [], rawConf, childEnv);
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
  if (command !== 'ADD') return undefined;
  try {
    return parseResult(JSON.parse(text));
  } catch (err) {
    throw new CniError(ErrorCode.DecodeFailure, `${type} answered ADD with something that is not a result: ${(err as Error).message}`);
  }
}
