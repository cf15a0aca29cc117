// Container names: docker's rule (two characters or more) and generated "adjective_noun" names.
import { randomInt } from 'node:crypto';
import { KrError } from '../../util/errors.ts';

const NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const ADJECTIVES = ['brave', 'calm', 'eager', 'fond', 'gentle', 'happy', 'keen', 'lucid', 'merry', 'nifty', 'quiet', 'sharp', 'tender', 'upbeat', 'vivid', 'witty'];
const NOUNS = ['babbage', 'curie', 'darwin', 'euler', 'fermi', 'gauss', 'hopper', 'kepler', 'lovelace', 'noether', 'pascal', 'ritchie', 'shannon', 'turing', 'volta', 'wiles'];

/** The name without its leading "/"; throws docker's 400 when it breaks the rule. */
export function checkName(name: string): string {
  if (!NAME.test(name)) throw new KrError('invalid', `Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return name.replace(/^\//, '');
}

/** A fresh generated name that `taken` does not know. */
export function generateName(taken: (name: string) => boolean): string {
  for (let i = 0; ; i++) {
    const base = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${NOUNS[randomInt(NOUNS.length)]}`;
    const name = i < 10 ? base : `${base}${i}`;
    if (!taken(name)) return name;
  }
}

/** docker's 409 for a name already taken: by the container `holder` when it is known. */
export function nameInUse(name: string, holder?: string): KrError {
  const by = holder ? ` by container "${holder}". You have to remove (or rename) that container to be able to reuse that name` : '';
  return new KrError('conflict', `Conflict. The container name "/${name}" is already in use${by}.`);
}
