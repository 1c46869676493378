// The addresses an attachment asks for, wherever a runtime put them. Its own module: the CNI door reads it
// before the IPAM itself is loaded.
import type { Json } from '../cni/fields.ts';
import type { AttachmentSpec } from '../cnm/requests.ts';

/** Addresses a runtime asks for: CNI_ARGS IP=, args.cni.ips, runtimeConfig.ips (a "/prefix" is dropped). */
export function requestedIps(att: AttachmentSpec): string[] {
  const out: string[] = [];
  for (const [k, v] of att.labels) if (k === 'IP') out.push(...v.split(',').filter(Boolean));
  const fromArgs = (att.args?.cni as Json | undefined)?.ips;
  if (Array.isArray(fromArgs)) out.push(...fromArgs.filter((x): x is string => typeof x === 'string'));
  const fromRuntime = att.runtime.ips;
  if (Array.isArray(fromRuntime)) out.push(...fromRuntime.filter((x): x is string => typeof x === 'string'));
  const unique: string[] = [];
  for (const ip of out) {
    const address = ip.split('/')[0]!.trim();
    if (!unique.includes(address)) unique.push(address);
  }
  return unique;
}
