import { readFileSync, writeSync } from '../kernel/fs.ts';
import { utf8 } from '../kernel/libc.ts';
import { decodeJson, parseNetConf, peekVersion, type NetConf } from './config.ts';
import { CniError, ErrorCode, asCniError } from './errors.ts';
import { parseEnv, type CniEnv } from './env.ts';
import { Log } from './log.ts';
import { lap, reportTiming, startTiming } from './timing.ts';
import { convertResult, type Result } from './result.ts';
import { CURRENT_VERSION, SUPPORTED_VERSIONS, atLeast, isSupportedVersion, type CniVersion } from './version.ts';

/** One invocation, parsed: what every handler is given. */
export interface Invocation {
  env: CniEnv;
  conf: NetConf;
  log: Log;
}

/** What a plugin implements; the skeleton does the protocol around it. */
export interface PluginHandlers {
  add(inv: Invocation): Result;
  del(inv: Invocation): void;
  check(inv: Invocation): void;
  gc(inv: Invocation): void;
  status(inv: Invocation): void;
}

export interface PluginIo {
  env: Record<string, string | undefined>;
  stdin: () => string;
  stdout: (text: string) => void;
}

function readStdin(): string {
  try {
    return readFileSync(0, 'utf8');
  } catch {
    return '';
  }
}

function writeStdout(text: string): void {
  let bytes = utf8(text);
  while (bytes.length > 0) bytes = bytes.subarray(writeSync(1, bytes));
}

const processIo: PluginIo = { env: process.env, stdin: readStdin, stdout: writeStdout };

/**
 * Runs one CNI invocation: env and stdin in, a result or an error JSON out.
 * Returns the exit code; nothing but the answer ever reaches stdout.
 */
export function runPlugin(name: string, handlers: PluginHandlers, io: PluginIo = processIo): number {
  startTiming();
  const log = new Log(name);
  let replyVersion: string = CURRENT_VERSION;
  let command = 'unknown';
  try {
    const env = parseEnv(io.env);
    command = env.command;
    if (env.command === 'VERSION') {
      // The answer does not depend on stdin, so it is not read: VERSION by hand on a terminal does not hang.
      io.stdout(JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }));
      return 0;
    }
    const raw = decodeJson(io.stdin());
    const asked = peekVersion(raw);
    if (isSupportedVersion(asked)) replyVersion = asked;
    const conf = parseNetConf(raw);
    log.toFile(conf.logFile);
    log.debug(`${env.command} container=${env.containerId} ifname=${env.ifname} netns=${env.netns}`);
    const inv: Invocation = { env, conf, log };
    lap('parse');
    switch (env.command) {
      case 'ADD': {
        const result = handlers.add(inv);
        io.stdout(JSON.stringify(convertResult(result, conf.cniVersion as CniVersion)));
        lap('result');
        return 0;
      }
      case 'DEL':
        handlers.del(inv);
        return 0;
      case 'CHECK':
        requireSince(conf.cniVersion, '0.4.0', 'CHECK');
        handlers.check(inv);
        return 0;
      case 'GC':
        requireSince(conf.cniVersion, '1.1.0', 'GC');
        handlers.gc(inv);
        return 0;
      case 'STATUS':
        requireSince(conf.cniVersion, '1.1.0', 'STATUS');
        handlers.status(inv);
        return 0;
    }
  } catch (thrown) {
    const err = asCniError(thrown);
    if (err.code === ErrorCode.Internal && thrown instanceof Error && thrown.stack) log.error(thrown.stack);
    else log.error(`code ${err.code}: ${err.msg}${err.details ? ` (${err.details})` : ''}`);
    io.stdout(JSON.stringify({ cniVersion: replyVersion, code: err.code, msg: err.msg, details: err.details }));
    return 1;
  } finally {
    reportTiming(command);
  }
}

function requireSince(version: string, since: CniVersion, command: string): void {
  if (!atLeast(version, since)) {
    throw new CniError(ErrorCode.IncompatibleVersion, `${command} needs cniVersion ${since} or later, the config says ${version}`);
  }
}
