import { CniError, ErrorCode, invalidConfig, step } from '../cni/errors.ts';
import { bootId } from '../kernel/boot.ts';
import { settleLinkDeletions } from '../kernel/links.ts';
import type { Json } from '../cni/fields.ts';
import type { Log } from '../cni/log.ts';
import { plainAddresses, type Dns, type Result } from '../cni/result.ts';
import type { Driver, DriverContext } from './driver.ts';
import { AddressesHeld, type Ipam } from './ipam.ts';
import type { Attachment, AttachmentSpec, ControllerRequest, NetworkSpec } from './requests.ts';
import { endpointDir, endpointPath, networkLockPath, networkPath } from './paths.ts';
import type { EndpointRecord, NetworkRecord } from './records.ts';
import { Sandbox } from './sandbox.ts';
import { lap } from '../cni/timing.ts';
import { listDir, readJson, removeFile, sweepTemps, withLock, writeJsonAtomic } from './store.ts';
import { discoveryOf, type Discovery } from '../discovery/options.ts';
import { endpointNames } from '../discovery/names.ts';
import * as discoveryHooks from '../discovery/endpoint.ts';

/**
 * The entry point of every call from either door: maps one request onto the CNM objects of the network it
 * names, over the store.
 */
export class NetworkController {
  private readonly ctx: DriverContext;
  private readonly netSpec: NetworkSpec;
  private readonly att: AttachmentSpec;

  constructor(
    private readonly driver: Driver,
    private readonly req: ControllerRequest,
    private readonly ipam: Ipam | undefined,
    private readonly log: Log,
  ) {
    this.netSpec = req.network;
    this.att = req.attachment;
    this.ctx = { network: req.network, attachment: req.attachment, log, dataDir: req.network.dataDir };
    if (this.ipam && !driver.usesIpam) {
      throw invalidConfig(`the ${driver.name} driver gives pods no addresses, so it takes no "ipam" section`, 'remove ipam from the config');
    }
    if (!this.ipam && driver.usesIpam) throw invalidConfig(`the ${driver.name} driver needs an "ipam" section`, 'add e.g. "ipam": {"type": "cnm-host-local", "ranges": [[{"subnet": "10.22.0.0/16"}]]}');
  }

  private get attachment(): Attachment {
    return { containerID: this.att.containerId, ifname: this.att.ifname };
  }

  private endpointFile(containerId = this.att.containerId, ifname = this.att.ifname): string {
    return endpointPath(this.ctx.dataDir, this.netSpec.name, containerId, ifname);
  }

  /** The network the config names, created on first use; `created` says this call made it. */
  network(options: Json): { net: NetworkRecord; created: boolean } {
    const conf = this.netSpec;
    const path = networkPath(this.ctx.dataDir, conf.name);
    const existing = readJson<NetworkRecord>(path);
    if (existing) return { net: this.ensured(this.sameNetwork(existing, options)), created: false };
    return withLock(networkLockPath(this.ctx.dataDir, conf.name), () => {
      const raced = readJson<NetworkRecord>(path);
      if (raced) return { net: this.ensured(this.sameNetwork(raced, options)), created: false };
      const net: NetworkRecord = {
        name: conf.name,
        driver: this.driver.name,
        options,
        state: {},
        subnets: this.ipam?.requestPool() ?? [],
        created: new Date().toISOString(),
      };
      if (this.ipam) net.ipamType = this.ipam.type;
      if (this.ipam?.dir) net.ipamDir = this.ipam.dir;
      try {
        net.state = step(`creating network ${net.name}`, () => this.driver.createNetwork(this.ctx, net));
      } catch (err) {
        this.ipam?.releasePool();
        throw err;
      }
      writeJsonAtomic(path, net);
      return { net, created: true };
    });
  }

  /** The network's kernel objects as the store says, recreated where they drifted (a reboot, an operator). */
  private ensured(net: NetworkRecord): NetworkRecord {
    lap('store');
    const repaired = step(`network ${net.name}: checking its kernel objects`, () => this.driver.ensureNetwork(this.ctx, net), ErrorCode.KernelFailure);
    for (const what of repaired) this.log.warn(`network ${net.name}: repaired: ${what}`);
    lap('ensure');
    return net;
  }

  /** Removes a network this ADD created and that no other endpoint joined meanwhile. */
  private removeNetworkIfUnused(net: NetworkRecord): void {
    withLock(networkLockPath(this.ctx.dataDir, net.name), () => {
      if (listDir(endpointDir(this.ctx.dataDir, net.name)).length > 0) return;
      this.driver.deleteNetwork(this.ctx, net);
      this.ipam?.releasePool();
      removeFile(networkPath(this.ctx.dataDir, net.name));
    });
  }

  private sameNetwork(net: NetworkRecord, options: Json): NetworkRecord {
    if (net.driver !== this.driver.name) {
      throw invalidConfig(`network ${net.name} already exists with driver ${net.driver}, not ${this.driver.name}`, `remove it first with "cnm network rm ${net.name}" or pick another name`);
    }
    // The common case, the same options in the same order, in one comparison instead of two per key.
    if (JSON.stringify(net.options) === JSON.stringify(options)) return net;
    const changed = Object.keys({ ...net.options, ...options }).filter((k) => JSON.stringify(net.options[k]) !== JSON.stringify(options[k]));
    if (changed.length > 0) {
      throw invalidConfig(`network ${net.name} already exists with other ${changed.join(', ')}`, `a network's options are fixed once created: remove it with "cnm network rm ${net.name}" when it has no endpoints, or use another name`);
    }
    return net;
  }

  /** Creates the network the request names (a Docker CreateNetwork), or finds it unchanged. */
  createNetwork(): NetworkRecord {
    return this.network(this.driver.validate(this.ctx)).net;
  }

  add(): Result {
    const env = this.att;
    const conf = this.netSpec;
    const options = this.driver.validate(this.ctx);
    const discovery = discoveryOf(options);
    const names = discovery && endpointNames(conf.name, env);
    const sandbox = Sandbox.require(env.containerId, env.netns);
    const { net, created } = this.network(options);
    lap('store');

    const file = this.endpointFile();
    const previous = readJson<EndpointRecord>(file);
    if (previous?.state === 'ready') {
      throw invalidConfig(`container ${env.containerId} is already attached to network ${conf.name} as ${env.ifname}`, 'DEL it first, or use another CNI_IFNAME');
    }
    if (previous) this.teardown(previous, net);

    const ep: EndpointRecord = {
      network: conf.name,
      containerId: env.containerId,
      ifname: env.ifname,
      netns: env.netns,
      state: 'creating',
      driver: this.driver.name,
      interfaces: [],
      ips: [],
      routes: [],
      driverState: {},
      created: new Date().toISOString(),
      boot: bootId(),
      ...names,
    };
    if (this.ipam) ep.ipamType = this.ipam.type;
    ep.driverState = this.driver.prepare(this.ctx, net, ep);
    // Recorded before anything is reserved or touched, so that a DEL after a kill knows what to undo; unless the
    // driver can tell that from the attachment alone.
    const recorded = this.driver.recordBeforeJoin?.(net, ep.driverState) ?? true;
    if (recorded) writeJsonAtomic(file, ep);
    lap('store');

    let addressed: Result | undefined;
    try {
      addressed = recorded ? this.ipam?.requestAddress(this.attachment) : this.requestAddressUnrecorded(net);
      lap('ipam');
      const joined = step(`attaching ${env.containerId}/${env.ifname} to network ${conf.name}`, () => this.driver.join(this.ctx, net, ep, sandbox, { ips: addressed?.ips ?? [], routes: addressed?.routes ?? [] }));
      const index = joined.addressedInterface;
      ep.interfaces = joined.interfaces;
      ep.ips = [];
      for (const ip of addressed?.ips ?? []) ep.ips.push(index >= 0 ? { ...ip, interface: index } : { ...ip });
      ep.ips.push(...(joined.ips ?? []));
      ep.routes = [...(addressed?.routes ?? []), ...(joined.routes ?? [])];
      const dns = discovery ? discoveryHooks.discoveryDns(discovery, ep.ips, conf.dns) : pickDns(conf.dns, addressed?.dns);
      if (dns) ep.dns = dns;
      if (joined.mac) ep.mac = joined.mac;
      ep.driverState = { ...ep.driverState, ...joined.driverState };
      ep.state = 'ready';
      writeJsonAtomic(file, ep);
      lap('store');
      if (discovery) discoveryHooks.joined(discovery, this.ctx.dataDir, net, this.ipam, this.log);
    } catch (err) {
      this.undo(ep, net, sandbox, created);
      throw err;
    }
    return toResult(ep);
  }

  /**
   * IPAM's addresses for an endpoint that has no record yet. Addresses already held by an attachment without a
   * record were left by an ADD killed before it was done: that endpoint is undone as a DEL would, and the
   * addresses are asked for again.
   */
  private requestAddressUnrecorded(net: NetworkRecord): Result | undefined {
    try {
      return this.ipam?.requestAddress(this.attachment);
    } catch (err) {
      if (!(err instanceof AddressesHeld)) throw err;
      this.log.warn(`${this.att.containerId}/${this.att.ifname}: undoing what a killed ADD left on network ${net.name}`);
      this.teardown(this.unrecordedEndpoint(), net, false);
      return this.ipam?.requestAddress(this.attachment);
    }
  }

  /** The endpoint as a driver that records nothing before join knows it: its network and attachment (no netns: teardown takes the request's). */
  private unrecordedEndpoint(containerId = this.att.containerId, ifname = this.att.ifname): EndpointRecord {
    return { network: this.netSpec.name, containerId, ifname, netns: '', state: 'creating', driver: this.driver.name, interfaces: [], ips: [], routes: [], driverState: {}, created: '' };
  }

  /** Reverse order of add, each step best effort: the original error is what the caller sees. */
  private undo(ep: EndpointRecord, net: NetworkRecord, sandbox: Sandbox, createdNetwork: boolean): void {
    const steps: Array<[string, () => void]> = [
      ['leave', () => this.driver.leave(this.ctx, net, ep, sandbox)],
      ['release addresses', () => this.ipam?.releaseAddress({ containerID: ep.containerId, ifname: ep.ifname }, plainAddresses(ep.ips))],
      ['remove endpoint record', () => removeFile(this.endpointFile(ep.containerId, ep.ifname))],
      ['discovery', () => this.leftDiscovery(net)],
      ['remove the network this ADD created', () => createdNetwork && this.removeNetworkIfUnused(net)],
      ['wait for links to go', () => settleLinkDeletions()],
    ];
    for (const [what, step] of steps) {
      try {
        step();
      } catch (err) {
        this.log.error(`undo of a failed ADD: ${what}: ${(err as Error).message}`);
      }
    }
  }

  /** DEL: leave, release, forget. A missing namespace, endpoint or network is success. */
  del(): void {
    const rec = readJson<EndpointRecord>(this.endpointFile());
    if (rec) this.driver.beginLeave?.(this.ctx, rec);
    sweepTemps(endpointDir(this.ctx.dataDir, this.netSpec.name));
    const net = readJson<NetworkRecord>(networkPath(this.ctx.dataDir, this.netSpec.name));
    if (rec) {
      this.teardown(rec, net ?? undefined);
    } else if (net && this.driver.recordBeforeJoin) {
      // Nothing was added, or an ADD was killed before it recorded its endpoint: the driver looks by name.
      this.teardown(this.unrecordedEndpoint(), net, false);
    } else {
      this.ipam?.releaseAddress(this.attachment);
    }
  }

  /** `joined`: the endpoint got as far as service discovery (it had a record). */
  private teardown(ep: EndpointRecord, net: NetworkRecord | undefined, joined = true): void {
    const netns = ep.netns || this.att.netns;
    lap('store');
    this.driver.leave(this.ctx, net, ep, Sandbox.ifPresent(ep.containerId, netns));
    this.ipam?.releaseAddress({ containerID: ep.containerId, ifname: ep.ifname }, plainAddresses(ep.ips));
    lap('ipam');
    removeFile(this.endpointFile(ep.containerId, ep.ifname));
    lap('store');
    if (net && joined) this.leftDiscovery(net);
    // The driver's links are unlisted before DEL answers: a new ADD may take their names at once.
    settleLinkDeletions();
    lap('host-kernel');
  }

  private leftDiscovery(net: NetworkRecord): void {
    const discovery: Discovery | undefined = discoveryOf(net.options);
    if (discovery) discoveryHooks.left(discovery, this.ctx.dataDir, net, this.ipam);
  }

  check(): void {
    const env = this.att;
    const conf = this.netSpec;
    const ep = readJson<EndpointRecord>(this.endpointFile());
    if (!ep || ep.state !== 'ready') {
      throw new CniError(ErrorCode.StateMismatch, `container ${env.containerId} has no endpoint ${env.ifname} on network ${conf.name}`, 'ADD it again');
    }
    const net = readJson<NetworkRecord>(networkPath(this.ctx.dataDir, conf.name));
    if (!net) throw new CniError(ErrorCode.StateMismatch, `network ${conf.name} is missing from the store ${this.ctx.dataDir}`);
    if (this.req.previousIps) {
      const want = [...this.req.previousIps].sort();
      const have = ep.ips.map((ip) => ip.address).sort();
      const missing = want.filter((a) => !have.includes(a));
      if (missing.length) throw new CniError(ErrorCode.StateMismatch, `prevResult lists ${missing.join(', ')}, which endpoint ${env.ifname} of ${env.containerId} does not hold`);
    }
    const drift = this.driver.networkDrift(this.ctx, net);
    if (drift.length) throw new CniError(ErrorCode.StateMismatch, `network ${net.name} has drifted: ${drift.join('; ')}`, 'the next ADD on this network repairs it');
    this.driver.check(this.ctx, net, ep, Sandbox.require(env.containerId, env.netns));
    this.ipam?.check(this.attachment, plainAddresses(ep.ips));
  }

  /** GC: every endpoint of the network that no valid attachment names is torn down as DEL would (no list: all). */
  gc(): void {
    const valid = this.req.validAttachments ?? [];
    const keyOf = (a: Attachment) => `${a.containerID}:${a.ifname}`;
    const keep = new Set(valid.map(keyOf));
    const net = readJson<NetworkRecord>(networkPath(this.ctx.dataDir, this.netSpec.name));
    const dir = endpointDir(this.ctx.dataDir, this.netSpec.name);
    sweepTemps(dir);
    const recorded = new Set<string>();
    for (const name of listDir(dir)) {
      const key = name.replace(/\.json$/, '');
      recorded.add(key);
      if (keep.has(key)) continue;
      const ep = readJson<EndpointRecord>(`${dir}/${name}`);
      if (!ep) continue;
      this.log.debug(`GC: removing endpoint ${ep.containerId}:${ep.ifname}`);
      this.teardown(ep, net);
    }
    // The network's VIPs hold addresses without an endpoint: they stay.
    const held = net && discoveryOf(net.options)?.vip ? [...valid, ...discoveryHooks.vipAttachments(this.ctx.dataDir, net.name)] : valid;
    // An ADD killed before it recorded its endpoint left addresses and maybe links: found by the attachment.
    if (net && this.driver.recordBeforeJoin) {
      const kept = new Set(held.map(keyOf));
      for (const att of this.ipam?.attachments?.() ?? []) {
        const key = keyOf(att);
        if (kept.has(key) || recorded.has(key)) continue;
        this.log.debug(`GC: removing unrecorded endpoint ${key}`);
        this.teardown(this.unrecordedEndpoint(att.containerID, att.ifname), net, false);
      }
    }
    this.ipam?.gc(held);
  }

  status(): void {
    const net = readJson<NetworkRecord>(networkPath(this.ctx.dataDir, this.netSpec.name));
    this.driver.status(this.ctx, net);
    this.ipam?.status();
  }
}

function pickDns(fromConf: Dns | undefined, fromIpam: Dns | undefined): Dns | undefined {
  if (fromConf && Object.keys(fromConf).length) return fromConf;
  return fromIpam && Object.keys(fromIpam).length ? fromIpam : undefined;
}

export function toResult(ep: EndpointRecord): Result {
  const result: Result = { cniVersion: '1.1.0', interfaces: ep.interfaces, ips: ep.ips };
  if (ep.routes.length) result.routes = ep.routes;
  if (ep.dns) result.dns = ep.dns;
  return result;
}
