import { unknownContainer } from '../cni/env.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import { netnsState } from '../kernel/netns.ts';

/** The pod's network namespace, as CNI_NETNS names it. */
export class Sandbox {
  constructor(
    readonly containerId: string,
    readonly netns: string,
  ) {}

  /** ADD and CHECK need the namespace; a missing one means the container is gone (code 3). */
  static require(containerId: string, netns: string): Sandbox {
    const state = netnsState(netns);
    if (state === 'missing') throw unknownContainer(netns);
    if (state === 'not-a-namespace') throw new CniError(ErrorCode.InvalidEnv, `CNI_NETNS ${netns} is not a network namespace`, 'pass a /var/run/netns/NAME bind mount or /proc/PID/ns/net');
    if (typeof state === 'object') throw new CniError(ErrorCode.IoFailure, `cannot open CNI_NETNS ${netns}: ${state.error}`);
    return new Sandbox(containerId, netns);
  }

  /** DEL and GC tolerate a namespace that is already gone. */
  static ifPresent(containerId: string, netns: string): Sandbox | undefined {
    return netns !== '' && netnsState(netns) === 'present' ? new Sandbox(containerId, netns) : undefined;
  }
}
