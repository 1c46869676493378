import { invalidConfig } from '../cni/errors.ts';
import { optInt, optObject, type Json } from '../cni/fields.ts';

/**
 * A pod's shaping, in the reference bandwidth plugin's units: rates in bits per second, bursts in bits. Ingress
 * is traffic to the pod, egress traffic from it; a zero rate leaves that direction alone.
 */
export interface Bandwidth {
  ingressRate: number;
  ingressBurst: number;
  egressRate: number;
  egressBurst: number;
}

const KEYS = ['ingressRate', 'ingressBurst', 'egressRate', 'egressBurst'] as const;

/** tbf keeps its buffer as a 32-bit byte count. */
const MAX_BURST_BITS = 2 ** 32 * 8;

/**
 * The config's own keys (any of them present: the reference plugin's config) win over the runtime's
 * `runtimeConfig.bandwidth` (the `bandwidth` capability). Undefined when nothing is shaped.
 */
export function parseBandwidth(options: Json, runtime: Json): Bandwidth | undefined {
  let topLevel = false;
  for (const k of KEYS) if (options[k] !== undefined && options[k] !== null) topLevel = true;
  const where = topLevel ? '' : 'runtimeConfig.bandwidth.';
  const source: Json | undefined = topLevel ? options : optObject(runtime, 'bandwidth', 'runtimeConfig.');
  if (!source) return undefined;
  const field = (k: (typeof KEYS)[number]) => optInt(source, k, 0, Number.MAX_SAFE_INTEGER, where) ?? 0;
  const [ingressRate, ingressBurst, egressRate, egressBurst] = [field('ingressRate'), field('ingressBurst'), field('egressRate'), field('egressBurst')];
  direction(where, 'ingress', ingressRate, ingressBurst);
  direction(where, 'egress', egressRate, egressBurst);
  if (ingressRate === 0 && egressRate === 0) return undefined;
  return { ingressRate, ingressBurst, egressRate, egressBurst };
}

function direction(where: string, dir: 'ingress' | 'egress', rate: number, burst: number): void {
  const [r, b] = [`${where}${dir}Rate`, `${where}${dir}Burst`];
  if (rate > 0 && burst === 0) throw invalidConfig(`${r} is set but ${b} is not`, `set ${b} too, in bits (e.g. ${rate} for a second's worth at most)`);
  if (burst > 0 && rate === 0) throw invalidConfig(`${b} is set but ${r} is not`, `set ${r} too, in bits per second, or remove ${b}`);
  if (rate > 0 && rate < 8) throw invalidConfig(`${r} ${rate} is less than one byte per second`, 'rates are in bits per second, e.g. 10000000 for 10 Mbit/s');
  if (burst >= MAX_BURST_BITS) throw invalidConfig(`${b} ${burst} is 4 GB or more`, 'bursts are in bits; the kernel keeps at most 4 GB');
}
