// Virtual IPs, one per alias ("vip": true): reserved through the network's IPAM under an attachment of their
// own, so no pod is ever given one, and kept in step with the alias's endpoints on every ADD and DEL.
import type { Attachment } from '../cnm/requests.ts';
import type { Ipam } from '../cnm/ipam.ts';
import { listEndpoints } from '../cnm/inventory.ts';
import type { NetworkRecord } from '../cnm/records.ts';
import { removeFile, withLock, writeJsonAtomic } from '../cnm/store.ts';
import { ipBatch } from '../kernel/iproute.ts';
import { nftApply } from '../kernel/nft.ts';
import { backendsOf, vipAddressBatch, vipRuleset } from './vip-plan.ts';
import { vipsOf, vipsPath, type Vips } from './vip-state.ts';

/** The attachment under which IPAM holds an alias's VIP. */
export const vipAttachment = (alias: string): Attachment => ({ containerID: `cnm-vip-${alias}`, ifname: 'vip' });

/** The VIP attachments of a network, which GC must keep. */
export function vipAttachments(dataDir: string, network: string): Attachment[] {
  return Object.keys(vipsOf(dataDir, network)).map(vipAttachment);
}

/** The link the network's gateway lives on (the bridge), which answers for the VIPs. */
function gatewayLink(net: NetworkRecord): string {
  const bridge = net.options.bridge;
  if (typeof bridge !== 'string') throw new Error(`network ${net.name} has no bridge to carry its VIPs`);
  return bridge;
}

/** Reserves VIPs for new aliases, releases those of aliases no endpoint has left, rewrites the DNAT table. */
export function syncVips(dataDir: string, net: NetworkRecord, ipam: Ipam): void {
  withLock(`${dataDir}/locks/${net.name}.vips`, () => {
    const backends: Record<string, string[]> = {};
    for (const ep of listEndpoints(dataDir, net.name)) {
      if (ep.state !== 'ready') continue;
      for (const alias of ep.aliases ?? []) (backends[alias] ??= []).push(...ep.ips.map((i) => i.address.split('/')[0]!));
    }
    const had = vipsOf(dataDir, net.name);
    const want: Vips = {};
    for (const alias of Object.keys(backends)) {
      want[alias] = had[alias] ?? (ipam.requestAddress(vipAttachment(alias)).ips ?? []).map((i) => i.address.split('/')[0]!);
    }
    for (const alias of Object.keys(had)) if (!want[alias]) ipam.releaseAddress(vipAttachment(alias));
    const path = vipsPath(dataDir, net.name);
    if (Object.keys(want).length) writeJsonAtomic(path, want);
    else removeFile(path);
    nftApply(vipRuleset(net.name, backendsOf(want, backends)));
    const batch = vipAddressBatch(gatewayLink(net), Object.values(had).flat(), Object.values(want).flat());
    if (batch.length) ipBatch(batch);
  });
}
