// `loopback`, the plugin containerd 1.6's CRI runs for every pod: cnm-null's behaviour without a store (a
// runtime's loopback network is not an operator's network, so it leaves no record anywhere).
import { runPlugin } from '../../shared/cni/skeleton.ts';
import { Sandbox } from '../../shared/cnm/sandbox.ts';
import { loopbackUp, requireLoopbackUp } from '../null/driver.ts';

process.exitCode = runPlugin('loopback', {
  add: ({ env }) => ({ cniVersion: '1.1.0', ...loopbackUp(Sandbox.require(env.containerId, env.netns).netns) }),
  del: () => {},
  check: ({ env }) => requireLoopbackUp(Sandbox.require(env.containerId, env.netns).netns),
  gc: () => {},
  status: () => {},
});
