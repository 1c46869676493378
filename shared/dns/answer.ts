// One query against the zone: an answer of ours, or "forward" for everything else. Wire format by dns-packet.
import * as packet from 'dns-packet';
import type { ZoneNetwork } from './zone.ts';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

export type Reply = { kind: 'answer'; message: Buffer } | { kind: 'forward' };

/** A reply with only a header and the question: SERVFAIL when upstreams fail, FORMERR for garbage. */
export function errorReply(query: Buffer, rcode: number): Buffer | undefined {
  if (query.length < 12) return undefined;
  const out = Buffer.from(query);
  // QR set, opcode and RD kept, RA set, rcode replaced; counts: the question only.
  const flags = query.readUInt16BE(2);
  out.writeUInt16BE(0x8000 | (flags & 0x7900) | packet.RECURSION_AVAILABLE | rcode, 2);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

/** The name without the network's domain, and whether it was in that domain. */
function local(name: string, domain: string): { label: string; inDomain: boolean } {
  if (name === domain) return { label: '', inDomain: true };
  if (name.endsWith(`.${domain}`)) return { label: name.slice(0, -domain.length - 1), inDomain: true };
  return { label: name, inDomain: false };
}

/** The address a reverse name stands for, or undefined. */
export function reverseAddress(name: string): string | undefined {
  if (name.endsWith('.in-addr.arpa')) {
    const parts = name.slice(0, -'.in-addr.arpa'.length).split('.');
    if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
    return parts.reverse().map(Number).join('.');
  }
  if (name.endsWith('.ip6.arpa')) {
    const nibbles = name.slice(0, -'.ip6.arpa'.length).split('.');
    if (nibbles.length !== 32 || nibbles.some((n) => !/^[0-9a-f]$/.test(n))) return undefined;
    const hex = nibbles.reverse().join('');
    const groups = hex.match(/.{4}/g)!.map((g) => g.replace(/^0+(?=.)/, ''));
    return canonical6(groups);
  }
  return undefined;
}

/** RFC 5952 text of eight groups (the longest run of two or more zero groups becomes "::"). */
function canonical6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

function shuffled<T>(items: T[]): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Over UDP a reply stays within the classic 512 bytes: a longer one goes without answers, TC set. */
const UDP_LIMIT = 512;

function respond(q: packet.Packet, rcode: number, answers: packet.Answer[], tcp: boolean): Reply {
  const flags = packet.AUTHORITATIVE_ANSWER | packet.RECURSION_AVAILABLE | ((q.flags ?? 0) & packet.RECURSION_DESIRED) | rcode;
  const message = packet.encode({ id: q.id, type: 'response', flags, questions: q.questions, answers });
  if (tcp || message.length <= UDP_LIMIT) return { kind: 'answer', message };
  return { kind: 'answer', message: packet.encode({ id: q.id, type: 'response', flags: flags | packet.TRUNCATED_RESPONSE, questions: q.questions, answers: [] }) };
}

/** Answers A, AAAA and PTR for the names of the networks in scope; forwards the rest. */
export function answer(query: Buffer, scope: ZoneNetwork[], tcp = false): Reply {
  let q: packet.Packet;
  try {
    q = packet.decode(query);
  } catch {
    const message = errorReply(query, RCODE.FORMERR);
    return message ? { kind: 'answer', message } : { kind: 'forward' };
  }
  const question = q.questions?.[0];
  if (!question || q.questions!.length !== 1 || q.type !== 'query') return { kind: 'forward' };
  const name = question.name.toLowerCase().replace(/\.$/, '');

  if (question.type === 'PTR') {
    const ip = reverseAddress(name);
    const target = ip && scope.map((n) => n.ptr.get(ip)).find((t) => t !== undefined);
    if (!target) return { kind: 'forward' };
    const ttl = scope[0]!.ttl;
    return respond(q, RCODE.NOERROR, [{ type: 'PTR', name: question.name, ttl, class: 'IN', data: target }], tcp);
  }

  let inDomain = false;
  let ttl = 0;
  const v4: string[] = [];
  const v6: string[] = [];
  let found = false;
  for (const net of scope) {
    const l = local(name, net.domain);
    inDomain ||= l.inDomain;
    const hit = net.names.get(l.label);
    if (!hit) continue;
    found = true;
    ttl = net.ttl;
    for (const a of hit.v4) if (!v4.includes(a)) v4.push(a);
    for (const a of hit.v6) if (!v6.includes(a)) v6.push(a);
  }
  if (!found) return inDomain ? respond(q, RCODE.NXDOMAIN, [], tcp) : { kind: 'forward' };
  const answers: packet.Answer[] = [];
  const any = (question.type as string) === 'ANY';
  if (question.type === 'A' || any) for (const a of shuffled(v4)) answers.push({ type: 'A', name: question.name, ttl, class: 'IN', data: a });
  if (question.type === 'AAAA' || any) for (const a of shuffled(v6)) answers.push({ type: 'AAAA', name: question.name, ttl, class: 'IN', data: a });
  return respond(q, RCODE.NOERROR, answers, tcp);
}
