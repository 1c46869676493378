import { invalidConfig } from '../cni/errors.ts';
import { optBool, optInt, optObject, optString, optStringArray, type Json } from '../cni/fields.ts';
import { canonicalIp } from '../ipam/ip.ts';

/** Where the node's DNS server keeps its PID file and the list of stores it serves. */
export const DEFAULT_DNS_RUN_DIR = '/run/cnm/dns';
export const DEFAULT_DOMAIN = 'cnm.internal';
export const DEFAULT_TTL = 5;

/** One upstream resolver, "IP", "IP:port" or "[IPv6]:port" in the config. */
export interface Upstream {
  address: string;
  port: number;
}

/** A network's service discovery, as its record keeps it (options.serviceDiscovery). */
export interface Discovery {
  domain: string;
  /** Seconds clients may cache an answer. */
  ttl: number;
  /** Empty: the node's /etc/resolv.conf nameservers, read when the server forwards. */
  upstreams: Upstream[];
  /** A virtual IP per alias, spreading connections over the alias's endpoints. */
  vip: boolean;
  /** The DNS server's run dir: a second, separate server (a test's) names its own. */
  runDir: string;
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Whether text is a DNS name of labels (lower case, no trailing dot). */
export function isDnsName(text: string): boolean {
  return text.length > 0 && text.length <= 253 && text.split('.').every((l) => LABEL.test(l));
}

export function parseUpstream(text: string, where: string): Upstream {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([^:]+)(?::(\d+))?$/.exec(text);
  const [host, port] = bracketed ? [bracketed[1]!, bracketed[2]] : plain ? [plain[1]!, plain[2]] : [text, undefined];
  const address = canonicalIp(host);
  const portNum = port === undefined ? 53 : Number(port);
  if (!address || !Number.isInteger(portNum) || portNum < 1 || portNum > 65535) {
    throw invalidConfig(`${where} ${JSON.stringify(text)} is not IP, IP:port or [IPv6]:port`, 'e.g. "192.0.2.53", "192.0.2.53:5353" or "[2001:db8::53]:53"');
  }
  return { address, port: portNum };
}

/**
 * `serviceDiscovery`: true, or {domain, ttl, upstreams, runDir}; `vip`: true needs it. Undefined when the
 * network has no service discovery.
 */
export function parseDiscovery(raw: Json): Discovery | undefined {
  const value = raw.serviceDiscovery;
  const vip = optBool(raw, 'vip') ?? false;
  if (value === undefined || value === null || value === false) {
    if (vip) throw invalidConfig('"vip": true needs service discovery: clients find a VIP by its alias name', 'add "serviceDiscovery": true');
    return undefined;
  }
  const o = value === true ? {} : optObject(raw, 'serviceDiscovery');
  if (!o) throw invalidConfig(`serviceDiscovery must be true or an object, not ${JSON.stringify(value)}`);
  const known = ['domain', 'ttl', 'upstreams', 'runDir'];
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length) throw invalidConfig(`serviceDiscovery has unknown key(s) ${unknown.join(', ')}`, `its keys are ${known.join(', ')}`);
  const domain = (optString(o, 'domain', 'serviceDiscovery.') ?? DEFAULT_DOMAIN).toLowerCase().replace(/\.$/, '');
  if (!isDnsName(domain)) throw invalidConfig(`serviceDiscovery.domain ${JSON.stringify(domain)} is not a DNS name`, 'use labels of letters, digits and "-", e.g. "pods.internal"');
  const runDir = optString(o, 'runDir', 'serviceDiscovery.') ?? DEFAULT_DNS_RUN_DIR;
  if (!runDir.startsWith('/')) throw invalidConfig(`serviceDiscovery.runDir ${JSON.stringify(runDir)} must be an absolute path`);
  return {
    domain,
    ttl: optInt(o, 'ttl', 0, 86400, 'serviceDiscovery.') ?? DEFAULT_TTL,
    upstreams: (optStringArray(o, 'upstreams', 'serviceDiscovery.') ?? []).map((u, i) => parseUpstream(u, `serviceDiscovery.upstreams[${i}]`)),
    vip,
    runDir,
  };
}

/** The discovery settings a network record keeps in its options (any driver that parses them). */
export function discoveryOf(options: Json): Discovery | undefined {
  const d = options.serviceDiscovery;
  return d && typeof d === 'object' ? (d as Discovery) : undefined;
}
