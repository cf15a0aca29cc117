// Users and groups as an image defines them: USER[:GROUP] (names or numbers) resolved against
// the image's own /etc/passwd and /etc/group, read without following links out of the root.
import fs from 'node:fs';
import path from 'node:path';
import { KrError } from '../util/errors.ts';

interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Lines of an /etc/passwd or /etc/group inside the root (never following links out of it). */
function readDbFile(root: string, file: string): string[][] {
  try {
    const p = path.join(root, file);
    if (fs.lstatSync(p).isSymbolicLink()) return [];
    return fs
      .readFileSync(p, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/** Resolves USER[:GROUP] (names or numbers) against the image's own passwd and group files. */
export function resolveUser(root: string, spec: string | undefined): { uid: number; gid: number; groups: number[]; home: string } {
  const [userPart, groupPart] = (spec || '0').split(':');
  const passwd = readDbFile(root, 'etc/passwd');
  const groupDb = readDbFile(root, 'etc/group');
  let account: Account | undefined;
  const byField = (i: number, v: string) => passwd.find((f) => f[i] === v);
  const row = /^\d+$/.test(userPart) ? byField(2, userPart) : byField(0, userPart);
  if (row) account = { name: row[0], uid: Number(row[2]), gid: Number(row[3]), home: row[5] || '/' };
  else if (/^\d+$/.test(userPart)) account = { name: '', uid: Number(userPart), gid: Number(userPart === '0' ? 0 : userPart), home: '/' };
  else throw new KrError('invalid', `unable to find user ${userPart}: no matching entries in the image's /etc/passwd`);
  let gid = account.gid;
  if (groupPart !== undefined) {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groupDb.find((f) => f[0] === groupPart);
      if (!g) throw new KrError('invalid', `unable to find group ${groupPart}: no matching entries in the image's /etc/group`);
      gid = Number(g[2]);
    }
  }
  // Supplementary groups: the ones listing the user by name (docker does the same).
  const groups = new Set<number>([gid]);
  if (account.name && groupPart === undefined) {
    for (const g of groupDb) if ((g[3] ?? '').split(',').includes(account.name)) groups.add(Number(g[2]));
  }
  return { uid: account.uid, gid, groups: [...groups], home: account.home };
}
