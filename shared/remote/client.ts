// A Docker plugin as the model's drivers call it: typed calls, each bounded by the timeout, every failure a
// CNI error 11 (try again later) that names the plugin, its socket and the call.
import { CniError, ErrorCode } from '../cni/errors.ts';
import type { Log } from '../cni/log.ts';
import { describeAddress, type PluginLocation } from './discovery.ts';
import type { ErrorReply, Method, RequestOf, ResponseOf } from './protocol.ts';
import { postSync, TransportError } from './transport.ts';

export const DEFAULT_TIMEOUT_S = 5;

export class PluginClient {
  constructor(
    readonly location: PluginLocation,
    readonly timeoutMs: number = DEFAULT_TIMEOUT_S * 1000,
  ) {}

  private fail(method: string, what: string): CniError {
    const where = describeAddress(this.location.address);
    const plugin = this.location.plugin === where ? `Docker plugin at ${where}` : `Docker plugin ${this.location.plugin} at ${where}`;
    return new CniError(ErrorCode.TryAgainLater, `${plugin}: ${method} ${what}`, 'is the plugin running and healthy?');
  }

  call<M extends Method>(method: M, request: RequestOf<M>): ResponseOf<M> {
    let reply;
    try {
      reply = postSync(this.location.address, `/${method}`, JSON.stringify(request), this.timeoutMs);
    } catch (err) {
      if (err instanceof TransportError) throw this.fail(method, err.kind === 'timeout' ? `got ${err.message}` : `failed: ${err.message}`);
      throw err;
    }
    if (reply.status === 404) throw this.fail(method, 'is not implemented (HTTP 404): the plugin does not serve this call');
    let parsed: unknown;
    try {
      parsed = reply.body.trim() === '' ? {} : JSON.parse(reply.body);
    } catch {
      throw this.fail(method, `answered with something that is not JSON (HTTP ${reply.status}): ${JSON.stringify(reply.body.slice(0, 80))}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw this.fail(method, `answered with JSON that is not an object: ${reply.body.slice(0, 80)}`);
    const err = (parsed as ErrorReply).Err || (parsed as ErrorReply).Error;
    if (err) throw this.fail(method, `failed: ${err}`);
    if (reply.status < 200 || reply.status >= 300) throw this.fail(method, `failed with HTTP ${reply.status}`);
    return parsed as ResponseOf<M>;
  }

  /** Plugin.Activate: the plugin must implement `iface`. */
  activate(iface: 'NetworkDriver' | 'IpamDriver'): void {
    const r = this.call('Plugin.Activate', {});
    if (!Array.isArray(r.Implements) || !r.Implements.includes(iface)) {
      throw this.fail('Plugin.Activate', `says it implements ${JSON.stringify(r.Implements ?? [])}, not ${iface}`);
    }
  }
}

/** A call on the way out (DEL, network removal): a plugin's failure is logged, never thrown. */
export function bestEffort(log: Log, what: string, call: () => unknown): void {
  try {
    call();
  } catch (err) {
    if (!(err instanceof CniError)) throw err;
    log.warn(`${what}: ${err.msg}`);
  }
}
