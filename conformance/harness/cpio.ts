import { gzipSync } from 'node:zlib';

/** One entry of a newc cpio archive (what the kernel unpacks as an initramfs). */
export type CpioEntry =
  | { path: string; type: 'dir' }
  | { path: string; type: 'file'; data: Buffer; mode?: number }
  | { path: string; type: 'symlink'; target: string };

function header(fields: number[], name: string): Buffer {
  const hex = fields.map((f) => f.toString(16).padStart(8, '0')).join('');
  const head = Buffer.from(`070701${hex}`, 'ascii');
  const nameBuf = Buffer.from(`${name}\0`, 'utf8');
  const pad = (4 - ((head.length + nameBuf.length) % 4)) % 4;
  return Buffer.concat([head, nameBuf, Buffer.alloc(pad)]);
}

/** A gzipped newc archive of the entries, in order (parents before children). */
export function cpioGz(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    const data = e.type === 'file' ? e.data : e.type === 'symlink' ? Buffer.from(e.target) : Buffer.alloc(0);
    const mode = e.type === 'dir' ? 0o040755 : e.type === 'symlink' ? 0o120777 : 0o100000 | (e.mode ?? 0o644);
    // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
    parts.push(header([ino++, mode, 0, 0, e.type === 'dir' ? 2 : 1, 0, data.length, 0, 0, 0, 0, Buffer.byteLength(name) + 1, 0], name));
    parts.push(data, Buffer.alloc((4 - (data.length % 4)) % 4));
  }
  parts.push(header([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 11, 0], 'TRAILER!!!'));
  const body = Buffer.concat(parts);
  return gzipSync(Buffer.concat([body, Buffer.alloc((512 - (body.length % 512)) % 512)]));
}
