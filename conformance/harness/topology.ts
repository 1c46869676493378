import { execa } from 'execa';
import { createNetns, type TestNetns } from './netns.ts';

/** An "outside" host beyond the node: its own namespace, reached only through a test-made veth. */
export interface Outside {
  ns: TestNetns;
  /** The node's address on the link to it. */
  nodeIp: string;
  /** The outside host's address. */
  ip: string;
  hostLink: string;
}

let seq = 0;
const links = new Set<string>();

/** 198.18.0.0/15 is for benchmarking networks: nothing of the machine's uses it. */
export async function createOutside(): Promise<Outside> {
  const n = (process.pid % 200) + seq++;
  const ns = await createNetns('out');
  const hostLink = `cnmtup${process.pid % 10000}${seq}`.slice(0, 15);
  const nodeIp = `198.18.${n}.1`;
  const ip = `198.18.${n}.2`;
  await execa('ip', ['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns.path]);
  links.add(hostLink);
  await execa('ip', ['addr', 'add', `${nodeIp}/24`, 'dev', hostLink]);
  await execa('ip', ['link', 'set', hostLink, 'up']);
  await execa('ip', ['-n', ns.name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await execa('ip', ['-n', ns.name, 'link', 'set', 'eth0', 'up']);
  await execa('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
  return { ns, nodeIp, ip, hostLink };
}

/** Removes the test-made links (their peers go with the namespaces). */
export async function cleanupLinks(): Promise<void> {
  for (const l of links) await execa('ip', ['link', 'del', l], { reject: false });
  links.clear();
}

/** Links of the node whose names start with a prefix: what a suite checks it left nothing of. */
export async function nodeLinks(prefix: string): Promise<string[]> {
  const { stdout } = await execa('ip', ['-j', 'link', 'show']);
  return (JSON.parse(stdout) as Array<{ ifname: string }>).map((l) => l.ifname).filter((n) => n.startsWith(prefix));
}

export async function nftTables(prefix: string): Promise<string[]> {
  const { stdout } = await execa('nft', ['-j', 'list', 'tables']);
  return (JSON.parse(stdout).nftables as Array<{ table?: { family: string; name: string } }>)
    .filter((e) => e.table && e.table.name.startsWith(prefix))
    .map((e) => `${e.table!.family} ${e.table!.name}`);
}
