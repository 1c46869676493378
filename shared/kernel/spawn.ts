import { fromUtf8 } from './libc.ts';
import { existsSync } from './fs.ts';

/** The slice of Bun's API we use; present only when compiled with Bun. */
interface BunSpawnResult {
  exitCode: number | null;
  stdout: Uint8Array;
  stderr: Uint8Array;
}
interface BunGlobal {
  spawn(opts: { cmd: string[]; stdio: ['ignore', 'ignore' | number, 'ignore' | number]; argv0?: string; detached?: boolean; cwd?: string }): { unref(): void };
  spawnSync(opts: { cmd: string[]; stdin?: Uint8Array | 'ignore'; stdout: 'pipe'; stderr: 'pipe'; env?: Record<string, string> }): BunSpawnResult;
}
declare const Bun: BunGlobal | undefined;

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** A command that exited non-zero: carries the command, its exit code and its output. */
export class CommandError extends Error {
  readonly cniCode = 100;
  constructor(
    readonly argv: string[],
    readonly result: RunResult,
  ) {
    super(`${argv.join(' ')} failed (exit ${result.status}): ${result.stderr.trim() || result.stdout.trim()}`);
    this.name = 'CommandError';
  }
}

/** Tool locations: a runtime's PATH may lack the sbin directories. */
const SEARCH = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const resolved: Record<string, string> = {};

export function which(tool: string): string {
  let found = resolved[tool];
  if (found) return found;
  for (const dir of [...(process.env.PATH ?? '').split(':'), ...SEARCH]) {
    if (dir && existsSync(`${dir}/${tool}`)) {
      found = `${dir}/${tool}`;
      break;
    }
  }
  found ??= tool;
  resolved[tool] = found;
  return found;
}

/** Runs a program with an argument array (never a shell), through the runtime's cheapest spawn. */
export function run(tool: string, args: string[], input?: string, env?: Record<string, string>): RunResult {
  const file = tool.startsWith('/') ? tool : which(tool);
  if (typeof Bun !== 'undefined') {
    const r = Bun.spawnSync({
      cmd: [file, ...args],
      stdin: input === undefined ? 'ignore' : new TextEncoder().encode(input),
      stdout: 'pipe',
      stderr: 'pipe',
      ...(env ? { env } : {}),
    });
    return { status: r.exitCode ?? 128, stdout: fromUtf8(r.stdout), stderr: fromUtf8(r.stderr) };
  }
  // node:child_process only off Bun: evaluating it costs a Bun plugin ~0.5 ms of start-up.
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const r = spawnSync(file, args, { input, env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) return { status: 127, stdout: '', stderr: `${file}: ${r.error.message}` };
  return { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * Starts a program and does not wait for it: it runs on after this process exits. For kernel work whose
 * visible effect comes long before the call returns (see startLinkDeletion).
 */
export function runDetached(tool: string, args: string[]): void {
  const file = which(tool);
  if (typeof Bun !== 'undefined') {
    Bun.spawn({ cmd: [file, ...args], stdio: ['ignore', 'ignore', 'ignore'] }).unref();
    return;
  }
  require('node:child_process').spawn(file, args, { detached: true, stdio: 'ignore' }).unref();
}

/**
 * Starts this executable again under another of its names (the dispatcher's), in a session of its own, with
 * stdout and stderr on an open file, in /: a daemon that outlives the plugin process and its runtime's process
 * group, and pins no directory of the runtime's.
 */
export function spawnSelf(name: string, args: string[], logFd: number): void {
  if (typeof Bun !== 'undefined') {
    Bun.spawn({ cmd: [process.execPath, ...args], argv0: name, stdio: ['ignore', logFd, logFd], detached: true, cwd: '/' }).unref();
    return;
  }
  require('node:child_process').spawn(process.execPath, args, { argv0: name, detached: true, stdio: ['ignore', logFd, logFd], cwd: '/' }).unref();
}

/** Runs and throws a CommandError on a non-zero exit. */
export function runOk(tool: string, args: string[], input?: string): string {
  const r = run(tool, args, input);
  if (r.status !== 0) throw new CommandError([tool, ...args], r);
  return r.stdout;
}
