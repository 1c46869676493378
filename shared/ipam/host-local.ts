import { readFileSync, rmSync } from '../kernel/fs.ts';
import type { Attachment } from '../cni/config.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Json } from '../cni/fields.ts';
import type { Dns, IpConfig, Result, Route } from '../cni/result.ts';
import { capacity, describeSet, parseHostLocalConf, type HostLocalConf } from './config.ts';
import { formatCidr, formatIp } from './ip.ts';
import { Reservations } from './reservations.ts';

/** cnm-host-local: the reference host-local's behaviour over race-free reservation files. */
export class HostLocal {
  readonly conf: HostLocalConf;
  readonly reservations: Reservations;

  constructor(ipam: Json, network: string, dataDir: string) {
    this.conf = parseHostLocalConf(ipam);
    this.reservations = new Reservations(`${this.conf.dataDir ?? `${dataDir}/ipam`}/${network}`);
  }

  /** The subnets and gateways this IPAM serves, as a network record shows them. */
  pool(): Array<{ subnet: string; gateway?: string }> {
    return this.conf.ranges.flatMap((s) => s.ranges.map((r) => ({ subnet: formatCidr(r.subnet), ...(r.gateway !== undefined ? { gateway: gatewayText(r) } : {}) })));
  }

  allocate(att: Attachment, requested: string[]): Result {
    const got = this.reservations.allocate(att, this.conf.ranges, requested);
    // Loops, not map: on the ADD path its first call costs a compile (see shared/cni/result.ts).
    const ips: IpConfig[] = [];
    for (const a of got) ips.push({ address: `${a.ip}/${a.prefix}`, ...(a.gateway ? { gateway: a.gateway } : {}) });
    const routes: Route[] = [];
    for (const r of this.conf.routes) routes.push({ ...r });
    const result: Result = { cniVersion: '1.1.0', ips, routes };
    const dns = this.conf.resolvConf ? readResolvConf(this.conf.resolvConf) : undefined;
    if (dns) result.dns = dns;
    return result;
  }

  /** `known`: the addresses a record or prevResult says the attachment holds (checked, a hint). */
  release(att: Attachment, known?: string[]): void {
    this.reservations.release(att, known);
  }

  /** CHECK: the attachment still holds an address in every range set. */
  check(att: Attachment, known?: string[]): void {
    const held = this.reservations.held(att, known);
    if (held.length < this.conf.ranges.length) {
      throw new CniError(ErrorCode.InvalidConfig, `container ${att.containerID} ifname ${att.ifname} holds ${held.length} of ${this.conf.ranges.length} addresses in ${this.reservations.dir}`);
    }
  }

  gc(valid: Attachment[]): number {
    return this.reservations.gc(valid);
  }

  status(): void {
    for (const set of this.conf.ranges) {
      if (BigInt(this.reservations.used(set)) >= capacity(set)) {
        throw new CniError(ErrorCode.NotAvailable, `no free address left in ipam.ranges[${set.index}] (${describeSet(set)})`, 'DEL unused pods or widen the range');
      }
    }
  }

  removeAll(): void {
    rmSync(this.reservations.dir, { recursive: true, force: true });
  }
}

function gatewayText(r: HostLocalConf['ranges'][number]['ranges'][number]): string {
  return formatIp(r.subnet.family, r.gateway!);
}

/** The nameserver / domain / search / options lines of a resolv.conf. */
export function readResolvConf(path: string): Dns | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CniError(ErrorCode.InvalidConfig, `ipam.resolvConf ${path} cannot be read: ${(err as Error).message}`);
  }
  const dns: Dns = {};
  for (const line of text.split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (!key || key.startsWith('#') || key.startsWith(';')) continue;
    if (key === 'nameserver' && rest[0]) (dns.nameservers ??= []).push(rest[0]);
    else if (key === 'domain' && rest[0]) dns.domain = rest[0];
    else if (key === 'search') dns.search = rest;
    else if (key === 'options') (dns.options ??= []).push(...rest);
  }
  return Object.keys(dns).length ? dns : undefined;
}

