// docker's PATH for a container whose image and request set none — one definition for bali run,
// bali build's RUN, krd's containers and the ns runtime.
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `env` (K=V entries) with docker's default PATH first when it has no PATH of its own. */
export function withDefaultPath(env: readonly string[]): string[] {
  return env.some((e) => e.startsWith('PATH=')) ? [...env] : [`PATH=${DEFAULT_PATH}`, ...env];
}

/** K=V entries as a map (an entry without "=" is a name with an empty value). */
export function envMap(env: readonly string[]): Map<string, string> {
  return new Map(env.map((e) => (e.includes('=') ? [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)] : [e, ''])));
}
