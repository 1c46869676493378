// The pod side of an endpoint, as data: one `ip -batch` run inside the pod's namespace.
import { invalidConfig } from '../cni/errors.ts';
import type { IpConfig, Route } from '../cni/result.ts';
import { familyOf } from '../ipam/ip.ts';
import { hexByte, randomBytes } from './names.ts';
import type { AttachmentSpec } from './requests.ts';

/** A random locally administered unicast MAC. */
export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  let mac = hexByte(b[0]);
  for (let i = 1; i < 6; i++) mac += `:${hexByte(b[i]!)}`;
  return mac;
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** A MAC the runtime asks for (runtimeConfig.mac, the `mac` capability, or CNI_ARGS MAC=). */
export function requestedMac(att: AttachmentSpec): string | undefined {
  const fromRuntime = att.runtime.mac;
  let mac = typeof fromRuntime === 'string' ? fromRuntime : undefined;
  if (mac === undefined) for (const [k, v] of att.labels) if (k === 'MAC') mac ??= v;
  mac = mac?.toLowerCase();
  if (mac === undefined) return undefined;
  if (!MAC.test(mac) || parseInt(mac.slice(0, 2), 16) & 1) throw invalidConfig(`MAC ${JSON.stringify(mac)} is not a unicast MAC address`);
  return mac;
}

export interface PodSide {
  ifname: string;
  ips: IpConfig[];
  routes: Route[];
  enabledad: boolean;
  /** Gateway per family, for the default route and for routes without a gw. */
  gateways: { 4?: string; 6?: string };
  defaultRoute: boolean;
}

/** The routes a pod gets: a default route per gateway family (isDefaultGateway), then IPAM's. */
export function podRoutes(p: PodSide): Route[] {
  const routes: Route[] = [];
  if (p.defaultRoute) {
    if (p.gateways[4]) routes.push({ dst: '0.0.0.0/0', gw: p.gateways[4] });
    if (p.gateways[6]) routes.push({ dst: '::/0', gw: p.gateways[6] });
  }
  for (const r of p.routes) if (!routes.some((x) => x.dst === r.dst)) routes.push(r);
  return routes;
}

/** One `ip -batch` inside the pod: addresses, link up, routes. */
export function podBatch(p: PodSide): string[] {
  const lines = p.ips.map((ip) => `addr add ${ip.address} dev ${p.ifname}${familyOf(ip.address) === 6 && !p.enabledad ? ' nodad' : ''}`);
  lines.push(`link set dev ${p.ifname} up`);
  for (const r of podRoutes(p)) {
    const gw = r.gw ?? p.gateways[familyOf(r.dst)];
    lines.push(`route add ${r.dst}${gw ? ` via ${gw}` : ''} dev ${p.ifname}`);
  }
  return lines;
}
