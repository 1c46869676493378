// cnm-remote: the CNM remote driver. A Docker network plugin, spoken to over libnetwork's remote protocol,
// makes the network and each endpoint's link; this driver then does what libnetwork's sandbox does: moves the
// link the plugin names into the pod, renames it, and gives it its MAC, addresses, gateway and static routes.
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Json } from '../cni/fields.ts';
import type { IpConfig, Route } from '../cni/result.ts';
import type { Driver, JoinInfo } from '../cnm/driver.ts';
import { randomHex } from '../cnm/names.ts';
import { podBatch, requestedMac } from '../cnm/pod-plan.ts';
import type { EndpointRecord, NetworkRecord } from '../cnm/records.ts';
import { familyOf } from '../ipam/ip.ts';
import { addrs, ipBatch, ipJson, type IpLink } from '../kernel/iproute.ts';
import { bestEffort } from './client.ts';
import { clientFor, parseRemoteNetworkOptions, type RemoteNetworkOptions } from './options.ts';
import { ENABLE_IPV6, GENERIC_OPTIONS, INTERNAL, type EndpointInterface, type IpamData, type JoinResponse } from './protocol.ts';

interface RemoteNetworkState {
  networkId: string;
}

interface RemoteEndpointState {
  endpointId: string;
  /** The plugin's name for the link while it is on the node (Join's SrcName). */
  srcName?: string;
  mac?: string;
  /** ProgramExternalConnectivity was called (the endpoint carries the gateway). */
  external?: boolean;
}

const optionsOf = (net: NetworkRecord) => net.options as unknown as RemoteNetworkOptions;
const networkIdOf = (net: NetworkRecord) => (net.state as unknown as RemoteNetworkState).networkId;
const stateOf = (ep: EndpointRecord) => ep.driverState as unknown as RemoteEndpointState;
const hexId = () => randomHex(32);

/** libnetwork's pool data: CIDR pool, gateway in CIDR form. */
function ipamData(net: NetworkRecord, family: 4 | 6): IpamData[] {
  return net.subnets
    .filter((s) => familyOf(s.subnet) === family)
    .map((s) => ({ AddressSpace: 'LocalDefault', Pool: s.subnet, ...(s.gateway ? { Gateway: `${s.gateway}/${s.subnet.split('/')[1]}` } : {}) }));
}

/** The interface CreateEndpoint sends, and the plugin's answer merged in: it may fill only what we left empty. */
function mergeInterface(sent: EndpointInterface, got: EndpointInterface | null | undefined, plugin: string): EndpointInterface {
  const merged = { ...sent };
  for (const key of ['Address', 'AddressIPv6', 'MacAddress'] as const) {
    const value = got?.[key];
    if (!value) continue;
    if (sent[key] && sent[key]!.toLowerCase() !== value.toLowerCase()) {
      throw new CniError(ErrorCode.TryAgainLater, `Docker plugin ${plugin}: NetworkDriver.CreateEndpoint changed the ${key} it was given (${sent[key]} to ${value})`, 'libnetwork refuses this too: the plugin may only fill fields left empty');
    }
    merged[key] = value;
  }
  return merged;
}

/** The routes Join asks for: the default route via the gateway, then StaticRoutes (type 0 via NextHop, 1 connected). */
function joinRoutes(res: JoinResponse): Route[] {
  const routes: Route[] = [];
  if (res.Gateway) routes.push({ dst: '0.0.0.0/0', gw: res.Gateway });
  if (res.GatewayIPv6) routes.push({ dst: '::/0', gw: res.GatewayIPv6 });
  for (const r of res.StaticRoutes ?? []) routes.push(r.RouteType === 0 && r.NextHop ? { dst: r.Destination, gw: r.NextHop } : { dst: r.Destination });
  return routes;
}

export const remoteDriver: Driver = {
  name: 'remote',
  usesIpam: true,

  validate(ctx) {
    requestedMac(ctx.attachment);
    return parseRemoteNetworkOptions(ctx.network.options) as unknown as Json;
  },

  createNetwork(_ctx, net) {
    const o = optionsOf(net);
    const c = clientFor(o);
    c.activate('NetworkDriver');
    c.call('NetworkDriver.GetCapabilities', {});
    const networkId = hexId();
    const options: Record<string, unknown> = { [ENABLE_IPV6]: o.ipv6, [GENERIC_OPTIONS]: o.options };
    if (o.internal) options[INTERNAL] = true;
    c.call('NetworkDriver.CreateNetwork', { NetworkID: networkId, Options: options, IPv4Data: ipamData(net, 4), IPv6Data: ipamData(net, 6) });
    return { networkId } satisfies RemoteNetworkState as unknown as Json;
  },

  // The network's objects are the plugin's: nothing here to check or repair.
  networkDrift: () => [],
  ensureNetwork: () => [],

  deleteNetwork(ctx, net) {
    bestEffort(ctx.log, `network ${net.name} is forgotten here but the plugin did not delete it`, () => clientFor(optionsOf(net)).call('NetworkDriver.DeleteNetwork', { NetworkID: networkIdOf(net) }));
  },

  prepare(ctx) {
    const mac = requestedMac(ctx.attachment);
    return { endpointId: hexId(), ...(mac ? { mac } : {}) } satisfies RemoteEndpointState as unknown as Json;
  },

  join(ctx, net, ep, sandbox, addressing): JoinInfo {
    const o = optionsOf(net);
    const c = clientFor(o);
    const s = stateOf(ep);
    const ids = { NetworkID: networkIdOf(net), EndpointID: s.endpointId };
    const sent: EndpointInterface = {};
    for (const ip of addressing.ips) sent[familyOf(ip.address) === 4 ? 'Address' : 'AddressIPv6'] ??= ip.address;
    if (s.mac) sent.MacAddress = s.mac;
    const created = c.call('NetworkDriver.CreateEndpoint', { ...ids, Interface: sent, Options: {} });
    const iface = mergeInterface(sent, created.Interface, o.plugin);
    const joined = c.call('NetworkDriver.Join', { ...ids, SandboxKey: sandbox.netns, Options: {} });
    const srcName = joined.InterfaceName?.SrcName;
    if (!srcName) throw new CniError(ErrorCode.TryAgainLater, `Docker plugin ${o.plugin}: NetworkDriver.Join named no interface (InterfaceName.SrcName) for the pod`);
    ep.driverState = { ...ep.driverState, srcName, ...(iface.MacAddress ? { mac: iface.MacAddress } : {}) };

    // As libnetwork's sandbox: into the pod under CNI_IFNAME, then MAC, addresses, up, routes.
    ipBatch([`link set dev ${srcName} netns ${sandbox.netns} name ${ep.ifname}`]);
    const ips: IpConfig[] = addressing.ips.map((ip) => ({ ...ip }));
    const extra = [...iface.Address && !ips.some((i) => i.address === iface.Address) ? [iface.Address] : [], ...iface.AddressIPv6 && !ips.some((i) => i.address === iface.AddressIPv6) ? [iface.AddressIPv6] : []];
    for (const address of extra) ips.push({ address });
    const routes = [...joinRoutes(joined), ...addressing.routes.filter((r) => !joinRoutes(joined).some((x) => x.dst === r.dst))];
    const lines = [
      ...(iface.MacAddress ? [`link set dev ${ep.ifname} address ${iface.MacAddress}`] : []),
      ...podBatch({ ifname: ep.ifname, ips, routes, enabledad: false, gateways: {}, defaultRoute: false }),
      `link show dev ${ep.ifname}`,
    ];
    const [link] = JSON.parse(ipBatch(lines, sandbox.netns)) as IpLink[];
    const mac = link?.address ?? iface.MacAddress;
    if (joined.Gateway || joined.GatewayIPv6) {
      c.call('NetworkDriver.ProgramExternalConnectivity', { ...ids, Options: {} });
      ep.driverState = { ...ep.driverState, external: true };
    }
    return {
      interfaces: [{ name: ep.ifname, ...(mac ? { mac } : {}), sandbox: sandbox.netns }],
      addressedInterface: 0,
      ips: extra.map((address) => ({ address, interface: 0 })),
      routes: joinRoutes(joined),
      ...(mac ? { mac } : {}),
      driverState: ep.driverState,
    };
  },

  leave(ctx, net, ep, sandbox) {
    const s = stateOf(ep);
    if (sandbox && s.srcName) {
      // Back out under the plugin's name, as libnetwork does, so the plugin finds the link it made.
      const link = ipJson<IpLink[]>(['link', 'show'], sandbox.netns).find((l) => l.ifname === ep.ifname && (!s.mac || l.address === s.mac));
      if (link) {
        try {
          ipBatch([`link set dev ${ep.ifname} netns /proc/${process.pid}/ns/net name ${s.srcName}`], sandbox.netns);
        } catch (err) {
          ctx.log.warn(`moving ${ep.ifname} out of ${sandbox.netns} as ${s.srcName}: ${(err as Error).message}`);
        }
      }
    }
    if (!net) return;
    const c = clientFor(optionsOf(net));
    const ids = { NetworkID: networkIdOf(net), EndpointID: s.endpointId };
    const what = `endpoint ${ep.containerId}/${ep.ifname} is forgotten here but the plugin was not told`;
    if (s.external) bestEffort(ctx.log, what, () => c.call('NetworkDriver.RevokeExternalConnectivity', ids));
    if (s.srcName) bestEffort(ctx.log, what, () => c.call('NetworkDriver.Leave', ids));
    bestEffort(ctx.log, what, () => c.call('NetworkDriver.DeleteEndpoint', ids));
  },

  check(_ctx, _net, ep, sandbox) {
    const link = addrs(sandbox.netns, ep.ifname)[0];
    if (!link) throw new CniError(ErrorCode.StateMismatch, `${ep.ifname} is missing in ${sandbox.netns}`);
    const have = (link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
    for (const ip of ep.ips) if (!have.includes(ip.address)) throw new CniError(ErrorCode.StateMismatch, `${ep.ifname} in ${sandbox.netns} lacks ${ip.address}`);
  },

  status(_ctx, net) {
    if (!net) return;
    try {
      clientFor(optionsOf(net)).activate('NetworkDriver');
    } catch (err) {
      if (!(err instanceof CniError)) throw err;
      throw new CniError(ErrorCode.NotAvailable, err.msg, err.details);
    }
  },
};

