// docker's PATH for a container whose image and request set none — one definition for bali run,
// bali build's RUN, krd's containers and the ns runtime.
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `env` (K=V entries) with docker's default PATH first when it has no PATH of its own. */
export function withDefaultPath(env: readonly string[]): string[] {
  return env.some((e) => e.startsWith('PATH=')) ? [...env] : [`PATH=${DEFAULT_PATH}`, ...env];
}
