import { appendFileSync, writeSync } from '../kernel/fs.ts';

/** Diagnostics: stderr always (the runtime logs it), and the config's logFile when it names one. Never stdout. */
export class Log {
  private file: string | undefined;
  readonly debugOn = process.env.CNM_LOG_LEVEL === 'debug';

  constructor(readonly plugin: string) {}

  toFile(path: string | undefined): void {
    this.file = path;
  }

  error(msg: string): void {
    this.write('error', msg);
  }

  info(msg: string): void {
    this.write('info', msg);
  }

  warn(msg: string): void {
    this.write('warn', msg);
  }

  debug(msg: string): void {
    if (this.debugOn) this.write('debug', msg);
  }

  private write(level: string, msg: string): void {
    const line = `${new Date().toISOString()} ${this.plugin} ${level}: ${msg}\n`;
    try {
      writeSync(2, line);
    } catch {
      // stderr closed: nothing else to tell
    }
    if (this.file) {
      try {
        appendFileSync(this.file, line, { mode: 0o600 });
      } catch {
        // an unwritable log file must not fail the invocation
      }
    }
  }
}
