// What either front door (CNI's env + stdin, Docker's plugin HTTP) asks of the model, in the model's own terms.
// Each door translates its wire into these at its edge; nothing below reads env, stdin or HTTP.
import type { Json } from '../cni/fields.ts';
import type { Dns } from '../cni/result.ts';

/** An attachment a runtime still uses: (container id, interface name). */
export interface Attachment {
  containerID: string;
  ifname: string;
}

/** A network as a door names it. */
export interface NetworkSpec {
  name: string;
  /** The driver's keys: a CNI config's top-level keys, or `docker network create -o` options mapped onto them. */
  options: Json;
  dataDir: string;
  dns?: Dns;
}

/** One attachment of a container to the network, and what the runtime asks of it. */
export interface AttachmentSpec {
  containerId: string;
  ifname: string;
  /** The sandbox: a network namespace path ('' when the runtime no longer knows it). */
  netns: string;
  /** Key/value labels (CNI_ARGS), in order. */
  labels: Array<[string, string]>;
  /** Free-form per-attachment arguments (a CNI config's `args`). */
  args?: Json;
  /** Runtime capabilities: portMappings, mac, ips... (CNI's runtimeConfig). */
  runtime: Json;
}

/** One call into the NetworkController. */
export interface ControllerRequest {
  network: NetworkSpec;
  attachment: AttachmentSpec;
  /** CHECK: the addresses the runtime was given by the ADD. */
  previousIps?: string[];
  /** GC: the attachments still in use. */
  validAttachments?: Attachment[];
}

/** An attachment with nothing asked of it: what network-level calls (create, remove, GC, STATUS) carry. */
export function noAttachment(): AttachmentSpec {
  return { containerId: '', ifname: '', netns: '', labels: [], runtime: {} };
}
