import { CniError, ErrorCode, inStep, step } from '../cni/errors.ts';
import type { Json } from '../cni/fields.ts';
import type { IpConfig, Route } from '../cni/result.ts';
import type { Driver, DriverContext, JoinInfo } from '../cnm/driver.ts';
import { listNetworks } from '../cnm/inventory.ts';
import type { EndpointRecord, NetworkRecord } from '../cnm/records.ts';
import { withLock } from '../cnm/store.ts';
import { addrs, ipBatch, ipJson, type IpRoute } from '../kernel/iproute.ts';
import { bridgePortFlag, deletionStarted, linkExists, startLinkDeletion, linkMac, linkMaster, linkMtu, readSysctl } from '../kernel/links.ts';
import { nftApply, nftList, nftTry } from '../kernel/nft.ts';
import { runOk } from '../kernel/spawn.ts';
import { lap } from '../cni/timing.ts';
import { setSysctls } from '../kernel/sysctl.ts';
import { familyOf, formatIp, parseCidr } from '../ipam/ip.ts';
import { parseBridgeOptions, parsePortMappings, type BridgeOptions } from './options.ts';
import {
  addElementsScript,
  deleteNetworkRuleset,
  endpointElements,
  hostVethName,
  isolationTable,
  tableName,
  networkRuleset,
  hostPortKeys,
  removeElementsScript,
  subnetOf,
  vlanBatch,
  type HostSide,
} from './plan.ts';
import { checkHostPorts, checkNewNetwork } from './preflight.ts';
import { addressesOf, bridgeNetworkDrift, bridgesLock, createBridgeBatch, endpointStateOf, ensureBridgeNetwork, optionsOf, subnetsOf, syncIsolation, type BridgeEndpointState } from './network.ts';
import { applyEndpoint } from './apply.ts';
import { podRoutes, randomMac, requestedMac } from '../cnm/pod-plan.ts';
import { parseBandwidth } from '../bandwidth/options.ts';
import { ifbName } from '../bandwidth/plan.ts';
import { applyBandwidth, checkBandwidth, removeBandwidth } from '../bandwidth/apply.ts';

const stateOf = endpointStateOf;

/** The endpoint's host-side veth: as its record names it, else as prepare() names it. */
function hostVethOf(ep: EndpointRecord): string {
  return stateOf(ep).hostVeth ?? hostVethName(ep.network, ep.containerId, ep.ifname);
}

/** The gateway of each family: what IPAM says, else the subnet's first address when the bridge must be one. */
function gatewaysOf(ips: IpConfig[], o: BridgeOptions): { gateways: { 4?: string; 6?: string }; bridgeAddrs: string[] } {
  const gateways: { 4?: string; 6?: string } = {};
  const bridgeAddrs: string[] = [];
  for (const ip of ips) {
    const family = familyOf(ip.address);
    if (gateways[family]) continue;
    let gw = ip.gateway;
    const cidr = parseCidr(ip.address)!;
    if (!gw && o.isGateway) gw = formatIp(cidr.family, cidr.network + 1n);
    if (!gw) continue;
    gateways[family] = gw;
    if (o.isGateway) bridgeAddrs.push(`${gw}/${cidr.prefix}`);
  }
  return { gateways, bridgeAddrs };
}

/**
 * Addresses on the bridge, of the gateways' families, that are not the gateways: refused, or with
 * forceAddress returned for removal.
 */
function foreignBridgeAddrs(o: BridgeOptions, wanted: string[]): string[] {
  if (!linkExists(o.bridge) || wanted.length === 0) return [];
  const have = (addrs(undefined, o.bridge)[0]?.addr_info ?? []).filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`);
  const families = new Set(wanted.map(familyOf));
  const foreign = have.filter((a) => families.has(familyOf(a)) && !wanted.includes(a));
  if (foreign.length && !o.forceAddress) {
    throw new CniError(ErrorCode.InvalidConfig, `bridge ${o.bridge} already has ${foreign.join(', ')}, not the gateway ${wanted.join(', ')}`, 'set forceAddress to replace it, or use another bridge');
  }
  return foreign;
}

/** "gw/prefix" of each pool subnet that names a gateway. */
function poolGatewayAddrs(net: NetworkRecord): string[] {
  return net.subnets.filter((x) => x.gateway).map((x) => `${x.gateway}/${x.subnet.split('/')[1]}`);
}

export const bridgeDriver: Driver = {
  name: 'bridge',
  usesIpam: true,

  validate(ctx) {
    const o = parseBridgeOptions(ctx.network.options);
    parsePortMappings(ctx.attachment.runtime);
    parseBandwidth(ctx.network.options, ctx.attachment.runtime);
    requestedMac(ctx.attachment);
    return o as unknown as Json;
  },

  createNetwork(ctx, net) {
    const o = optionsOf(net);
    return withLock(bridgesLock(ctx), () => {
      checkNewNetwork(ctx.dataDir, net, o);
      const createdBridge = !linkExists(o.bridge);
      const foreign = createdBridge || !o.isGateway ? [] : foreignBridgeAddrs(o, poolGatewayAddrs(net));
      if (foreign.length) ipBatch(foreign.map((a) => `addr del ${a} dev ${o.bridge}`));
      try {
        if (createdBridge) {
          try {
            ipBatch(createBridgeBatch(o));
          } catch (err) {
            if (o.vlan && /not supported/i.test((err as Error).message)) {
              throw new CniError(ErrorCode.InvalidConfig, `vlan ${o.vlan} needs bridge VLAN filtering, which this node's kernel lacks`, 'remove "vlan" or use a kernel with CONFIG_BRIDGE_VLAN_FILTERING');
            }
            throw inStep(`creating bridge ${o.bridge}`, err);
          }
        }
        step(`creating nft table inet ${tableName(net.name)}`, () => nftApply(networkRuleset(net.name, o, subnetsOf(net))));
        step(`updating nft table inet ${isolationTable(ctx.dataDir)}`, () => syncIsolation(ctx, { name: net.name, bridge: o.bridge }));
      } catch (err) {
        nftTry(deleteNetworkRuleset(net.name));
        if (createdBridge && linkExists(o.bridge)) ipBatch([`link del ${o.bridge}`]);
        throw err;
      }
      return { createdBridge };
    });
  },

  networkDrift: bridgeNetworkDrift,
  ensureNetwork: ensureBridgeNetwork,

  deleteNetwork(ctx, net) {
    const o = optionsOf(net);
    withLock(bridgesLock(ctx), () => {
      nftApply(deleteNetworkRuleset(net.name));
      syncIsolation(ctx, undefined, net.name);
      const shared = listNetworks(ctx.dataDir).some((n) => n.name !== net.name && n.driver === 'bridge' && optionsOf(n).bridge === o.bridge);
      if (net.state.createdBridge && !shared && linkExists(o.bridge)) ipBatch([`link del ${o.bridge}`]);
    });
  },

  prepare(ctx, net, ep) {
    const portMappings = parsePortMappings(ctx.attachment.runtime);
    checkHostPorts(ctx.dataDir, ep.containerId, ep.ifname, portMappings);
    const state: BridgeEndpointState = {
      hostVeth: hostVethName(net.name, ep.containerId, ep.ifname),
      mac: requestedMac(ctx.attachment) ?? randomMac(),
      portMappings,
    };
    const bandwidth = parseBandwidth(ctx.network.options, ctx.attachment.runtime);
    if (bandwidth) state.bandwidth = bandwidth;
    return state as unknown as Json;
  },

  // The host veth's name follows from the attachment (hostVethOf), its pod end and tc qdiscs go with it, and
  // the ifb is found by its derived name; host ports (also read by other ADDs, to refuse a taken one),
  // MAC-spoofing elements (keyed by the random MAC) and bandwidth are recorded first.
  recordBeforeJoin(net, state) {
    const s = state as unknown as BridgeEndpointState;
    return s.portMappings.length > 0 || s.bandwidth !== undefined || optionsOf(net).macspoofchk;
  },

  join(ctx, net, ep, sandbox, addressing): JoinInfo {
    const o = optionsOf(net);
    const s = stateOf(ep) as BridgeEndpointState;
    const { gateways, bridgeAddrs } = gatewaysOf(addressing.ips, o);

    // Gateways the pool named were checked when the network was made; only one IPAM names late is checked here.
    const known: Array<string | undefined> = [];
    for (const x of net.subnets) known.push(x.gateway);
    let allKnown = true;
    for (const a of bridgeAddrs) if (!known.includes(a.split('/')[0])) allKnown = false;
    const foreign = allKnown ? [] : foreignBridgeAddrs(o, bridgeAddrs);
    if (o.isGateway) {
      const fwd: Record<string, string> = {};
      if (gateways[4] && readSysctl('net.ipv4.ip_forward') !== '1') fwd['net.ipv4.ip_forward'] = '1';
      if (gateways[6] && readSysctl('net.ipv6.conf.all.forwarding') !== '1') fwd['net.ipv6.conf.all.forwarding'] = '1';
      setSysctls(fwd);
    }
    const host: HostSide = {
      bridge: o.bridge,
      hostVeth: s.hostVeth,
      ifname: ep.ifname,
      netns: sandbox.netns,
      mac: s.mac,
      mtu: o.mtu,
      // A pod reaching its own hostPort is bridged back out of the port it came in by when br_netfilter is loaded.
      hairpin: o.hairpinMode || s.portMappings.length > 0,
      isolated: !o.icc,
      vlan: o.vlan,
      gatewayAddrs: bridgeAddrs,
    };
    const pod = { ifname: ep.ifname, ips: addressing.ips, routes: addressing.routes, enabledad: o.enabledad, gateways, defaultRoute: o.isDefaultGateway };
    const removeForeign: string[] = [];
    for (const a of foreign) removeForeign.push(`addr del ${a} dev ${o.bridge}`);
    applyEndpoint(host, pod, removeForeign);
    if (o.vlan) runOk('bridge', ['-batch', '-'], vlanBatch(s.hostVeth, o.vlan).join('\n') + '\n');
    const ifb = ifbName(net.name, ep.containerId, ep.ifname);
    if (s.bandwidth) {
      applyBandwidth(s.bandwidth, s.hostVeth, ifb, o.mtu ?? linkMtu(s.hostVeth));
      lap('bandwidth');
    }

    const script = addElementsScript(endpointElements(net.name, o, addressesOf(addressing.ips), subnetsOf(net), s.portMappings, s.hostVeth, s.mac));
    if (script) {
      const r = nftTry(script);
      if (r.status !== 0) {
        if (r.stderr.includes('File exists')) throw new CniError(ErrorCode.InvalidConfig, `a hostPort of ${JSON.stringify(s.portMappings)} is already mapped on network '${net.name}'`, 'use another hostPort');
        throw new CniError(ErrorCode.KernelFailure, `nft: ${r.stderr.trim()}`);
      }
    }
    lap('nft');
    // Default routes the plugin adds itself, unless IPAM gave one.
    const defaults: Route[] = [];
    for (const r of podRoutes(pod)) {
      if (r.dst !== '0.0.0.0/0' && r.dst !== '::/0') continue;
      let fromIpam = false;
      for (const x of addressing.routes) fromIpam ||= x.dst === r.dst;
      if (!fromIpam) defaults.push(r);
    }
    const interfaces = [
      { name: o.bridge, mac: linkMac(o.bridge) ?? '' },
      { name: s.hostVeth, mac: linkMac(s.hostVeth) ?? '' },
      { name: ep.ifname, mac: s.mac, sandbox: sandbox.netns },
    ];
    // As the reference bandwidth plugin reports it.
    if (s.bandwidth?.egressRate) interfaces.push({ name: ifb, mac: linkMac(ifb) ?? '' });
    return {
      interfaces,
      addressedInterface: 2,
      routes: defaults,
      mac: s.mac,
    };
  },

  beginLeave(_ctx, ep) {
    const hostVeth = hostVethOf(ep);
    if (linkExists(hostVeth)) startLinkDeletion(hostVeth);
  },

  leave(_ctx, net, ep, sandbox) {
    const s = stateOf(ep);
    const hostVeth = hostVethOf(ep);
    removeBandwidth(ifbName(ep.network, ep.containerId, ep.ifname));
    if (deletionStarted(hostVeth) || linkExists(hostVeth)) {
      // The controller settles the deletion once the rest of the endpoint is released (settleLinkDeletions).
      startLinkDeletion(hostVeth);
      lap('host-kernel');
    } else if (sandbox && s.mac) {
      // The host end is gone but a pod end might not be (a veth moved by hand): remove it by name and MAC.
      const r = ipJson<unknown[]>(['link', 'show'], sandbox.netns) as Array<{ ifname: string; link_type?: string; address?: string }>;
      const own = r.find((l) => l.ifname === ep.ifname && l.address === s.mac);
      if (own) ipBatch([`link del ${ep.ifname}`], sandbox.netns);
    }
    if (!net) return;
    const el = endpointElements(net.name, optionsOf(net), addressesOf(ep.ips), [], s.portMappings ?? [], hostVeth, s.mac ?? '00:00:00:00:00:00');
    if (ep.ips.length === 0 && s.portMappings?.length) {
      // An ADD killed before it recorded its addresses: its hostPorts are still ours (no other endpoint may
      // map a port a record holds), so they go by key.
      for (const key of hostPortKeys(s.portMappings)) nftTry(`delete element inet ${el.table} ${key.map} { ${key.key} }\n`);
    }
    const script = removeElementsScript(el);
    if (script && nftTry(script).status !== 0) removeElementsOneByOne(el);
    lap('nft');
  },

  check(_ctx, net, ep, sandbox) {
    const o = optionsOf(net);
    const s = stateOf(ep) as BridgeEndpointState;
    const fail = (msg: string) => {
      throw new CniError(ErrorCode.StateMismatch, msg);
    };
    if (!linkExists(s.hostVeth)) fail(`host veth ${s.hostVeth} of ${ep.containerId}/${ep.ifname} is gone`);
    if (linkMaster(s.hostVeth) !== o.bridge) fail(`host veth ${s.hostVeth} is not on bridge ${o.bridge}`);
    const hairpin = o.hairpinMode || s.portMappings.length > 0;
    if (hairpin !== bridgePortFlag(s.hostVeth, 'hairpin_mode')) fail(`hairpin mode of ${s.hostVeth} is not ${hairpin ? 'on' : 'off'}`);
    const link = addrs(sandbox.netns, ep.ifname)[0];
    if (!link) fail(`${ep.ifname} is missing in ${sandbox.netns}`);
    if (!link!.flags.includes('UP')) fail(`${ep.ifname} in ${sandbox.netns} is down`);
    const have = (link!.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
    for (const ip of ep.ips) if (!have.includes(ip.address)) fail(`${ep.ifname} in ${sandbox.netns} lacks ${ip.address}`);
    const podRoutesNow = [4, 6].flatMap((f) => ipJson<IpRoute[]>([`-${f}`, 'route', 'show', 'dev', ep.ifname], sandbox.netns));
    for (const r of ep.routes) {
      const dst = r.dst === '0.0.0.0/0' || r.dst === '::/0' ? 'default' : r.dst;
      if (!podRoutesNow.some((x) => x.dst === dst)) fail(`route ${r.dst} is missing from ${ep.ifname} in ${sandbox.netns}`);
    }
    const table = JSON.stringify(nftList(['table', 'inet', `cnm_${net.name}`]) ?? {});
    if (table === '{}') fail(`nft table inet cnm_${net.name} is gone`);
    for (const ip of ep.ips) {
      const [prefix, len] = subnetOf(ip.address).split('/');
      if (!table.includes(`"prefix":{"addr":"${prefix}","len":${len}}`)) fail(`the subnets set of table cnm_${net.name} lacks ${subnetOf(ip.address)}`);
    }
    for (const p of s.portMappings) if (!table.includes(String(p.hostPort))) fail(`hostPort ${p.hostPort}/${p.protocol} is not mapped`);
    if (s.bandwidth) checkBandwidth(s.bandwidth, s.hostVeth, ifbName(net.name, ep.containerId, ep.ifname));
  },

  status() {},
};

/** Fallback when the one-transaction removal failed: remove what is still there, element by element. */
function removeElementsOneByOne(el: ReturnType<typeof endpointElements>): void {
  for (const m of el.maps) nftTry(removeElementsScript({ ...el, maps: [m] }));
}

