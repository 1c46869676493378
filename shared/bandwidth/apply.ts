// Applies, checks and removes a pod's shaping (plan.ts decides it).
import { CniError, ErrorCode } from '../cni/errors.ts';
import { ipBatch } from '../kernel/iproute.ts';
import { linkExists, startLinkDeletion } from '../kernel/links.ts';
import { filters, qdiscs, tcBatch } from '../kernel/tc.ts';
import type { Bandwidth } from './options.ts';
import { bandwidthPlan, tbfBytes } from './plan.ts';

export function applyBandwidth(bw: Bandwidth, hostVeth: string, ifb: string, mtu: number): void {
  const plan = bandwidthPlan(bw, hostVeth, ifb, mtu);
  if (plan.links.length) ipBatch(plan.links);
  tcBatch(plan.tc);
}

/** The host veth's qdiscs go with it; the ifb is removed by name, whether or not the ADD got to make it. */
export function removeBandwidth(ifb: string): void {
  if (linkExists(ifb)) startLinkDeletion(ifb);
}

/** Throws a CHECK failure (code 104) when the qdiscs no longer shape the pod as its ADD did. */
export function checkBandwidth(bw: Bandwidth, hostVeth: string, ifb: string): void {
  const fail = (msg: string) => {
    throw new CniError(ErrorCode.StateMismatch, msg, 'DEL and ADD the pod again');
  };
  const tbfOn = (dev: string, rateBits: number, burstBits: number, what: string) => {
    const want = tbfBytes(rateBits, burstBits).rate;
    const q = qdiscs(dev).find((x) => x.kind === 'tbf' && x.root);
    if (!q) fail(`${dev} has no tbf qdisc shaping ${what}`);
    if (q!.options?.rate !== want) fail(`the tbf on ${dev} shapes ${what} at ${q!.options?.rate} bytes/s, not ${want}`);
  };
  if (bw.ingressRate > 0) tbfOn(hostVeth, bw.ingressRate, bw.ingressBurst, 'traffic to the pod');
  if (bw.egressRate > 0) {
    if (!linkExists(ifb)) fail(`ifb device ${ifb} shaping the pod's egress is gone`);
    if (!qdiscs(hostVeth).some((x) => x.kind === 'ingress')) fail(`${hostVeth} has no ingress qdisc`);
    const redirects = filters(hostVeth, 'ffff:').some((f) => f.options?.actions?.some((a) => a.kind === 'mirred' && a.to_dev === ifb));
    if (!redirects) fail(`${hostVeth} no longer redirects the pod's traffic to ${ifb}`);
    tbfOn(ifb, bw.egressRate, bw.egressBurst, 'traffic from the pod');
  }
}
