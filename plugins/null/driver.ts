import { CniError, ErrorCode } from '../../shared/cni/errors.ts';
import type { Interface, IpConfig } from '../../shared/cni/result.ts';
import { NOTHING_TO_MANAGE, type Driver, type JoinInfo } from '../../shared/cnm/driver.ts';
import { ipBatch, type IpLink } from '../../shared/kernel/iproute.ts';

/** Brings a namespace's loopback up (one `ip` process) and says what it carries. */
export function loopbackUp(netns: string): { interfaces: Interface[]; ips: IpConfig[] } {
  const [lo] = JSON.parse(ipBatch(['link set dev lo up', 'addr show dev lo'], netns)) as IpLink[];
  const ips: IpConfig[] = (lo?.addr_info ?? []).map((a) => ({ address: `${a.local}/${a.prefixlen}`, interface: 0 }));
  return { interfaces: [{ name: 'lo', mac: lo?.address ?? '00:00:00:00:00:00', sandbox: netns }], ips };
}

export function requireLoopbackUp(netns: string): void {
  const [lo] = JSON.parse(ipBatch(['link show dev lo'], netns)) as IpLink[];
  if (!lo?.flags.includes('UP')) throw new CniError(ErrorCode.StateMismatch, `loopback in ${netns} is down`);
}

/** CNM's null driver: the pod gets its loopback, up, and nothing else. */
export const nullDriver: Driver = {
  name: 'null',
  ...NOTHING_TO_MANAGE,

  join(_ctx, _net, _ep, sandbox): JoinInfo {
    return { ...loopbackUp(sandbox.netns), addressedInterface: -1 };
  },

  check(_ctx, _net, _ep, sandbox) {
    requireLoopbackUp(sandbox.netns);
  },
};
