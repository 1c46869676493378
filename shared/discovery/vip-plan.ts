// A network's VIPs as kernel state, planned as data: the nft table that spreads new connections to a VIP over
// the alias's endpoints, and the VIP addresses on the gateway's link (so the node answers ARP/ND for them).
import { tableName } from '../bridge/plan.ts';
import type { Vips } from './vip-state.ts';

export const vipTable = (network: string) => `${tableName(network)}_vip`;

/** For each VIP address, the endpoint addresses of its family behind it. */
export type Backends = Array<{ vip: string; targets: string[] }>;

const isV6 = (ip: string) => ip.includes(':');

/** Pairs each alias's VIPs with its endpoints' addresses of the same family. */
export function backendsOf(vips: Vips, endpoints: Record<string, string[]>): Backends {
  const out: Backends = [];
  for (const [alias, addrs] of Object.entries(vips)) {
    for (const vip of addrs) {
      const targets = (endpoints[alias] ?? []).filter((t) => isV6(t) === isV6(vip)).sort();
      if (targets.length) out.push({ vip, targets });
    }
  }
  return out.sort((a, b) => a.vip.localeCompare(b.vip));
}

function dnatRule(b: Backends[number]): string {
  const ip = isV6(b.vip) ? 'ip6' : 'ip';
  const map = b.targets.map((t, i) => `${i} : ${t}`).join(', ');
  return `    ${ip} daddr ${b.vip} dnat ${ip} to numgen inc mod ${b.targets.length} map { ${map} }`;
}

/** Replaces the network's VIP table whole (or removes it when there is nothing behind any VIP). */
export function vipRuleset(network: string, backends: Backends): string {
  const t = vipTable(network);
  const lines = [`table inet ${t} {}`, `delete table inet ${t}`];
  if (backends.length) {
    const rules = backends.map(dnatRule);
    lines.push(
      `table inet ${t} {`,
      '  chain prerouting { type nat hook prerouting priority dstnat - 5; policy accept;',
      ...rules,
      '  }',
      '  chain output { type nat hook output priority -105; policy accept;',
      ...rules,
      '  }',
      '}',
    );
  }
  return lines.join('\n') + '\n';
}

/** `ip -batch` lines moving the link's VIP addresses from `had` to `want` (host routes: /32 and /128). */
export function vipAddressBatch(link: string, had: string[], want: string[]): string[] {
  const host = (a: string) => `${a}/${isV6(a) ? 128 : 32}`;
  return [
    ...had.filter((a) => !want.includes(a)).map((a) => `addr del ${host(a)} dev ${link}`),
    ...want.filter((a) => !had.includes(a)).map((a) => `addr replace ${host(a)} dev ${link}${isV6(a) ? ' nodad' : ''}`),
  ];
}
