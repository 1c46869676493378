import { readFileSync, statIfExists } from '../kernel/fs.ts';
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Attachment } from '../cni/config.ts';
import { createInPlace, linkExclusive, listDir, overwrite, readText, removeFile, sweepTemps } from '../cnm/store.ts';
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
 * What releases before 2026-11-26 left: a JSON index of the attachment's addresses at the name its file has now,
 * "pending" while an allocation was under way.
 */
interface LegacyIndex {
  state: 'pending' | 'done';
  ips: string[];
}

function readLegacyIndex(path: string): LegacyIndex | undefined {
  const text = readText(path);
  if (text === undefined || !text.startsWith('{')) return undefined;
  try {
    const index = JSON.parse(text) as LegacyIndex;
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
 * Reservations of one network's address ranges. An attachment has one file, `attachments/<id>:<ifname>`, holding
 * its owner text; each address it holds is a hard link of that file named by the address (what the reference
 * host-local reads), made exclusively, so concurrent allocations can never share an address and need no lock.
 * One new file per attachment however many addresses it takes: a new file costs 70 µs to 1.5 ms on a journal-less
 * ext4 (README, Benchmark), a link allocates no inode. A release finds the addresses by the file's inode: the
 * caller's list checked, or every reservation looked at when the count of links says something is missing.
 */
export class Reservations {
  constructor(readonly dir: string) {}

  /** The attachment's own file: made before any address is taken, so a kill leaves something a release finds. */
  private attachmentPath(att: Attachment): string {
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

  /**
   * Addresses held by an attachment. `known`: the addresses its caller recorded (an endpoint record, a
   * prevResult), checked against the attachment's file; every reservation is looked at only when they are not all.
   */
  held(att: Attachment, known: string[] = []): string[] {
    return this.holding(att, known)?.ips ?? [];
  }

  /**
   * What an attachment holds, undefined when it has no file. `byLink`: the addresses are links of its file, found
   * by inode; else its file is a JSON index of the layout before (or no address was linked before a kill).
   */
  private holding(att: Attachment, known: string[]): { ips: string[]; byLink: boolean } | undefined {
    const file = this.attachmentPath(att);
    const st = statIfExists(file);
    if (!st) return undefined;
    if (st.nlink === 1) {
      const legacy = readLegacyIndex(file);
      return { ips: legacy?.state === 'done' ? legacy.ips : legacy ? this.scanOwned(att) : [], byLink: false };
    }
    const found: string[] = [];
    for (const ip of known) if (this.isLinkOf(ip, st.ino)) found.push(ip);
    if (found.length === st.nlink - 1) return { ips: found, byLink: true };
    const all: string[] = [];
    for (const name of this.reservationFiles()) if (this.isLinkOf(name, st.ino)) all.push(name);
    return { ips: all, byLink: true };
  }

  /** One address from each range set; a requested address is taken from the set it falls in. */
  allocate(att: Attachment, sets: RangeSet[], requested: string[]): Allocation[] {
    // Loops, not map and filter: on the ADD path their first call costs a compile (see shared/cni/result.ts).
    const wanted: Array<{ ip: Ip; set: RangeSet }> = [];
    for (const text of requested) {
      const ip = parseIp(text);
      if (!ip) throw new CniError(ErrorCode.InvalidConfig, `requested IP ${JSON.stringify(text)} is not an IP address`);
      const set = sets.find((s) => s.ranges.some((r) => inRange(r, ip)));
      if (!set) throw new CniError(ErrorCode.InvalidConfig, `requested IP ${text} is in none of the ranges (${sets.map(describeSet).join('; ')})`);
      wanted.push({ ip, set });
    }
    const file = this.attachmentPath(att);
    if (!createInPlace(file, ownerText(att))) throw new AddressesHeld(att, this.dir);
    const got: Allocation[] = [];
    try {
      for (const set of sets) {
        const asked: typeof wanted = [];
        for (const w of wanted) if (w.set === set) asked.push(w);
        if (asked.length > 1) throw new CniError(ErrorCode.InvalidConfig, `more than one requested IP falls in range set ${describeSet(set)}`);
        got.push(asked.length ? this.reserveRequested(file, set, asked[0]!.ip) : this.reserveNext(file, set));
      }
    } catch (err) {
      for (const a of got) removeFile(`${this.dir}/${a.ip}`);
      removeFile(file);
      throw err;
    }
    return got;
  }

  private reserveRequested(file: string, set: RangeSet, ip: Ip): Allocation {
    const range = set.ranges.find((r) => inRange(r, ip))!;
    const text = formatIp(ip.family, ip.value);
    if (range.gateway === ip.value) throw new CniError(ErrorCode.InvalidConfig, `requested IP ${text} is the gateway of ${range.field}`);
    if (!linkExclusive(file, `${this.dir}/${text}`)) {
      const owner = (this.ownerOf(text) ?? '').split('\r\n')[0];
      throw new CniError(ErrorCode.AddressInUse, `requested IP ${text} is already reserved by container ${owner}`, 'ask for another address or DEL that container');
    }
    return allocation(set, range, text);
  }

  /** Round-robin: the first free address after the set's last reservation, wrapping around. */
  private reserveNext(file: string, set: RangeSet): Allocation {
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
    for (let tried = 0n; tried < total; tried++) {
      let range = set.ranges[ri]!;
      if (v > range.end) {
        ri = (ri + 1) % set.ranges.length;
        range = set.ranges[ri]!;
        v = range.start;
      }
      if (v !== range.gateway) {
        const text = formatIp(set.family, v);
        if (linkExclusive(file, `${this.dir}/${text}`)) {
          // A hint only: a torn write makes the next allocation start from the range's beginning.
          overwrite(this.lastReservedPath(set), text);
          return allocation(set, range, text);
        }
      }
      v++;
    }
    throw new CniError(ErrorCode.RangeExhausted, `no free address left in range set ipam.ranges[${set.index}] (${describeSet(set)}): all ${capacity(set)} are reserved`, 'DEL unused pods or widen the range');
  }

  /**
   * Releases what an attachment holds; nothing held is not an error. `known`: the addresses its caller recorded
   * (checked: only links of the attachment's own file go).
   */
  release(att: Attachment, known: string[] = []): void {
    sweepTemps(this.dir);
    sweepTemps(`${this.dir}/attachments`);
    const holding = this.holding(att, known);
    if (!holding) return;
    // A legacy index's addresses are not links of it: each goes only if its owner text is the attachment's.
    for (const ip of holding.ips) {
      if (holding.byLink) removeFile(`${this.dir}/${ip}`);
      else this.releaseIp(ip, att);
    }
    removeFile(this.attachmentPath(att));
  }

  /** The attachments that hold (or were taking) addresses here, from their files' names. */
  attachments(): Attachment[] {
    const out: Attachment[] = [];
    for (const name of listDir(`${this.dir}/attachments`)) {
      const sep = name.lastIndexOf(':');
      if (sep > 0) out.push({ containerID: name.slice(0, sep), ifname: name.slice(sep + 1) });
    }
    return out;
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

  /** Whether the reservation of `ip` is a link of the file with inode `ino`. */
  private isLinkOf(ip: string, ino: number): boolean {
    return statIfExists(`${this.dir}/${ip}`)?.ino === ino;
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

