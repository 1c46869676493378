import { invalidConfig } from '../../shared/cni/errors.ts';
import { plainAddresses } from '../../shared/cni/result.ts';
import { attachmentOf } from '../../shared/cni/cnm-plugin.ts';
import { runPlugin, type Invocation } from '../../shared/cni/skeleton.ts';
import { DEFAULT_DATA_DIR } from '../../shared/cnm/store.ts';
import { HostLocal } from '../../shared/ipam/host-local.ts';
import { requestedIps } from '../../shared/ipam/requested.ts';

/** cnm-host-local as a standalone CNI IPAM plugin, for main plugins that exec it (ours run it in-process). */
function open(inv: Invocation): HostLocal {
  if (!inv.conf.ipam) throw invalidConfig('cnm-host-local is an IPAM plugin: the config needs an "ipam" section');
  return new HostLocal(inv.conf.ipam, inv.conf.name, inv.conf.dataDir ?? DEFAULT_DATA_DIR);
}

const attachment = (inv: Invocation) => ({ containerID: inv.env.containerId, ifname: inv.env.ifname });

/** The addresses the runtime's cached result lists: where a release or CHECK looks first. */
const previous = (inv: Invocation) => plainAddresses(inv.conf.prevResult?.ips ?? []);

process.exitCode = runPlugin('cnm-host-local', {
  add: (inv) => open(inv).allocate(attachment(inv), requestedIps(attachmentOf(inv))),
  del: (inv) => open(inv).release(attachment(inv), previous(inv)),
  check: (inv) => open(inv).check(attachment(inv), previous(inv)),
  gc: (inv) => open(inv).gc(inv.conf.validAttachments),
  status: (inv) => open(inv).status(),
});
