// What every CLI shares: results on stdout, messages on stderr, one line per error, exit codes.
//   0 ok · 1 the operation failed (bad input, verification failed) · 2 usage error
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { KrError } from '../util/errors.ts';

export class UsageError extends Error {}

/** Marks an error with the exit code the program should end with (bali run: 125, like docker run). */
export function withExitCode<T>(err: T, code: number): T {
  if (err && typeof err === 'object') (err as { exitCode?: number }).exitCode = code;
  return err;
}

export function say(message: string): void {
  process.stderr.write(message + '\n');
}

export function result(line: string): void {
  process.stdout.write(line + '\n');
}

/** parseArgs with strict checking, turning its errors into one-line usage errors. */
export function parse<T extends ParseArgsConfig['options']>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]}\nusage: ${usage}`);
  }
}

/** Runs a CLI's main function and maps failures to a one-line message and an exit code. */
export async function runCli(program: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (err) {
    if (err instanceof UsageError) {
      say(`${program}: ${err.message}`);
      process.exitCode = 2;
    } else if (err instanceof KrError) {
      say(`${program}: ${err.message}`);
      process.exitCode = (err as KrError & { exitCode?: number }).exitCode ?? 1;
    } else {
      const e = err as Error;
      say(`${program}: ${e && e.message ? e.message.split('\n')[0] : String(err)}`);
      if (process.env.KRAUD_DEBUG) say(String(e && e.stack));
      process.exitCode = (e as Error & { exitCode?: number })?.exitCode ?? 1;
    }
  }
}
