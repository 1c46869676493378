import { CniError, ErrorCode, invalidConfig } from '../../shared/cni/errors.ts';
import type { Interface, IpConfig } from '../../shared/cni/result.ts';
import { NOTHING_TO_MANAGE, type Driver, type JoinInfo } from '../../shared/cnm/driver.ts';
import type { Sandbox } from '../../shared/cnm/sandbox.ts';
import { addrs, routes, type IpLink } from '../../shared/kernel/iproute.ts';
import { isNodeNetns } from '../../shared/kernel/netns.ts';

function requireNodeNetns(sandbox: Sandbox): void {
  if (!isNodeNetns(sandbox.netns)) {
    throw invalidConfig(
      `cnm-host attaches pods that share the node's network namespace, but CNI_NETNS ${sandbox.netns} is a namespace of its own`,
      'run the pod with hostNetwork: true, or use a driver such as cnm-bridge for pods with their own namespace',
    );
  }
}

/**
 * The links carrying the default route first: a result an old runtime reads (0.1.0, 0.2.0: one address per
 * family) then names the node's primary address.
 */
function defaultRouteFirst(links: IpLink[]): IpLink[] {
  const primary = new Set([4, 6].flatMap((f) => routes(f as 4 | 6).filter((r) => r.dst === 'default').map((r) => r.dev)));
  return [...links.filter((l) => primary.has(l.ifname)), ...links.filter((l) => !primary.has(l.ifname))];
}

/** CNM's host driver: the pod uses the node's own network stack; the result shows the node's interfaces. */
export const hostDriver: Driver = {
  name: 'host',
  ...NOTHING_TO_MANAGE,

  join(_ctx, _net, _ep, sandbox): JoinInfo {
    requireNodeNetns(sandbox);
    const interfaces: Interface[] = [];
    const ips: IpConfig[] = [];
    for (const link of defaultRouteFirst(addrs())) {
      const index = interfaces.push({ name: link.ifname, ...(link.address ? { mac: link.address } : {}), sandbox: sandbox.netns }) - 1;
      for (const a of link.addr_info ?? []) {
        if (a.scope === 'global') ips.push({ address: `${a.local}/${a.prefixlen}`, interface: index });
      }
    }
    return { interfaces, addressedInterface: -1, ips };
  },

  check(_ctx, _net, _ep, sandbox) {
    try {
      requireNodeNetns(sandbox);
    } catch (err) {
      throw new CniError(ErrorCode.StateMismatch, (err as CniError).msg);
    }
  },
};
