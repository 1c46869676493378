import { readFileSync } from './fs.ts';

let cached: string | undefined;

/** This boot's id (/proc/sys/kernel/random/boot_id): a record made under another one describes a kernel that is gone. */
export function bootId(): string {
  if (cached === undefined) {
    try {
      cached = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cached = '';
    }
  }
  return cached;
}
