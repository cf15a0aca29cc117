// Applying one layer's entries onto the tree with overlay semantics (OCI image spec, "Applying
// changesets"): whiteouts delete lower paths, opaque markers hide a directory's lower content,
// later entries replace earlier ones. Whiteouts only ever hide content of *lower* layers, so
// their effect does not depend on where in the layer's tar they appear.
import { KrError } from '../../util/errors.ts';
import type { TarStreamEntry } from '../tar/tar-reader.ts';
import type { Spool } from './spool.ts';
import { components, inodeOf, newDir, pruneLower, type Node, type RootTree } from './tree.ts';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

export interface ApplyStats {
  entries: number;
  /** Entries dropped because their path or link target climbs out of the root. */
  skipped: number;
}

export async function applyLayer(tree: RootTree, spool: Spool, entries: AsyncIterable<TarStreamEntry>, layer: number): Promise<ApplyStats> {
  const stats: ApplyStats = { entries: 0, skipped: 0 };
  for await (const entry of entries) {
    stats.entries++;
    const h = entry.header;
    const parts = components(h.path);
    if (parts === null) {
      stats.skipped++;
      continue;
    }
    if (parts.length === 0) {
      // The root directory itself: only its metadata can change.
      if (h.type === 'dir') {
        tree.root.inode = { ...inodeOf(h, 0), emittedAs: null };
        tree.rootExplicit = true;
      }
      continue;
    }
    const name = parts[parts.length - 1];
    if (name.startsWith(WHITEOUT)) {
      applyWhiteout(tree, parts, name, layer);
      continue;
    }
    const parent = tree.parentOf(parts, layer, true)!;
    const existing = parent.children!.get(name);

    if (h.type === 'link') {
      const targetParts = components(h.linkname);
      if (targetParts === null || targetParts.length === 0) {
        stats.skipped++;
        continue;
      }
      const target = tree.lookup(targetParts);
      if (target === null) throw new KrError('corrupt', `hardlink ${h.path} points to ${h.linkname}, which does not exist`);
      if (target.children !== null) throw new KrError('corrupt', `hardlink ${h.path} points to directory ${h.linkname}`);
      if (target === existing) continue;
      parent.children!.set(name, { inode: target.inode, children: null, layer, touched: layer });
      continue;
    }

    if (h.type === 'dir') {
      if (existing && existing.children !== null) {
        // Re-declaring a directory changes its metadata and keeps what is inside.
        existing.inode = inodeOf(h, 0);
        existing.layer = layer;
      } else {
        parent.children!.set(name, newDir(inodeOf(h, 0), layer));
      }
      continue;
    }

    const node: Node = { inode: inodeOf(h, spool.size), children: null, layer, touched: layer };
    if (h.type === 'file') {
      for await (const piece of entry.data()) await spool.append(piece);
    }
    parent.children!.set(name, node);
  }
  return stats;
}

function applyWhiteout(tree: RootTree, parts: string[], name: string, layer: number): void {
  const parent = tree.parentOf(parts, layer, false);
  if (parent === null) return; // nothing below to hide
  if (name === OPAQUE) {
    pruneLower(parent, layer);
    return;
  }
  if (name.startsWith(WHITEOUT + WHITEOUT)) return; // other aufs metadata (.wh..wh.plnk...)
  const victimName = name.slice(WHITEOUT.length);
  const victim = parent.children!.get(victimName);
  if (!victim) return;
  if (victim.layer < layer && victim.touched < layer) parent.children!.delete(victimName);
  else if (victim.children !== null) pruneLower(victim, layer); // same-layer content survives
}
