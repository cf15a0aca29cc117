// The image config inside a flattened rootfs tar, without adding a file to the rootfs: the tar
// starts with a PAX global header (typeflag 'g', name "pax_global_header") holding one record
// `KRAUD.image.config=<JSON>`. GNU tar and bsdtar skip unknown global keywords silently.
import type { Readable } from 'node:stream';
import type { ContainerConfig, ImageConfigFile } from './types.ts';
import { decodeBlock, decodePaxRecords } from './tar/tar-header.ts';
import { encodePaxGlobalHeader } from './pax-global.ts';
import { KrError } from '../util/errors.ts';
import { peek } from './layer-stream.ts';

export const CONFIG_RECORD = 'KRAUD.image.config';

/** What a container needs from the image config to start. */
export interface ImageConfigHeader {
  architecture: string;
  os: string;
  variant?: string;
  config: ContainerConfig;
}

export function configHeaderOf(cfg: ImageConfigFile): ImageConfigHeader {
  const out: ImageConfigHeader = { architecture: cfg.architecture, os: cfg.os, config: cfg.config ?? {} };
  if (cfg.variant) out.variant = cfg.variant;
  return out;
}

/** The global header block plus its padded records (the config and any `extra`): prepend it to a tar. */
export function encodeConfigHeader(cfg: ImageConfigFile | ImageConfigHeader, extra: Record<string, string> = {}): Buffer {
  return encodePaxGlobalHeader({ [CONFIG_RECORD]: JSON.stringify(configHeaderOf(cfg as ImageConfigFile)), ...extra });
}

function parseFromBytes(first: Buffer): { config: ImageConfigHeader | null; needed: number } {
  if (first.length < 512) return { config: null, needed: 512 };
  if (first[156] !== 0x67 /* 'g' */) return { config: null, needed: 0 };
  const { header } = decodeBlock(first.subarray(0, 512));
  const needed = 512 + header.size;
  if (first.length < needed) return { config: null, needed };
  const value = decodePaxRecords(first.subarray(512, needed)).get(CONFIG_RECORD);
  if (!value) return { config: null, needed: 0 };
  try {
    return { config: JSON.parse(value.toString('utf8')) as ImageConfigHeader, needed: 0 };
  } catch {
    throw new KrError('corrupt', `${CONFIG_RECORD} record is not valid JSON`);
  }
}

/**
 * The config carried by a tar's leading global header, or null when there is none.
 * Given a Readable (an uncompressed tar stream), the bytes looked at are pushed back, so the
 * stream can still be read from its start afterwards.
 */
export async function readConfigHeader(input: Buffer | Readable): Promise<ImageConfigHeader | null> {
  if (Buffer.isBuffer(input)) {
    if (input.length < 512) return null;
    const r = parseFromBytes(input);
    if (r.needed > input.length) throw new KrError('corrupt', 'tar ends inside its global header (pass more of its first bytes)');
    return r.config;
  }
  // Read ahead (the bytes are pushed back, so the stream still starts at the header).
  let head = await peek(input, 512);
  if (head.length < 512) return null;
  let r = parseFromBytes(head);
  if (r.needed > 16 * 1024 * 1024) throw new KrError('corrupt', 'tar global header is implausibly large');
  if (r.needed > head.length) {
    head = await peek(input, r.needed);
    if (head.length < r.needed) throw new KrError('corrupt', 'tar ends inside its global header');
    r = parseFromBytes(head);
  }
  return r.config;
}

