import { CommandError, run } from './spawn.ts';

/** `tc -j qdisc show` of one qdisc. */
export interface TcQdisc {
  kind: string;
  handle: string;
  root?: boolean;
  parent?: string;
  options?: { rate?: number; burst?: number; lat?: number };
}

/** `tc -j filter show` of one filter, with the actions a u32 filter carries. */
export interface TcFilter {
  kind: string;
  options?: { actions?: Array<{ kind: string; mirred_action?: string; direction?: string; to_dev?: string }> };
}

/** Applies tc commands in one process, stopping at the first failure. */
export function tcBatch(lines: string[]): void {
  if (lines.length === 0) return;
  const r = run('tc', ['-batch', '-'], lines.join('\n') + '\n');
  if (r.status !== 0) throw new CommandError(['tc', '-batch', ...lines.map((l) => `[${l}]`)], r);
}

function tcJson<T>(args: string[]): T[] {
  const r = run('tc', ['-j', ...args]);
  if (r.status !== 0) throw new CommandError(['tc', ...args], r);
  return r.stdout.trim() === '' ? [] : (JSON.parse(r.stdout) as T[]);
}

export function qdiscs(dev: string): TcQdisc[] {
  return tcJson<TcQdisc>(['qdisc', 'show', 'dev', dev]);
}

export function filters(dev: string, parent: string): TcFilter[] {
  return tcJson<TcFilter>(['filter', 'show', 'dev', dev, 'parent', parent]);
}
