import type { Json } from '../cni/fields.ts';
import type { Log } from '../cni/log.ts';
import type { Interface, IpConfig, Route } from '../cni/result.ts';
import type { EndpointRecord, NetworkRecord } from './records.ts';
import type { AttachmentSpec, NetworkSpec } from './requests.ts';
import type { Sandbox } from './sandbox.ts';

/** What IPAM gave an endpoint, handed to the driver's join. */
export interface Addressing {
  ips: IpConfig[];
  routes: Route[];
}

/** What a driver's join puts in the result. */
export interface JoinInfo {
  interfaces: Interface[];
  /** Index into interfaces of the link the addresses go on; -1 when there is none. */
  addressedInterface: number;
  /** Addresses the driver reports itself (null driver: loopback; host: the node's). */
  ips?: IpConfig[];
  routes?: Route[];
  mac?: string;
  driverState?: Json;
}

/** What a driver is told of the call it serves, in the model's terms (no door's wire). */
export interface DriverContext {
  network: NetworkSpec;
  attachment: AttachmentSpec;
  log: Log;
  dataDir: string;
}

/**
 * A CNM driver. The controller calls these in the order of the design's lifecycles and never reaches inside;
 * every method that undoes something must succeed when there is nothing left to undo.
 */
export interface Driver {
  readonly name: string;
  /** Whether endpoints get addresses from IPAM (null and host drivers: no). */
  readonly usesIpam: boolean;
  /** Validates driver options; returns what the network record keeps. Runs before anything is touched. */
  validate(ctx: DriverContext): Json;
  /** Makes the network's kernel objects; returns what deleteNetwork needs to know (kept as NetworkRecord.state). */
  createNetwork(ctx: DriverContext, net: NetworkRecord): Json;
  deleteNetwork(ctx: DriverContext, net: NetworkRecord): void;
  /**
   * What of the network's kernel objects is missing or wrong, one phrase each ("bridge cnm0 is missing"); empty
   * when everything is in place. Reads only, and cheaply: every ADD asks (through ensureNetwork), CHECK and
   * `cnm network inspect` report it.
   */
  networkDrift(ctx: DriverContext, net: NetworkRecord): string[];
  /**
   * Makes the network's kernel objects exist and match again (after a reboot, an operator's `ip link del`,
   * another tool flushing nftables), restoring what its endpoints had put in them. Called on every ADD of an
   * existing network, so it reads before it writes; returns what it repaired. Throws a CniError naming what
   * could not be recreated.
   */
  ensureNetwork(ctx: DriverContext, net: NetworkRecord): string[];
  /**
   * Decides the endpoint's names and undo information before anything is touched; the controller stores it
   * as driverState, so a DEL after an ADD killed half-way knows what to remove.
   */
  prepare(ctx: DriverContext, net: NetworkRecord, ep: EndpointRecord): Json;
  /**
   * Whether prepare's state must be recorded before join. A driver that has this can undo an endpoint from
   * its network and attachment alone (names derived from them) and answers false when `state` holds nothing
   * more: the controller then writes no record until join is done (one file fewer per ADD), and a DEL that
   * finds none undoes the endpoint as it would have been recorded. Absent: always recorded.
   */
  recordBeforeJoin?(net: NetworkRecord, state: Json): boolean;
  /** Plugs the endpoint into the sandbox; addressing is empty when usesIpam is false. */
  join(ctx: DriverContext, net: NetworkRecord, ep: EndpointRecord, sandbox: Sandbox, addressing: Addressing): JoinInfo;
  /**
   * Starts the slow part of leave (deleting a link takes a detached process ~2 ms) as soon as a DEL has found the
   * endpoint's record, so it runs while the rest is read; leave() then finishes it.
   */
  beginLeave?(ctx: DriverContext, ep: EndpointRecord): void;
  /** Undoes join; sandbox is undefined when the namespace is already gone. */
  leave(ctx: DriverContext, net: NetworkRecord | undefined, ep: EndpointRecord, sandbox: Sandbox | undefined): void;
  /** Throws when the kernel no longer matches the endpoint. */
  check(ctx: DriverContext, net: NetworkRecord, ep: EndpointRecord, sandbox: Sandbox): void;
  /** Throws a code 50/51 CniError when an ADD cannot succeed now. */
  status(ctx: DriverContext, net: NetworkRecord | undefined): void;
}

/**
 * The parts of a driver whose networks own nothing on the node (null, host): no options, no network objects,
 * no per-endpoint undo information, and nothing that can stop an ADD.
 */
export const NOTHING_TO_MANAGE = {
  usesIpam: false,
  validate: () => ({}),
  createNetwork: () => ({}),
  deleteNetwork() {},
  networkDrift: () => [],
  ensureNetwork: () => [],
  prepare: () => ({}),
  leave() {},
  status() {},
} satisfies Partial<Driver>;
