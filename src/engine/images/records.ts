// Image records in the state database: image (config digest → manifest), tags and repo
// digests pointing at it. Names are stored canonical ("docker.io/library/alpine:latest").
import type { StateDb } from '../state/db.ts';

export interface ImageRow {
  id: string;
  manifest_digest: string;
  size: number;
  created: string | null;
  added: number;
  source: string;
}

export interface NewImage {
  id: string;
  manifestDigest: string;
  size: number;
  created?: string;
  source: 'pull' | 'load' | 'bali' | 'commit';
}

export class ImageRecords {
  private readonly state: StateDb;

  constructor(state: StateDb) {
    this.state = state;
  }

  /** Adds an image (if new) and points tags/digests at it, in one transaction; a tag moves. */
  put(image: NewImage, tags: string[], digests: string[]): void {
    const db = this.state.db;
    const now = Date.now();
    this.state.transaction(() => {
      const existing = db.prepare('SELECT manifest_digest FROM images WHERE id = ?').get(image.id) as { manifest_digest: string } | undefined;
      if (!existing) {
        db.prepare('INSERT INTO images (id, manifest_digest, size, created, added, source) VALUES (?, ?, ?, ?, ?, ?)').run(
          image.id, image.manifestDigest, image.size, image.created ?? null, now, image.source,
        );
      }
      for (const t of tags) {
        db.prepare('INSERT INTO image_tags (ref, image_id, tagged) VALUES (?, ?, ?) ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id, tagged = excluded.tagged').run(t, image.id, now);
      }
      for (const d of digests) {
        db.prepare('INSERT INTO image_digests (ref, image_id) VALUES (?, ?) ON CONFLICT(ref) DO UPDATE SET image_id = excluded.image_id').run(d, image.id);
      }
    });
  }

  get(id: string): ImageRow | undefined {
    return this.state.db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
  }

  all(): ImageRow[] {
    return this.state.db.prepare('SELECT * FROM images ORDER BY added DESC').all() as unknown as ImageRow[];
  }

  count(): number {
    return Number((this.state.db.prepare('SELECT COUNT(*) AS n FROM images').get() as { n: number }).n);
  }

  /** Image IDs starting with a hex prefix (docker's short IDs). */
  byPrefix(hexPrefix: string): string[] {
    return (this.state.db.prepare('SELECT id FROM images WHERE id LIKE ?').all(`sha256:${hexPrefix}%`) as { id: string }[]).map((r) => r.id);
  }

  byTag(ref: string): string | undefined {
    return (this.state.db.prepare('SELECT image_id FROM image_tags WHERE ref = ?').get(ref) as { image_id: string } | undefined)?.image_id;
  }

  byDigest(ref: string): string | undefined {
    return (this.state.db.prepare('SELECT image_id FROM image_digests WHERE ref = ?').get(ref) as { image_id: string } | undefined)?.image_id;
  }

  tagsOf(id: string): string[] {
    return (this.state.db.prepare('SELECT ref FROM image_tags WHERE image_id = ? ORDER BY tagged, ref').all(id) as { ref: string }[]).map((r) => r.ref);
  }

  digestsOf(id: string): string[] {
    return (this.state.db.prepare('SELECT ref FROM image_digests WHERE image_id = ? ORDER BY ref').all(id) as { ref: string }[]).map((r) => r.ref);
  }

  lastTagTime(id: string): number | undefined {
    const r = this.state.db.prepare('SELECT MAX(tagged) AS t FROM image_tags WHERE image_id = ?').get(id) as { t: number | null };
    return r.t ?? undefined;
  }

  untag(ref: string): boolean {
    return Number(this.state.db.prepare('DELETE FROM image_tags WHERE ref = ?').run(ref).changes) > 0;
  }

  untagDigest(ref: string): boolean {
    return Number(this.state.db.prepare('DELETE FROM image_digests WHERE ref = ?').run(ref).changes) > 0;
  }

  /** A container created from the image, running ones first. */
  containerUsing(id: string): { id: string; running: boolean } | undefined {
    const row = this.state.db.prepare("SELECT id, state FROM containers WHERE image_id = ? ORDER BY state IN ('running', 'paused', 'restarting') DESC LIMIT 1").get(id) as
      | { id: string; state: string }
      | undefined;
    return row ? { id: row.id, running: ['running', 'paused', 'restarting'].includes(row.state) } : undefined;
  }

  /** Removes the image with its tags and digests. */
  remove(id: string): void {
    this.state.db.prepare('DELETE FROM images WHERE id = ?').run(id);
  }

  /** Manifest digests of every image (what the blob store must keep). */
  manifestDigests(): Set<string> {
    return new Set((this.state.db.prepare('SELECT manifest_digest FROM images').all() as { manifest_digest: string }[]).map((r) => r.manifest_digest));
  }
}
