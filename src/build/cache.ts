// The build cache: one directory per step layer (an overlay upper dir), one record per step
// key (the state after that step), and extracted base images. Keys are hashes of the parent's
// key, the instruction with its final values, and the step's inputs, so an unchanged step is
// found again and a change invalidates it and everything after it. Writes are atomic (temp
// dir or file, then rename): a failed or killed step leaves nothing that looks finished.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ContainerConfig } from '../image/types.ts';

export interface StepState {
  /** Layer dirs, bottom first: a base rootfs dir, then step layers (paths relative to the cache root). */
  layers: string[];
  config: ContainerConfig;
  /** SHELL for shell-form commands. */
  shell: string[];
  /** One entry per step, as the image config's history records it. */
  history: { created_by: string; empty_layer?: boolean }[];
}

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KRAUD_BUILD_CACHE) return env.KRAUD_BUILD_CACHE;
  const cache = env.XDG_CACHE_HOME || path.join(env.HOME || os.homedir(), '.cache');
  return path.join(cache, 'kraud', 'build');
}

export function hashKey(...parts: unknown[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? p : JSON.stringify(p)).update('\0');
  return h.digest('hex');
}

export class BuildCache {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
    for (const d of ['l', 's', 'b', 'tmp']) fs.mkdirSync(path.join(root, d), { recursive: true });
  }

  lookup(key: string): StepState | null {
    try {
      const state = JSON.parse(fs.readFileSync(path.join(this.root, 's', `${key}.json`), 'utf8')) as StepState;
      // A record is only good while all its layers are still there.
      return state.layers.every((l) => fs.existsSync(path.join(this.root, l))) ? state : null;
    } catch {
      return null;
    }
  }

  record(key: string, state: StepState): void {
    const file = path.join(this.root, 's', `${key}.json`);
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state));
    fs.renameSync(tmp, file);
  }

  /** A fresh scratch area for a step: its upper dir, overlay work dir and mount point. */
  scratch(): { dir: string; diff: string; work: string; merged: string } {
    const dir = fs.mkdtempSync(path.join(this.root, 'tmp', 'step-'));
    const s = { dir, diff: path.join(dir, 'diff'), work: path.join(dir, 'work'), merged: path.join(dir, 'merged') };
    for (const d of [s.diff, s.work, s.merged]) fs.mkdirSync(d);
    return s;
  }

  /** Moves a finished step's upper dir into the cache; returns its layer path (relative). */
  keepLayer(key: string, diff: string): string {
    const rel = path.join('l', key.slice(0, 16));
    const dest = path.join(this.root, rel);
    if (!fs.existsSync(dest)) fs.renameSync(diff, dest);
    return rel;
  }

  /** The directory of an extracted base image (relative), or null when not extracted yet. */
  base(id: string): string | null {
    const rel = path.join('b', id.slice(0, 24));
    return fs.existsSync(path.join(this.root, rel)) ? rel : null;
  }

  /**
   * Extracts a base image with `fill` into a temp dir, renamed into place under the id `fill`
   * returns once complete (the id may only be known at the end, e.g. a download's digest).
   */
  async addBase(fill: (dir: string) => Promise<string>): Promise<string> {
    const tmp = fs.mkdtempSync(path.join(this.root, 'tmp', 'base-'));
    try {
      const id = await fill(tmp);
      const rel = path.join('b', id.slice(0, 24));
      if (!fs.existsSync(path.join(this.root, rel))) fs.renameSync(tmp, path.join(this.root, rel));
      return rel;
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** Small JSON records beside the cache's entries (base image facts, outputs). */
  readMeta<T>(name: string): T | null {
    try {
      return JSON.parse(fs.readFileSync(path.join(this.root, 's', `${name}.meta.json`), 'utf8')) as T;
    } catch {
      return null;
    }
  }

  writeMeta(name: string, value: unknown): void {
    const file = path.join(this.root, 's', `${name}.meta.json`);
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(value));
    fs.renameSync(tmp, file);
  }

  discard(dir: string): void {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
