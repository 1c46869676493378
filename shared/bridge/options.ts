import { validateIfname } from '../cni/env.ts';
import { invalidConfig } from '../cni/errors.ts';
import { asObject, optBool, optInt, optString, type Json } from '../cni/fields.ts';
import { canonicalIp } from '../ipam/ip.ts';
import { parseDiscovery, type Discovery } from '../discovery/options.ts';

/** A bridge network's options: the reference bridge's keys plus CNM's icc and internal. */
export interface BridgeOptions {
  bridge: string;
  isGateway: boolean;
  isDefaultGateway: boolean;
  forceAddress: boolean;
  ipMasq: boolean;
  mtu: number | null;
  hairpinMode: boolean;
  promiscMode: boolean;
  macspoofchk: boolean;
  enabledad: boolean;
  vlan: number | null;
  /** Inter-container communication: false isolates pods of the bridge from each other. */
  icc: boolean;
  /** No traffic leaves the node, none comes in from beyond it. */
  internal: boolean;
  /** Names for the network's pods, served by the node's DNS server (absent: none). */
  serviceDiscovery?: Discovery;
}

export const DEFAULT_BRIDGE = 'cnm0';

export function parseBridgeOptions(raw: Json): BridgeOptions {
  const bridge = optString(raw, 'bridge') ?? DEFAULT_BRIDGE;
  const why = validateIfname(bridge);
  if (why) throw invalidConfig(`bridge ${JSON.stringify(bridge)} ${why}`);
  const isDefaultGateway = optBool(raw, 'isDefaultGateway') ?? false;
  const internal = optBool(raw, 'internal') ?? false;
  const ipMasq = optBool(raw, 'ipMasq') ?? false;
  if (internal && ipMasq) throw invalidConfig('internal and ipMasq contradict each other: an internal network has no way out to masquerade', 'drop one of them');
  const discovery = parseDiscovery(raw);
  return {
    bridge,
    isGateway: (optBool(raw, 'isGateway') ?? false) || isDefaultGateway,
    isDefaultGateway,
    forceAddress: optBool(raw, 'forceAddress') ?? false,
    ipMasq,
    mtu: optInt(raw, 'mtu', 68, 65535) ?? null,
    hairpinMode: optBool(raw, 'hairpinMode') ?? false,
    promiscMode: optBool(raw, 'promiscMode') ?? false,
    macspoofchk: optBool(raw, 'macspoofchk') ?? false,
    enabledad: optBool(raw, 'enabledad') ?? false,
    vlan: optInt(raw, 'vlan', 0, 4094) || null,
    icc: optBool(raw, 'icc') ?? true,
    internal,
    ...(discovery ? { serviceDiscovery: discovery } : {}),
  };
}

export type Protocol = 'tcp' | 'udp' | 'sctp';

/** One runtimeConfig.portMappings entry, validated; hostIP undefined means every node address. */
export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: Protocol;
  hostIP?: string;
}

/**
 * The keys a runtime may spell in any case: containerd's go-cni sends {"HostPort", "ContainerPort", "Protocol",
 * "HostIP"}, and the reference plugins read JSON case-insensitively as Go does.
 */
function caseless(o: Json, keys: string[]): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(o)) {
    const known = keys.find((key) => key.toLowerCase() === k.toLowerCase());
    out[known ?? k] = v;
  }
  return out;
}

export function parsePortMappings(runtime: Json): PortMapping[] {
  const raw = runtime.portMappings;
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalidConfig('runtimeConfig.portMappings must be an array');
  return raw.map((entry, i) => {
    const field = `runtimeConfig.portMappings[${i}].`;
    const o = caseless(asObject(entry, `runtimeConfig.portMappings[${i}]`), ['hostPort', 'containerPort', 'protocol', 'hostIP']);
    const hostPort = optInt(o, 'hostPort', 1, 65535, field);
    const containerPort = optInt(o, 'containerPort', 1, 65535, field);
    if (hostPort === undefined || containerPort === undefined) throw invalidConfig(`${field.slice(0, -1)} needs hostPort and containerPort, not ${JSON.stringify(o)}`);
    const protocol = (optString(o, 'protocol', field) ?? 'tcp').toLowerCase();
    if (protocol !== 'tcp' && protocol !== 'udp' && protocol !== 'sctp') throw invalidConfig(`${field}protocol ${JSON.stringify(protocol)} is not tcp, udp or sctp`);
    const hostIPText = optString(o, 'hostIP', field);
    const m: PortMapping = { hostPort, containerPort, protocol };
    if (hostIPText && hostIPText !== '0.0.0.0' && hostIPText !== '::') {
      const ip = canonicalIp(hostIPText);
      if (!ip) throw invalidConfig(`${field}hostIP ${JSON.stringify(hostIPText)} is not an IP address`);
      m.hostIP = ip;
    }
    return m;
  });
}
