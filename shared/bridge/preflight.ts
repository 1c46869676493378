// Checks a bridge network and an endpoint must pass before anything is touched: each failure names the conflict.
import { invalidConfig } from '../cni/errors.ts';
import { listEndpoints, listNetworks } from '../cnm/inventory.ts';
import type { NetworkRecord } from '../cnm/records.ts';
import { routes } from '../kernel/iproute.ts';
import { isBridge, linkExists } from '../kernel/links.ts';
import { formatCidr, parseCidr, type Cidr } from '../ipam/ip.ts';
import type { BridgeOptions, PortMapping } from './options.ts';

function overlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && a.network <= b.last && b.network <= a.last;
}

export function checkNewNetwork(dataDir: string, net: NetworkRecord, o: BridgeOptions): void {
  if (linkExists(o.bridge) && !isBridge(o.bridge)) {
    throw invalidConfig(`bridge ${o.bridge} of network '${net.name}' is an existing link that is not a bridge`, 'pick another "bridge" name');
  }
  const subnets = net.subnets.map((s) => parseCidr(s.subnet)!).filter(Boolean);
  for (const other of listNetworks(dataDir)) {
    if (other.name === net.name || other.driver !== 'bridge' || (other.options as { bridge?: string }).bridge !== o.bridge) continue;
    const same = JSON.stringify(other.subnets.map((s) => s.subnet).sort()) === JSON.stringify(net.subnets.map((s) => s.subnet).sort());
    if (!same) {
      throw invalidConfig(
        `bridge ${o.bridge} already serves network '${other.name}' (${other.subnets.map((s) => s.subnet).join(', ') || 'no subnet'}); network '${net.name}' claims it with ${net.subnets.map((s) => s.subnet).join(', ') || 'no subnet'}`,
        'give each network its own bridge',
      );
    }
  }
  if (subnets.length === 0) return;
  for (const family of [4, 6] as const) {
    for (const route of routes(family)) {
      if (route.dst === 'default' || route.dev === o.bridge) continue;
      const dst = parseCidr(route.dst.includes('/') ? route.dst : `${route.dst}/${family === 4 ? 32 : 128}`);
      if (!dst || (family === 6 && route.dst.startsWith('fe80:'))) continue;
      for (const s of subnets) {
        if (overlaps(s, dst)) {
          throw invalidConfig(`subnet ${formatCidr(s)} of network '${net.name}' overlaps route ${route.dst} on ${route.dev ?? 'the node'}`, 'pick a subnet no route of the node covers');
        }
      }
    }
  }
}

/** A hostPort (with its protocol and host address) that another endpoint of any network already maps. */
export function checkHostPorts(dataDir: string, containerId: string, ifname: string, wanted: PortMapping[]): void {
  if (wanted.length === 0) return;
  for (const ep of listEndpoints(dataDir)) {
    if (ep.containerId === containerId && ep.ifname === ifname) continue;
    const taken = (ep.driverState.portMappings ?? []) as PortMapping[];
    for (const w of wanted) {
      const clash = taken.find((t) => t.hostPort === w.hostPort && t.protocol === w.protocol && (!t.hostIP || !w.hostIP || t.hostIP === w.hostIP));
      if (clash) {
        throw invalidConfig(`hostPort ${w.hostPort}/${w.protocol} is already mapped to container ${ep.containerId} on network '${ep.network}'`, 'use another hostPort');
      }
    }
  }
}
