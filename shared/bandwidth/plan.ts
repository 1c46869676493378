// What shaping a pod takes, as data: iproute2 lines for the ifb device and tc batch lines for the qdiscs,
// as the reference bandwidth plugin sets them up. Pure, so unit-tested without root.
import { endpointLinkName } from '../cnm/names.ts';
import type { Bandwidth } from './options.ts';

/** The reference plugin's tbf latency: the queue holds what the rate sends in this time, plus the burst. */
export const LATENCY_MS = 25;

/** The ifb device that shapes a pod's egress, derived from the attachment so a DEL after a kill finds it. */
export function ifbName(network: string, containerId: string, ifname: string): string {
  return endpointLinkName('cnmb', network, containerId, ifname);
}

export interface BandwidthPlan {
  /** `ip -batch` lines: the ifb device, when egress is shaped. */
  links: string[];
  /** `tc -batch` lines. */
  tc: string[];
}

/** tbf in the kernel's units, as the reference plugin computes them: bytes per second, burst in bytes. */
export function tbfBytes(rateBits: number, burstBits: number): { rate: number; burst: number } {
  return { rate: Math.floor(rateBits / 8), burst: Math.floor(burstBits / 8) };
}

function tbf(dev: string, rateBits: number, burstBits: number): string {
  const { rate, burst } = tbfBytes(rateBits, burstBits);
  return `qdisc add dev ${dev} root handle 1: tbf rate ${rate}bps burst ${burst} latency ${LATENCY_MS}ms`;
}

/**
 * Traffic to the pod leaves the node through the host veth: a tbf there. Traffic from the pod enters the node
 * through it, where only an ingress qdisc can see it: a u32 filter redirects all of it to the ifb, whose tbf
 * shapes it.
 */
export function bandwidthPlan(bw: Bandwidth, hostVeth: string, ifb: string, mtu: number): BandwidthPlan {
  const plan: BandwidthPlan = { links: [], tc: [] };
  if (bw.ingressRate > 0) plan.tc.push(tbf(hostVeth, bw.ingressRate, bw.ingressBurst));
  if (bw.egressRate > 0) {
    plan.links.push(`link add ${ifb} mtu ${mtu} type ifb`, `link set dev ${ifb} up`);
    plan.tc.push(
      `qdisc add dev ${hostVeth} handle ffff: ingress`,
      `filter add dev ${hostVeth} parent ffff: protocol all prio 1 u32 match u32 0 0 flowid 1:1 action mirred egress redirect dev ${ifb}`,
      tbf(ifb, bw.egressRate, bw.egressBurst),
    );
  }
  return plan;
}
