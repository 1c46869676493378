// What service discovery adds to an endpoint's lifecycle, called by the NetworkController: the result's DNS,
// the VIPs, and the node's DNS server.
import type { Log } from '../cni/log.ts';
import type { Dns, IpConfig } from '../cni/result.ts';
import type { Ipam } from '../cnm/ipam.ts';
import type { NetworkRecord } from '../cnm/records.ts';
import type { Discovery } from './options.ts';
import { ensureDnsServer } from './server-control.ts';
import { syncVips } from './vip.ts';

export { vipAttachments } from './vip.ts';

/** The pod's resolver: its network's gateway(s), the discovery domain searched first. */
export function discoveryDns(d: Discovery, ips: IpConfig[], fromConf: Dns | undefined): Dns {
  const gateways = [...new Set(ips.map((i) => i.gateway).filter((g): g is string => !!g))];
  const dns: Dns = { nameservers: [...gateways, ...(fromConf?.nameservers ?? []).filter((n) => !gateways.includes(n))] };
  dns.search = [d.domain, ...(fromConf?.search ?? []).filter((s) => s !== d.domain)];
  if (fromConf?.domain) dns.domain = fromConf.domain;
  if (fromConf?.options?.length) dns.options = fromConf.options;
  return dns;
}

/** After the endpoint's record is ready: its alias VIPs, then a DNS server to answer its names. */
export function joined(d: Discovery, dataDir: string, net: NetworkRecord, ipam: Ipam | undefined, log: Log): void {
  if (d.vip && ipam) syncVips(dataDir, net, ipam);
  try {
    ensureDnsServer(d.runDir, dataDir, log);
  } catch (err) {
    // The pod is attached either way; its names come once a server runs (the next ADD starts one).
    log.error(`starting the DNS server of ${d.runDir}: ${(err as Error).message}`);
  }
}

/** After the endpoint's record is gone: the VIPs follow (the server sees the record go by itself). */
export function left(d: Discovery, dataDir: string, net: NetworkRecord, ipam: Ipam | undefined): void {
  if (d.vip && ipam) syncVips(dataDir, net, ipam);
}
