/** CNI error codes (spec 1.1.0, "Error" section); 100 and up are ours. */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnv: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  /** STATUS: the plugin cannot serve new ADDs. */
  NotAvailable: 50,
  /** STATUS: not available, and existing containers are affected too. */
  NotAvailableLimited: 51,
  /** A kernel operation (iproute2, nft, sysctl) failed. */
  KernelFailure: 100,
  /** The state store is unreadable or inconsistent. */
  StoreFailure: 101,
  /** A requested address is held by another attachment. */
  AddressInUse: 103,
  /** The kernel or the store no longer matches what ADD made (CHECK). */
  StateMismatch: 104,
  /** The address range has no free address left. */
  RangeExhausted: 102,
  /** Anything we did not foresee: a bug. */
  Internal: 999,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error a CNI caller sees as `{cniVersion, code, msg, details}`. */
export class CniError extends Error {
  constructor(
    readonly code: number,
    readonly msg: string,
    readonly details = '',
  ) {
    super(msg);
    this.name = 'CniError';
  }
}

export function invalidConfig(msg: string, details = ''): CniError {
  return new CniError(ErrorCode.InvalidConfig, msg, details);
}

export function invalidEnv(msg: string, details = ''): CniError {
  return new CniError(ErrorCode.InvalidEnv, msg, details);
}

/** Wraps anything thrown into a CniError, keeping a CniError as it is. */
export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  if (err instanceof Error) {
    const code = (err as { cniCode?: number }).cniCode ?? ErrorCode.Internal;
    return new CniError(code, err.message);
  }
  return new CniError(ErrorCode.Internal, String(err));
}

/**
 * An error from inside a named step ("creating bridge cnm0"): a CniError stays as it is (it already says what
 * to fix); anything else gets the step's name, and a code for what it was (a failed command's, an OS error's
 * I/O failure) instead of 999.
 */
export function inStep(what: string, err: unknown, code?: number): CniError {
  if (err instanceof CniError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const own = (err as { cniCode?: number } | undefined)?.cniCode;
  const osError = typeof (err as { errno?: unknown } | undefined)?.errno === 'number';
  return new CniError(code ?? own ?? (osError ? ErrorCode.IoFailure : ErrorCode.Internal), `${what}: ${message}`);
}

/** Runs one step, its failures named after it (see inStep). */
export function step<T>(what: string, fn: () => T, code?: number): T {
  try {
    return fn();
  } catch (err) {
    throw inStep(what, err, code);
  }
}
