import { CniError, ErrorCode } from './errors.ts';

/** Every spec version these plugins read and write, oldest first. */
export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];
export const CURRENT_VERSION: CniVersion = '1.1.0';

/** Version a config gets when it names none, as libcni and the reference skel assume. */
export const IMPLICIT_VERSION: CniVersion = '0.1.0';

export function isSupportedVersion(v: string): v is CniVersion {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

export function requireSupportedVersion(v: string): CniVersion {
  if (isSupportedVersion(v)) return v;
  throw new CniError(
    ErrorCode.IncompatibleVersion,
    `cniVersion ${JSON.stringify(v)} is not supported`,
    `this plugin speaks ${SUPPORTED_VERSIONS.join(', ')}`,
  );
}

/** Compares dotted versions numerically: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < 3; i++) {
    const d = Number(pa[i] ?? 0) - Number(pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function atLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}
