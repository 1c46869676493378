// The CNI front door of the model: one invocation (env + stdin, parsed by the skeleton) becomes the model's
// requests, and the model's answers become CNI's. The model itself never sees env or stdin.
import { RemoteIpam, parseRemoteIpamConf } from '../remote/ipam.ts';
import { NetworkController } from '../cnm/controller.ts';
import type { Driver } from '../cnm/driver.ts';
import { IN_PROCESS_IPAM, InProcessIpam, REMOTE_IPAM, type Ipam, type Pool } from '../cnm/ipam.ts';
import type { AttachmentSpec, ControllerRequest } from '../cnm/requests.ts';
import { DEFAULT_DATA_DIR } from '../cnm/store.ts';
import { requestedIps } from '../ipam/requested.ts';
import { delegate } from './delegate.ts';
import type { CniEnv } from './env.ts';
import type { Result } from './result.ts';
import type { Invocation, PluginHandlers } from './skeleton.ts';

/** The attachment an invocation describes. */
export function attachmentOf(inv: Invocation): AttachmentSpec {
  const att: AttachmentSpec = { containerId: inv.env.containerId, ifname: inv.env.ifname, netns: inv.env.netns, labels: inv.env.args, runtime: inv.conf.runtimeConfig };
  if (inv.conf.args) att.args = inv.conf.args;
  return att;
}

/** An invocation in the model's terms. */
export function toModel(inv: Invocation): ControllerRequest {
  const { conf } = inv;
  const req: ControllerRequest = {
    network: { name: conf.name, options: conf.raw, dataDir: conf.dataDir ?? DEFAULT_DATA_DIR, ...(conf.dns ? { dns: conf.dns } : {}) },
    attachment: attachmentOf(inv),
  };
  if (conf.prevResult) req.previousIps = (conf.prevResult.ips ?? []).map((ip) => ip.address);
  if (conf.validAttachments) req.validAttachments = conf.validAttachments;
  return req;
}

/** The config's `ipam` section as the model's Ipam: ours in-process, any other CNI IPAM plugin by exec. */
export function openIpam(inv: Invocation, dataDir: string): Ipam | undefined {
  const { conf } = inv;
  if (!conf.ipam) return undefined;
  if (conf.ipam.type === IN_PROCESS_IPAM) {
    return new InProcessIpam(conf.ipam, conf.name, dataDir, requestedIps(attachmentOf(inv)));
  }
  if (conf.ipam.type === REMOTE_IPAM) {
    return new RemoteIpam(parseRemoteIpamConf(conf.ipam), conf.name, dataDir, inv.log);
  }
  return new ExecIpam(conf.ipam.type, inv.env, JSON.stringify(conf.raw));
}

/** Any other CNI IPAM plugin, executed from CNI_PATH with the same config, as the spec delegates. */
class ExecIpam implements Ipam {
  constructor(
    readonly type: string,
    private readonly env: CniEnv,
    private readonly rawConf: string,
  ) {}

  requestPool(): Pool {
    return [];
  }
  releasePool(): void {}
  requestAddress(): Result {
    return delegate(this.type, 'ADD', this.env, this.rawConf)!;
  }
  releaseAddress(): void {
    delegate(this.type, 'DEL', this.env, this.rawConf);
  }
  check(): void {
    delegate(this.type, 'CHECK', this.env, this.rawConf);
  }
  gc(): void {
    delegate(this.type, 'GC', this.env, this.rawConf);
  }
  status(): void {
    delegate(this.type, 'STATUS', this.env, this.rawConf);
  }
}

function controller(driver: Driver, inv: Invocation): NetworkController {
  const req = toModel(inv);
  return new NetworkController(driver, req, openIpam(inv, req.network.dataDir), inv.log);
}

/** A CNM driver as a CNI plugin: each command goes through the NetworkController. */
export function cnmPlugin(driver: Driver): PluginHandlers {
  return {
    add: (inv) => controller(driver, inv).add(),
    del: (inv) => controller(driver, inv).del(),
    check: (inv) => controller(driver, inv).check(),
    gc: (inv) => controller(driver, inv).gc(),
    status: (inv) => controller(driver, inv).status(),
  };
}
