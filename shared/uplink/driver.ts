import { CniError, ErrorCode, invalidConfig, step } from '../cni/errors.ts';
import type { Json } from '../cni/fields.ts';
import { lap } from '../cni/timing.ts';
import type { Driver, DriverContext, JoinInfo } from '../cnm/driver.ts';
import { listNetworks } from '../cnm/inventory.ts';
import { podBatch, randomMac, requestedMac } from '../cnm/pod-plan.ts';
import type { EndpointRecord, NetworkRecord } from '../cnm/records.ts';
import { addrs, ipBatch, ipJson, routes, type IpLink } from '../kernel/iproute.ts';
import { linkExists, linkUp } from '../kernel/links.ts';
import { CommandError, run } from '../kernel/spawn.ts';
import { familyOf } from '../ipam/ip.ts';
import { parseUplinkOptions, type UplinkKind, type UplinkOptions } from './options.ts';

/** What the network keeps: the master it resolved, and whether cnm-cni made it (a VLAN sub-interface). */
interface UplinkState {
  master: string;
  createdParent: boolean;
}

interface UplinkEndpointState {
  /** macvlan: the MAC the pod link gets (ipvlan links share the master's). */
  mac?: string;
}

interface DetailedLink extends IpLink {
  linkinfo?: { info_kind?: string; info_data?: { mode?: string } };
}

const optionsOf = (net: NetworkRecord) => net.options as unknown as UplinkOptions;
const stateOf = (net: NetworkRecord) => net.state as unknown as UplinkState;

/** The interface of the node's default route: the reference plugins' default master. */
function defaultRouteLink(): string {
  for (const family of [4, 6] as const) {
    const dev = routes(family).find((r) => r.dst === 'default')?.dev;
    if (dev) return dev;
  }
  throw invalidConfig('no "master" given and the node has no default route to take it from', 'name the parent interface in "master"');
}

/** The link in the pod that belongs to this endpoint, if it is still there and of our kind. */
function podLink(kind: UplinkKind, ifname: string, netns: string): DetailedLink | undefined {
  const links = ipJson<DetailedLink[]>(['-d', 'link', 'show'], netns);
  return links.find((l) => l.ifname === ifname && l.linkinfo?.info_kind === kind);
}

/**
 * CNM's macvlan and ipvlan drivers: the pod gets a child link of a node interface (the master), with its own
 * MAC (macvlan) or the master's (ipvlan). A master named `base.vid` that does not exist is made as an 802.1q
 * sub-interface with the network and removed with it.
 */
export function uplinkDriver(kind: UplinkKind): Driver {
  const l3 = (o: UplinkOptions) => kind === 'ipvlan' && o.mode !== 'l2';

  return {
    name: kind,
    usesIpam: true,

    validate(ctx) {
      const o = parseUplinkOptions(kind, ctx.network.options);
      if (kind === 'macvlan') requestedMac(ctx.attachment);
      else if (ctx.attachment.runtime.mac !== undefined) throw invalidConfig('ipvlan links share the master\'s MAC: runtimeConfig.mac cannot be honoured');
      return o as unknown as Json;
    },

    createNetwork(_ctx, net) {
      const o = optionsOf(net);
      if (o.linkInContainer) return { master: o.master ?? defaultRouteLink(), createdParent: false } satisfies UplinkState as unknown as Json;
      const master = o.master ?? defaultRouteLink();
      if (master === 'lo') throw invalidConfig(`master ${master} is the loopback: a ${kind} needs a real link`);
      if (linkExists(master)) return { master, createdParent: false } satisfies UplinkState as unknown as Json;
      if (!o.vlan) throw invalidConfig(`master ${master} of network '${net.name}' does not exist on this node`, 'name an existing interface in "master"');
      if (!linkExists(o.vlan.base)) throw invalidConfig(`master ${master} does not exist, nor ${o.vlan.base}, the link its VLAN ${o.vlan.id} would sit on`);
      try {
        ipBatch([`link add link ${o.vlan.base} name ${master} type vlan id ${o.vlan.id}`, `link set dev ${master} up`]);
      } catch (err) {
        throw new CniError(ErrorCode.InvalidConfig, `cannot make VLAN ${o.vlan.id} on ${o.vlan.base} for master ${master}: ${(err as Error).message}`, 'does the kernel have 8021q?');
      }
      return { master, createdParent: true } satisfies UplinkState as unknown as Json;
    },

    networkDrift(_ctx, net) {
      const o = optionsOf(net);
      const master = stateOf(net).master;
      if (o.linkInContainer) return [];
      if (!linkExists(master)) return [`master ${master} is missing${stateOf(net).createdParent ? ' (the VLAN parent this network made)' : ''}`];
      return stateOf(net).createdParent && !linkUp(master) ? [`master ${master} is down`] : [];
    },

    /** A VLAN parent the network made is made again (after a reboot, say); an interface of the node's is not ours to make. */
    ensureNetwork(ctx, net) {
      const drift = this.networkDrift(ctx, net);
      const o = optionsOf(net);
      const master = stateOf(net).master;
      if (drift.length === 0 || !stateOf(net).createdParent || !o.vlan) return [];
      if (!linkExists(o.vlan.base)) throw new CniError(ErrorCode.KernelFailure, `network ${net.name}: VLAN parent ${master} is missing and cannot be recreated: its link ${o.vlan.base} is gone too`);
      step(`network ${net.name}: VLAN parent ${master} is missing and could not be recreated`, () => {
        // Two ADDs may race to make it: the loser finds it there.
        if (!linkExists(master)) {
          const r = run('ip', ['link', 'add', 'link', o.vlan!.base, 'name', master, 'type', 'vlan', 'id', String(o.vlan!.id)]);
          if (r.status !== 0 && !linkExists(master)) throw new CommandError(['ip', 'link', 'add', 'link', o.vlan!.base, 'name', master, 'type', 'vlan', 'id', String(o.vlan!.id)], r);
        }
        ipBatch([`link set dev ${master} up`]);
      }, ErrorCode.KernelFailure);
      return drift;
    },

    deleteNetwork(ctx: DriverContext, net) {
      const s = stateOf(net);
      if (!s.createdParent || !linkExists(s.master)) return;
      const shared = listNetworks(ctx.dataDir).some((n) => n.name !== net.name && (n.state as Partial<UplinkState>).master === s.master);
      if (!shared) ipBatch([`link del ${s.master}`]);
    },

    prepare(ctx) {
      const state: UplinkEndpointState = kind === 'macvlan' ? { mac: requestedMac(ctx.attachment) ?? randomMac() } : {};
      return state as unknown as Json;
    },

    join(_ctx, net, ep, sandbox, addressing): JoinInfo {
      const o = optionsOf(net);
      const master = stateOf(net).master;
      const s = ep.driverState as UplinkEndpointState;
      const mode = kind === 'macvlan' ? `type macvlan mode ${o.mode}` : `type ipvlan mode ${o.mode}`;
      const attrs = `${s.mac ? ` address ${s.mac}` : ''}${o.mtu ? ` mtu ${o.mtu}` : ''}`;
      if (!o.linkInContainer) {
        if (!linkExists(master)) throw invalidConfig(`master ${master} of network '${net.name}' is gone from this node`);
        ipBatch([`link add link ${master} name ${ep.ifname}${attrs} netns ${sandbox.netns} ${mode}`]);
        lap('host-kernel');
      }
      const gateways: { 4?: string; 6?: string } = {};
      // l3 ipvlan has no neighbours to resolve: routes go out of the device, not via a gateway.
      if (!l3(o)) for (const ip of addressing.ips) if (ip.gateway) gateways[familyOf(ip.address)] ??= ip.gateway;
      const routes = l3(o) && addressing.routes.length === 0 ? [{ dst: '0.0.0.0/0' }, ...(addressing.ips.some((i) => familyOf(i.address) === 6) ? [{ dst: '::/0' }] : [])] : addressing.routes;
      const lines = [
        ...(o.linkInContainer ? [`link add link ${master} name ${ep.ifname}${attrs} ${mode}`] : []),
        ...podBatch({ ifname: ep.ifname, ips: addressing.ips, routes: l3(o) ? routes.map((r) => ({ dst: r.dst })) : routes, enabledad: false, gateways, defaultRoute: false }),
        `link show dev ${ep.ifname}`,
      ];
      const [link] = JSON.parse(ipBatch(lines, sandbox.netns)) as IpLink[];
      lap('pod-kernel');
      const mac = link?.address ?? s.mac;
      return {
        interfaces: [{ name: ep.ifname, ...(mac ? { mac } : {}), sandbox: sandbox.netns }],
        addressedInterface: 0,
        routes: l3(o) && addressing.routes.length === 0 ? routes : [],
        ...(mac ? { mac } : {}),
      };
    },

    leave(_ctx, _net, ep, sandbox) {
      if (!sandbox) return; // the link went with the namespace
      const link = podLink(kind, ep.ifname, sandbox.netns);
      const s = ep.driverState as UplinkEndpointState;
      // A macvlan of someone else's with our name stays: ours carries the MAC prepare chose.
      if (link && (kind !== 'macvlan' || !s.mac || link.address === s.mac)) ipBatch([`link del ${ep.ifname}`], sandbox.netns);
    },

    check(_ctx, net, ep: EndpointRecord, sandbox) {
      const fail = (msg: string): never => {
        throw new CniError(ErrorCode.StateMismatch, msg);
      };
      const o = optionsOf(net);
      const link = podLink(kind, ep.ifname, sandbox.netns) ?? fail(`${kind} ${ep.ifname} is missing in ${sandbox.netns}`);
      if (link.linkinfo?.info_data?.mode !== o.mode) fail(`${ep.ifname} is in ${kind} mode ${link.linkinfo?.info_data?.mode}, not ${o.mode}`);
      if (!link.flags.includes('UP')) fail(`${ep.ifname} in ${sandbox.netns} is down`);
      const have = (addrs(sandbox.netns, ep.ifname)[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
      for (const ip of ep.ips) if (!have.includes(ip.address)) fail(`${ep.ifname} in ${sandbox.netns} lacks ${ip.address}`);
    },

    status(_ctx, net) {
      if (!net || optionsOf(net).linkInContainer) return;
      const master = stateOf(net).master;
      if (!linkExists(master)) throw new CniError(ErrorCode.NotAvailable, `master ${master} of network '${net.name}' is gone from this node`);
    },
  };
}
