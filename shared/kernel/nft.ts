import { run, CommandError, type RunResult } from './spawn.ts';

/** Applies an nft script as one transaction: all of it or none. */
export function nftApply(script: string): void {
  const r = nftTry(script);
  if (r.status !== 0) throw new CommandError(['nft', '-f', '-', `<<${script.trim().split('\n').length} lines>>`], r);
}

export function nftTry(script: string): RunResult {
  return run('nft', ['-f', '-'], script);
}

/** `nft -j list ...`, parsed; undefined when the object does not exist. */
export function nftList(args: string[]): NftJson | undefined {
  const r = run('nft', ['-j', 'list', ...args]);
  if (r.status !== 0) return undefined;
  return JSON.parse(r.stdout) as NftJson;
}

export interface NftJson {
  nftables: Array<Record<string, unknown>>;
}

/** Quotes a string for an nft script (interface names, comments). */
export function nftString(s: string): string {
  if (!/^[\w.:@\-/]*$/.test(s)) throw new Error(`refusing to put ${JSON.stringify(s)} into an nft script`);
  return `"${s}"`;
}
