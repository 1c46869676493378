// The overlay driver's CNM side on a node: the network's bridge and nft table, and pods plugged in by the bridge
// driver's endpoint code. The VXLAN device and the peer entries are the agent's (agent/).
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Json } from '../cni/fields.ts';
import type { Driver, DriverContext } from '../cnm/driver.ts';
import type { NetworkRecord } from '../cnm/records.ts';
import { ipBatch } from '../kernel/iproute.ts';
import { isBridge, linkExists } from '../kernel/links.ts';
import { nftApply, nftTry } from '../kernel/nft.ts';
import { bridgeDriver } from '../bridge/driver.ts';
import type { BridgeOptions } from '../bridge/options.ts';
import { deleteNetworkRuleset } from '../bridge/plan.ts';
import { bridgeNetworkDrift, createBridgeBatch, ensureBridgeNetwork, type BridgeKind } from '../bridge/network.ts';
import { readLocalNetwork } from './local.ts';
import { overlayOptions, parseOverlayConf, type OverlayOptions } from './options.ts';
import { overlayNetworkRuleset } from './plan.ts';

const optionsOf = (net: NetworkRecord) => net.options as unknown as OverlayOptions;

/** An overlay network on a node is a bridge network with its own ruleset and no part in the bridges' isolation table. */
const OVERLAY_KIND: BridgeKind = {
  ruleset: (net) => overlayNetworkRuleset(net.name, optionsOf(net), net.subnets[0]!.subnet),
  isolated: false,
};

/** The agent's part of the network on this node: it recreates the device itself (it reconciles every few seconds). */
function vxlanDrift(ctx: DriverContext, net: NetworkRecord): string[] {
  const local = readLocalNetwork(ctx.dataDir, net.name);
  if (!local) return [`this node holds no subnet of network ${net.name} (is cnm agent running?)`];
  return linkExists(local.vxlan) ? [] : [`VXLAN device ${local.vxlan} is missing (the agent recreates it)`];
}

function localOrFail(dataDir: string, net: string) {
  const local = readLocalNetwork(dataDir, net);
  if (!local) throw new CniError(ErrorCode.TryAgainLater, `this node holds no subnet of overlay network ${net}`, 'is `cnm agent` running on this node, with the same data dir?');
  return local;
}

export const overlayDriver: Driver = {
  name: 'overlay',
  usesIpam: true,

  validate(ctx) {
    const conf = parseOverlayConf(ctx.network.name, ctx.network.options);
    const local = localOrFail(ctx.dataDir, ctx.network.name);
    // The bridge driver's validation parses serviceDiscovery too: overlay pods get names the same way.
    const { serviceDiscovery } = bridgeDriver.validate(ctx) as unknown as BridgeOptions;
    if (serviceDiscovery?.vip) throw new CniError(ErrorCode.InvalidConfig, `"vip": true is not served on cnm-overlay networks (network ${ctx.network.name}): a VIP would spread only over this node's pods`, 'drop "vip"; the alias name still answers with the addresses of its pods on every node');
    return { ...overlayOptions(conf, conf.mtu ?? local.mtu), ...(serviceDiscovery ? { serviceDiscovery } : {}) } as unknown as Json;
  },

  createNetwork(ctx, net) {
    const o = optionsOf(net);
    const local = localOrFail(ctx.dataDir, net.name);
    const createdBridge = !linkExists(o.bridge);
    if (!createdBridge && !isBridge(o.bridge)) throw new CniError(ErrorCode.InvalidConfig, `${o.bridge}, the bridge of overlay network ${net.name}, exists and is not a bridge`, 'remove that link');
    try {
      if (createdBridge) ipBatch(createBridgeBatch(o));
      nftApply(OVERLAY_KIND.ruleset({ ...net, subnets: [{ subnet: local.subnet }] }, o));
    } catch (err) {
      nftTry(deleteNetworkRuleset(net.name));
      if (createdBridge && linkExists(o.bridge)) ipBatch([`link del ${o.bridge}`]);
      throw err;
    }
    return { createdBridge, subnet: local.subnet };
  },

  deleteNetwork(_ctx, net) {
    nftApply(deleteNetworkRuleset(net.name));
    const o = optionsOf(net);
    if (net.state.createdBridge && linkExists(o.bridge)) ipBatch([`link del ${o.bridge}`]);
  },

  networkDrift: (ctx, net) => [...bridgeNetworkDrift(ctx, net, OVERLAY_KIND), ...vxlanDrift(ctx, net)],
  ensureNetwork: (ctx, net) => ensureBridgeNetwork(ctx, net, OVERLAY_KIND),

  prepare: (ctx, net, ep) => bridgeDriver.prepare(ctx, net, ep),
  join: (ctx, net, ep, sandbox, addressing) => bridgeDriver.join(ctx, net, ep, sandbox, addressing),
  beginLeave: (ctx, ep) => bridgeDriver.beginLeave!(ctx, ep),
  leave: (ctx, net, ep, sandbox) => bridgeDriver.leave(ctx, net, ep, sandbox),

  check(ctx, net, ep, sandbox) {
    const local = readLocalNetwork(ctx.dataDir, net.name);
    if (!local) throw new CniError(ErrorCode.StateMismatch, `this node no longer holds a subnet of overlay network ${net.name}`);
    if (!linkExists(local.vxlan)) throw new CniError(ErrorCode.StateMismatch, `VXLAN device ${local.vxlan} of network ${net.name} is gone`, 'is `cnm agent` running on this node?');
    if (!linkExists(optionsOf(net).bridge)) throw new CniError(ErrorCode.StateMismatch, `bridge ${optionsOf(net).bridge} of network ${net.name} is gone`);
    bridgeDriver.check(ctx, net, ep, sandbox);
  },

  status() {},
};
