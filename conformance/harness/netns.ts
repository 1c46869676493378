import { execa } from 'execa';
import { existsSync } from 'node:fs';

/** Every namespace the suites make starts with this; nothing else is ever touched. */
export const PREFIX = 'cnmt-';
let seq = 0;

export interface TestNetns {
  name: string;
  path: string;
}

const made = new Set<string>();

export async function createNetns(label = 'ns'): Promise<TestNetns> {
  const name = `${PREFIX}${process.pid}-${label}-${seq++}`;
  await execa('ip', ['netns', 'add', name]);
  made.add(name);
  return { name, path: `/var/run/netns/${name}` };
}

export async function deleteNetns(ns: TestNetns): Promise<void> {
  made.delete(ns.name);
  if (existsSync(ns.path)) await execa('ip', ['netns', 'delete', ns.name]);
}

/** Whether a namespace is another test process's (`cnm<x>-<pid>-...` of a suite running beside this one). */
export function otherSuites(name: string): boolean {
  const pid = /^cnm[a-z]*-(\d+)-/.exec(name)?.[1];
  return pid !== undefined && Number(pid) !== process.pid;
}

/** Every named namespace of the machine (a runtime's too). */
export async function allNetns(): Promise<string[]> {
  const { stdout } = await execa('ip', ['-j', 'netns', 'list']);
  return (stdout.trim() ? (JSON.parse(stdout) as Array<{ name: string }>) : []).map((n) => n.name);
}

export async function listTestNetns(all = false): Promise<string[]> {
  const names = await allNetns();
  return names.filter((n) => n.startsWith(all ? PREFIX : `${PREFIX}${process.pid}-`));
}

/** Removes every namespace this process made (or, with all, any the suites ever made). */
export async function cleanupNetns(all = false): Promise<void> {
  for (const name of await listTestNetns(all)) {
    await execa('ip', ['netns', 'delete', name], { reject: false });
    made.delete(name);
  }
}

/** Runs a command inside a test namespace. */
export function inNs(ns: TestNetns, cmd: string, args: string[]) {
  return execa('ip', ['netns', 'exec', ns.name, cmd, ...args], { reject: false });
}
