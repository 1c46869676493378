import { invalidConfig } from '../cni/errors.ts';
import type { AttachmentSpec } from '../cnm/requests.ts';
import { isDnsName } from './options.ts';

/** What an endpoint answers to: its own names, and the aliases it shares with other endpoints. */
export interface EndpointNames {
  names: string[];
  aliases: string[];
}

const label = (att: AttachmentSpec, key: string) => att.labels.find(([k]) => k === key)?.[1];

/**
 * The names of an endpoint: the label K8S_POD_NAME (CNI_ARGS; podman puts the container name there; with
 * K8S_POD_NAMESPACE, as containerd and CRI-O send, also NAME.NAMESPACE), the container ID's first 12
 * characters, and the runtime's aliases for this network (podman's `aliases` capability).
 */
export function endpointNames(network: string, att: AttachmentSpec): EndpointNames {
  const names: string[] = [];
  const pod = label(att, 'K8S_POD_NAME')?.toLowerCase();
  const namespace = label(att, 'K8S_POD_NAMESPACE')?.toLowerCase();
  if (pod && isDnsName(pod)) {
    names.push(pod);
    if (namespace && isDnsName(`${pod}.${namespace}`)) names.push(`${pod}.${namespace}`);
  }
  const short = att.containerId.slice(0, 12).toLowerCase();
  if (isDnsName(short)) names.push(short);
  return { names: [...new Set(names)], aliases: aliasesOf(network, att) };
}

function aliasesOf(network: string, att: AttachmentSpec): string[] {
  const all = att.runtime.aliases;
  if (all === undefined || all === null) return [];
  if (typeof all !== 'object' || Array.isArray(all)) throw invalidConfig('runtimeConfig.aliases must be an object of network name to a list of names', `e.g. {"${network}": ["web"]}`);
  const mine = (all as Record<string, unknown>)[network];
  if (mine === undefined || mine === null) return [];
  if (!Array.isArray(mine) || mine.some((a) => typeof a !== 'string')) throw invalidConfig(`runtimeConfig.aliases.${network} must be a list of names`);
  const aliases = (mine as string[]).map((a) => a.toLowerCase().replace(/\.$/, ''));
  const bad = aliases.filter((a) => !isDnsName(a));
  if (bad.length) throw invalidConfig(`alias(es) ${bad.map((a) => JSON.stringify(a)).join(', ')} are not DNS names`, 'use labels of letters, digits, "-" and "_"');
  return [...new Set(aliases)];
}
