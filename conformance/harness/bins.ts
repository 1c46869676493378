import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The executables under test: CNM_BIN_DIR (dist/bin, the default format, unless the runner says otherwise). */
export const ROOT = resolve(process.env.CNM_ROOT ?? process.cwd());
export const BIN_DIR = resolve(process.env.CNM_BIN_DIR ?? `${ROOT}/dist/bin`);
export const FORMAT = process.env.CNM_FORMAT ?? 'bun';

export function bin(name: string): string {
  const file = `${BIN_DIR}/${name}`;
  if (!existsSync(file)) throw new Error(`${file} is not built: run npm run build`);
  return file;
}

/** Where the Go reference plugins live (Debian's containernetworking-plugins). */
export const REFERENCE_DIR = '/usr/lib/cni';
