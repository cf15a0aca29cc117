// Registry credentials the way the docker CLI stores them: $DOCKER_CONFIG/config.json (or
// ~/.docker/config.json), "auths" keyed by host, "https://host" or, for Docker Hub, the legacy
// "https://index.docker.io/v1/". Credential helpers (credsStore/credHelpers) are not consulted.
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KrError } from '../../util/errors.ts';
import { DOCKER_HUB } from '../reference.ts';

export interface Credentials {
  username: string;
  password: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
}

const HUB_ALIASES = ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json');
}

/** "https://host:5000/v1/" → "host:5000", Docker Hub's many names → "docker.io". */
function normalizeKey(key: string): string {
  const bare = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
  return HUB_ALIASES.includes(bare) ? DOCKER_HUB : bare;
}

function decode(entry: AuthEntry, key: string): Credentials | undefined {
  if (entry.auth) {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon < 0) throw new KrError('invalid', `docker config: "auth" for ${key} is not base64 of user:password`);
    return { username: text.slice(0, colon), password: text.slice(colon + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}

/** Credentials for a registry (as named in references: "docker.io", "127.0.0.1:5000"), if configured. */
export async function findCredentials(registry: string, env: NodeJS.ProcessEnv = process.env): Promise<Credentials | undefined> {
  const file = dockerConfigPath(env);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined; // no config: anonymous
  }
  let doc: { auths?: Record<string, AuthEntry> };
  try {
    doc = JSON.parse(text);
  } catch {
    throw new KrError('invalid', `docker config ${file} is not valid JSON`);
  }
  const want = normalizeKey(registry);
  for (const [key, entry] of Object.entries(doc.auths ?? {})) {
    if (normalizeKey(key) === want && entry && typeof entry === 'object') {
      const creds = decode(entry, key);
      if (creds) return creds;
    }
  }
  return undefined;
}
