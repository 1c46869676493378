import { utf8 } from '../kernel/libc.ts';
import { CniError, ErrorCode, invalidEnv } from './errors.ts';
import { isCniName } from './fields.ts';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS'] as const;
export type Command = (typeof COMMANDS)[number];

/** The CNI_* environment of one invocation, validated. */
export interface CniEnv {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as ordered key/value pairs. */
  args: Array<[string, string]>;
  /** CNI_PATH split on ':'. */
  path: string[];
}

type EnvKey = 'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME' | 'CNI_PATH';

/** Which variables each command needs, as the reference skel requires them. */
const REQUIRED: Record<Command, EnvKey[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: [],
  STATUS: [],
  VERSION: [],
};

export function validateIfname(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (utf8(name).length > 15) return 'is longer than 15 bytes';
  if (name === '.' || name === '..') return 'may not be "." or ".."';
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    if (c === '/' || c === ':' || c.trim() === '') return 'may not contain "/", ":" or whitespace';
  }
  return undefined;
}

export function parseCniArgs(raw: string): Array<[string, string]> {
  const args: Array<[string, string]> = [];
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw invalidEnv(`CNI_ARGS: ${JSON.stringify(pair)} is not KEY=VALUE`);
    args.push([pair.slice(0, eq), pair.slice(eq + 1)]);
  }
  return args;
}

export function parseEnv(env: Record<string, string | undefined>): CniEnv {
  const command = env.CNI_COMMAND ?? '';
  if (command === '') throw invalidEnv('CNI_COMMAND is not set', `set it to one of ${COMMANDS.join(', ')}`);
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw invalidEnv(`CNI_COMMAND ${JSON.stringify(command)} is not a CNI command`, `use one of ${COMMANDS.join(', ')}`);
  }
  const cmd = command as Command;
  // libcni asks VERSION with placeholders (CNI_NETNS=dummy ...): VERSION reads nothing but the command.
  if (cmd === 'VERSION') return { command: cmd, containerId: '', netns: '', ifname: '', args: [], path: [] };
  for (const key of REQUIRED[cmd]) {
    if ((env[key] ?? '') === '') throw invalidEnv(`${key} is required for ${cmd}`);
  }
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId !== '' && !isCniName(containerId)) {
    throw invalidEnv(
      `CNI_CONTAINERID ${JSON.stringify(containerId)} is invalid`,
      'a container id starts with a letter or digit and holds only letters, digits, "_", "." and "-"',
    );
  }
  const ifname = env.CNI_IFNAME ?? '';
  if (ifname !== '' || REQUIRED[cmd].includes('CNI_IFNAME')) {
    const why = validateIfname(ifname);
    if (why) throw invalidEnv(`CNI_IFNAME ${JSON.stringify(ifname)} ${why}`);
  }
  const netns = env.CNI_NETNS ?? '';
  if (netns !== '' && !netns.startsWith('/')) {
    throw invalidEnv(`CNI_NETNS ${JSON.stringify(netns)} is not an absolute path`);
  }
  return {
    command: cmd,
    containerId,
    netns,
    ifname,
    args: parseCniArgs(env.CNI_ARGS ?? ''),
    path: nonEmpty((env.CNI_PATH ?? '').split(':')),
  };
}

function nonEmpty(parts: string[]): string[] {
  const out: string[] = [];
  for (const p of parts) if (p !== '') out.push(p);
  return out;
}

/** A netns path that does not exist means the container is gone (code 3). */
export function unknownContainer(netns: string): CniError {
  return new CniError(ErrorCode.UnknownContainer, `network namespace ${netns} does not exist`, 'the container is gone or CNI_NETNS is wrong');
}
