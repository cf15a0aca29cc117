// The config disk: the launch spec JSON (for vdocker) plus the same spec flattened into
// `KEY\0VALUE\0` pairs (the init plan) that the C init reads without a JSON parser.
// Format and key meanings: src/vm/README.md and native/cradle-init-plan.c (parse_plan).
import type { LaunchSpec } from './launch-spec.ts';

export function initPlan(spec: LaunchSpec): Buffer {
  const pairs: [string, string][] = [['hostname', spec.hostname]];
  if (spec.network.mode === 'static') {
    pairs.push(['net', 'static'], ['mac', spec.network.mac], ['addr', spec.network.address]);
    if (spec.network.gateway) pairs.push(['gw', spec.network.gateway]);
    for (const d of spec.network.dns) pairs.push(['dns', d]);
  }
  if (spec.control) pairs.push(['ctlmac', spec.control.mac], ['ctladdr', spec.control.address]);
  if (spec.etc?.hosts !== undefined) pairs.push(['hosts', spec.etc.hosts]);
  if (spec.etc?.resolvConf !== undefined) pairs.push(['resolv', spec.etc.resolvConf]);
  pairs.push(['images', String(spec.images.length)]);
  for (const a of spec.vdocker?.argv ?? []) pairs.push(['vdocker', a]);
  // each shared host directory is mounted once (virtiofs) and bound into the containers using it
  // (read-only in the guest when every use of it is; the host enforces read-only too, ./virtiofs.ts)
  const writable = new Map<string, boolean>();
  for (const sh of spec.shares ?? []) writable.set(sh.tag, !sh.readonly);
  for (const c of spec.containers) for (const m of c.mounts) if (m.type === 'share') writable.set(m.tag, (writable.get(m.tag) ?? false) || !m.readonly);
  for (const [t, w] of writable) pairs.push(['share', w ? t : `${t}:ro`]);
  for (const c of spec.containers) {
    pairs.push(['ctr', c.name], ['image', String(c.image)], ['cwd', c.cwd], ['uid', String(c.uid)], ['gid', String(c.gid)]);
    pairs.push(['groups', c.groups.join(',') || String(c.gid)], ['caps', c.caps], ['restart', c.restartPolicy.name]);
    pairs.push(['retries', String(c.restartPolicy.maximumRetryCount ?? 0)]);
    if (c.hostname) pairs.push(['chost', c.hostname]);
    if (c.tty) pairs.push(['tty', '1']);
    if (c.openStdin) pairs.push(['stdin', '1']);
    if (c.readonlyRootfs) pairs.push(['readonly', '1']);
    for (const a of c.args) pairs.push(['arg', a]);
    for (const e of c.env) pairs.push(['env', e]);
    for (const m of c.mounts) {
      if (m.type === 'tmpfs') pairs.push(['tmpfs', m.target]);
      else pairs.push(['bind', `/run/cradle/shares/${m.tag}:${m.target}${m.readonly ? ':ro' : ''}`]);
    }
  }
  return Buffer.from(pairs.map(([k, v]) => `${k}\0${v}\0`).join(''));
}

/** The bytes of the config disk (a multiple of 512, as block devices need). */
export function configDisk(spec: LaunchSpec): Buffer {
  const json = Buffer.from(JSON.stringify(spec));
  const plan = initPlan(spec);
  const head = Buffer.from(`kraud-launch 1\n${json.length} ${plan.length}\n`);
  const size = head.length + json.length + plan.length;
  const out = Buffer.alloc(Math.ceil(size / 512) * 512);
  Buffer.concat([head, json, plan]).copy(out);
  return out;
}
