// cnm-remote-ipam as a CNI IPAM plugin of its own, for main plugins that exec it (the reference bridge, say):
// addresses from a Docker IPAM plugin. The pool is requested by the first ADD and released with the last DEL.
// cnm-cni's own drivers run the same code in-process (shared/cni/cnm-plugin.ts).
import { invalidConfig } from '../../shared/cni/errors.ts';
import { runPlugin, type Invocation } from '../../shared/cni/skeleton.ts';
import { DEFAULT_DATA_DIR, withLock } from '../../shared/cnm/store.ts';
import { parseRemoteIpamConf, RemoteIpam } from '../../shared/remote/ipam.ts';

function open(inv: Invocation): RemoteIpam {
  if (!inv.conf.ipam) throw invalidConfig('cnm-remote-ipam is an IPAM plugin: the config needs an "ipam" section');
  return new RemoteIpam(parseRemoteIpamConf(inv.conf.ipam), inv.conf.name, inv.conf.dataDir ?? DEFAULT_DATA_DIR, inv.log);
}

const attachment = (inv: Invocation) => ({ containerID: inv.env.containerId, ifname: inv.env.ifname });

process.exitCode = runPlugin('cnm-remote-ipam', {
  add: (inv) => open(inv).requestAddress(attachment(inv)),
  del: (inv) => {
    const ipam = open(inv);
    ipam.releaseAddress(attachment(inv));
    withLock(`${ipam.dir}.lock`, () => {
      if (ipam.holders() === 0) ipam.releasePool();
    });
  },
  check: (inv) => open(inv).check(attachment(inv)),
  gc: (inv) => {
    if (!inv.conf.validAttachments) throw invalidConfig('GC needs "cni.dev/valid-attachments"');
    open(inv).gc(inv.conf.validAttachments);
  },
  status: (inv) => open(inv).status(),
});
