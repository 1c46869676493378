import { readFileSync } from '../kernel/fs.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Attachment } from '../cni/config.ts';
import { createExclusive, listDir, overwrite, readText, removeFile, sweepTemps } from '../cnm/store.ts';
import { canonicalIp, formatIp, parseIp, type Ip } from './ip.ts';
import { capacity, describeSet, type RangeSet } from './config.ts';

/** An attachment asked for addresses while it still held some: a DEL must come first, or a killed ADD left them. */
export class AddressesHeld extends CniError {
  constructor(att: Attachment, dir: string) {
    super(ErrorCode.InvalidConfig, `container ${att.containerID} ifname ${att.ifname} already holds addresses in ${dir}`, 'DEL the attachment before adding it again');
  }
}

/** Who holds an address: the reservation file's content, as the reference host-local writes it. */
function ownerText(att: Attachment): string {
  return `${att.containerID}\r\n${att.ifname}`;
}

/**
 * The attachment's own index of what it reserved. It says "pending" while an allocation is under way, so
 * a release after a kill knows to look through every reservation instead of trusting the list. It is
 * written in place: a torn write reads as pending, which is always safe.
 */
interface AttachmentIndex {
  state: 'pending' | 'done';
  ips: string[];
}

function readIndex(path: string): AttachmentIndex | undefined {
  const text = readText(path);
  if (text === undefined) return undefined;
  try {
    const index = JSON.parse(text) as AttachmentIndex;
    if (index.state === 'done' && Array.isArray(index.ips)) return index;
  } catch {
    // torn by a kill mid-write
  }
  return { state: 'pending', ips: [] };
}

export interface Allocation {
  set: RangeSet;
  ip: string;
  gateway?: string;
  prefix: number;
}

/**
 * Reservations of one network's address ranges: one file per address, created exclusively, so
 * concurrent allocations can never share an address and need no lock.
 */
export class Reservations {
  constructor(readonly dir: string) {}

  private indexPath(att: Attachment): string {
    return `${this.dir}/attachments/${att.containerID}:${att.ifname}`;
  }

  private lastReservedPath(set: RangeSet): string {
    return `${this.dir}/last_reserved_ip.${set.index}`;
  }

  ownerOf(ip: string): string | undefined {
    try {
      return readFileSync(`${this.dir}/${ip}`, 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Addresses held by an attachment, from its index. */
  held(att: Attachment): string[] {
    return readIndex(this.indexPath(att))?.ips ?? [];
  }

  /** One address from each range set; a requested address is taken from the set it falls in. */
  allocate(att: Attachment, sets: RangeSet[], requested: string[]): Allocation[] {
    if (readIndex(this.indexPath(att))) {
      throw new AddressesHeld(att, this.dir);
    }
    // Loops, not map and filter: on the ADD path their first call costs a compile (see shared/cni/result.ts).
    const wanted: Array<{ ip: Ip; set: RangeSet }> = [];
    for (const text of requested) {
      const ip = parseIp(text);
      if (!ip) throw new CniError(ErrorCode.InvalidConfig, `requested IP ${JSON.stringify(text)} is not an IP address`);
      const set = sets.find((s) => s.ranges.some((r) => inRange(r, ip)));
      if (!set) throw new CniError(ErrorCode.InvalidConfig, `requested IP ${text} is in none of the ranges (${sets.map(describeSet).join('; ')})`);
      wanted.push({ ip, set });
    }
    overwrite(this.indexPath(att), JSON.stringify({ state: 'pending', ips: [] } satisfies AttachmentIndex));
    const got: Allocation[] = [];
    try {
      for (const set of sets) {
        const asked: typeof wanted = [];
        for (const w of wanted) if (w.set === set) asked.push(w);
        if (asked.length > 1) throw new CniError(ErrorCode.InvalidConfig, `more than one requested IP falls in range set ${describeSet(set)}`);
        got.push(asked.length ? this.reserveRequested(att, set, asked[0]!.ip) : this.reserveNext(att, set));
      }
    } catch (err) {
      for (const a of got) this.releaseIp(a.ip, att);
      removeFile(this.indexPath(att));
      throw err;
    }
    const ips: string[] = [];
    for (const a of got) ips.push(a.ip);
    overwrite(this.indexPath(att), JSON.stringify({ state: 'done', ips } satisfies AttachmentIndex));
    return got;
  }

  private reserveRequested(att: Attachment, set: RangeSet, ip: Ip): Allocation {
    const range = set.ranges.find((r) => inRange(r, ip))!;
    const text = formatIp(ip.family, ip.value);
    if (range.gateway === ip.value) throw new CniError(ErrorCode.InvalidConfig, `requested IP ${text} is the gateway of ${range.field}`);
    if (!createExclusive(`${this.dir}/${text}`, ownerText(att))) {
      const owner = (this.ownerOf(text) ?? '').split('\r\n')[0];
      throw new CniError(ErrorCode.AddressInUse, `requested IP ${text} is already reserved by container ${owner}`, 'ask for another address or DEL that container');
    }
    return allocation(set, range, text);
  }

  /** Round-robin: the first free address after the set's last reservation, wrapping around. */
  private reserveNext(att: Attachment, set: RangeSet): Allocation {
    const last = readLast(this.lastReservedPath(set));
    let ri = 0;
    let v = set.ranges[0]!.start;
    if (last) {
      for (let i = 0; i < set.ranges.length; i++) {
        if (inRange(set.ranges[i]!, last)) {
          [ri, v] = [i, last.value + 1n];
          break;
        }
      }
    }
    let total = 0n;
    for (const r of set.ranges) total += r.end - r.start + 1n;
    const owner = ownerText(att);
    for (let tried = 0n; tried < total; tried++) {
      let range = set.ranges[ri]!;
      if (v > range.end) {
        ri = (ri + 1) % set.ranges.length;
        range = set.ranges[ri]!;
        v = range.start;
      }
      if (v !== range.gateway) {
        const text = formatIp(set.family, v);
        if (createExclusive(`${this.dir}/${text}`, owner)) {
          // A hint only: a torn write makes the next allocation start from the range's beginning.
          overwrite(this.lastReservedPath(set), text);
          return allocation(set, range, text);
        }
      }
      v++;
    }
    throw new CniError(ErrorCode.RangeExhausted, `no free address left in range set ipam.ranges[${set.index}] (${describeSet(set)}): all ${capacity(set)} are reserved`, 'DEL unused pods or widen the range');
  }

  /** Releases what an attachment holds; nothing held is not an error. */
  release(att: Attachment): void {
    sweepTemps(this.dir);
    sweepTemps(`${this.dir}/attachments`);
    const index = readIndex(this.indexPath(att));
    if (!index) return;
    const ips = index.state === 'done' ? index.ips : this.scanOwned(att);
    for (const ip of ips) this.releaseIp(ip, att);
    removeFile(this.indexPath(att));
  }

  /** Every reservation whose owner is not listed as valid goes. */
  gc(valid: Attachment[]): number {
    sweepTemps(this.dir);
    sweepTemps(`${this.dir}/attachments`);
    const keep = new Set(valid.map(ownerText));
    let released = 0;
    for (const name of this.reservationFiles()) {
      const owner = this.ownerOf(name);
      if (owner !== undefined && !keep.has(owner)) {
        removeFile(`${this.dir}/${name}`);
        released++;
      }
    }
    for (const name of listDir(`${this.dir}/attachments`)) {
      const sep = name.lastIndexOf(':');
      const att = { containerID: name.slice(0, sep), ifname: name.slice(sep + 1) };
      if (!keep.has(ownerText(att))) removeFile(`${this.dir}/attachments/${name}`);
    }
    return released;
  }

  /** How many addresses of a set are reserved. */
  used(set: RangeSet): number {
    return this.reservationFiles().filter((name) => {
      const ip = parseIp(name);
      return ip !== undefined && set.ranges.some((r) => inRange(r, ip));
    }).length;
  }

  private reservationFiles(): string[] {
    return listDir(this.dir).filter((n) => canonicalIp(n) === n);
  }

  private scanOwned(att: Attachment): string[] {
    const owner = ownerText(att);
    return this.reservationFiles().filter((n) => this.ownerOf(n) === owner);
  }

  private releaseIp(ip: string, att: Attachment): void {
    if (this.ownerOf(ip) === ownerText(att)) removeFile(`${this.dir}/${ip}`);
  }
}

function inRange(r: { subnet: { family: number }; start: bigint; end: bigint }, ip: Ip): boolean {
  return r.subnet.family === ip.family && ip.value >= r.start && ip.value <= r.end;
}

/** The last reservation of a set, as the reference host-local writes it (the bare address). */
function readLast(path: string): Ip | undefined {
  const text = readText(path)?.trim();
  return text ? parseIp(text) : undefined;
}

function allocation(set: RangeSet, range: RangeSet['ranges'][number], ip: string): Allocation {
  const a: Allocation = { set, ip, prefix: range.subnet.prefix };
  if (range.gateway !== undefined) a.gateway = formatIp(set.family, range.gateway);
  return a;
}

