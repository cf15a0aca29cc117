// Where bali's signing key lives, as in the original (identitykit's file vault):
// `$IDENTITYKIT_PATH` (default ~/.identitykit), file `bali/ed25519.secret`, mode 0400, holding
// the secret string. `IDENTITYKIT_SECRET=<secret string>` in the environment replaces the file.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KrError, withContext } from '../util/errors.ts';
import { publicKeyFromSeed } from './ed25519ph.ts';
import { decodeKeyString, encodeKeyString } from './key-string.ts';

export interface SigningKey {
  seed: Uint8Array;
  publicKey: Uint8Array;
  /** The identity string ("c…") others pass to --identity. */
  identity: string;
}

export function keyFromSecretString(secret: string): SigningKey {
  const seed = decodeKeyString(secret, 'secret', 32);
  const publicKey = publicKeyFromSeed(seed);
  return { seed, publicKey, identity: encodeKeyString('identity', publicKey) };
}

export function secretString(key: SigningKey): string {
  return encodeKeyString('secret', key.seed);
}

export function parseIdentity(text: string): Uint8Array {
  return decodeKeyString(text, 'identity', 32);
}

export function identityString(publicKey: Uint8Array): string {
  return encodeKeyString('identity', publicKey);
}

export function keyFilePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.IDENTITYKIT_PATH || path.join(env.HOME || os.homedir(), '.identitykit');
  return path.join(base, 'bali', 'ed25519.secret');
}

/** Creates a new key file; refuses to replace one that exists. */
export function createKey(env: NodeJS.ProcessEnv = process.env): { key: SigningKey; file: string } {
  const file = keyFilePath(env);
  let seed: Uint8Array;
  do seed = new Uint8Array(randomBytes(32));
  while (seed.every((b) => b === seed[0]));
  const key = keyFromSecretString(encodeKeyString('secret', seed));
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    // 'wx' fails if the file exists: an existing key is never overwritten, even in a race.
    fs.writeFileSync(file, secretString(key), { mode: 0o400, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KrError('conflict', `a key already exists at ${file}; not overwriting it`);
    throw withContext(err, `cannot write key ${file}`);
  }
  return { key, file };
}

/** The local signing key: IDENTITYKIT_SECRET, else the key file. */
export function loadKey(env: NodeJS.ProcessEnv = process.env): SigningKey {
  if (env.IDENTITYKIT_SECRET) {
    try {
      return keyFromSecretString(env.IDENTITYKIT_SECRET);
    } catch (err) {
      throw withContext(err, 'IDENTITYKIT_SECRET');
    }
  }
  const file = keyFilePath(env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new KrError('not-found', `no signing key at ${file} (run 'bali keygen')`);
    throw withContext(err, `cannot read key ${file}`);
  }
  try {
    return keyFromSecretString(text);
  } catch (err) {
    throw withContext(err, file);
  }
}

/** `bali id` semantics: the local key, created first when there is none. */
export function loadOrCreateKey(env: NodeJS.ProcessEnv = process.env): SigningKey {
  if (env.IDENTITYKIT_SECRET || fs.existsSync(keyFilePath(env))) return loadKey(env);
  try {
    return createKey(env).key;
  } catch (err) {
    if (err instanceof KrError && err.kind === 'conflict') return loadKey(env); // another process just made it
    throw err;
  }
}

/** Identities from --identity values and an --identity-file (one a line; blank lines and # comments skipped). */
export function readTrustedIdentities(ids: string[], files: string[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const id of ids) out.push(parseIdentity(id));
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw withContext(err, `cannot read identity file ${file}`);
    }
    text.split('\n').forEach((line, i) => {
      const t = line.trim();
      if (!t || t.startsWith('#')) return;
      try {
        out.push(parseIdentity(t));
      } catch (err) {
        throw withContext(err, `${file}:${i + 1}`);
      }
    });
  }
  return out;
}
