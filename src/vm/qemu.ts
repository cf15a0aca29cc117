// The qemu command line of a pod: -M microvm with the legacy devices off, direct kernel boot,
// virtio-mmio devices only, user-mode networking (slirp) unless told otherwise.
import { accessSync, constants, readFileSync } from 'node:fs';
import { KrError } from '../util/errors.ts';

export type Accel = 'kvm' | 'tcg';

/**
 * kvm when /dev/kvm opens read-write AND the CPU advertises vmx/svm; tcg otherwise. The flag check
 * matters: on some machines of this kind /dev/kvm answers KVM_GET_API_VERSION but the host is itself a
 * guest without nested virtualisation, and a Linux guest hangs right after its real-mode setup code.
 * KRAUD_ACCEL=kvm|tcg overrides.
 */
export function chooseAccel(env: NodeJS.ProcessEnv = process.env): Accel {
  const forced = env.KRAUD_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return forced;
  if (forced) throw new KrError('invalid', `KRAUD_ACCEL must be kvm or tcg, not ${JSON.stringify(forced)}`);
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return /^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8')) ? 'kvm' : 'tcg';
  } catch {
    return 'tcg';
  }
}

/** The host TSC rate in kHz: the guest kernel's PIT calibration hangs under TCG now and then without it. */
export function tscKhz(): number | null {
  const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
  return m ? Math.round(Number(m[1]) * 1000) : null;
}

export interface Disk {
  file: string;
  serial: string;
  readonly: boolean;
}

export interface Forward {
  host: number;
  guest: number;
  proto: 'tcp' | 'udp';
}

export interface QemuOptions {
  accel: Accel;
  kernel: string;
  initrd: string;
  memoryMiB: number;
  cpus: number;
  disks: Disk[];
  /** Where the virtio console (kernel + init messages) goes; null: stderr. */
  consoleFile: string | null;
  /** Unix socket (listening, host side) for the kraud.io port; absent: no port. */
  ioSocket?: string;
  /**
   * 'user': slirp with these forwards (127.0.0.1 only; touches no host networking); 'tap': a tap
   * device the caller opened and passes on this fd (krd: a tap in the container's network
   * namespace, see native/krd-tapfd.c); 'none': no NIC.
   */
  network:
    | { mode: 'none' }
    | { mode: 'user'; mac: string; forwards: Forward[] }
    | { mode: 'tap'; mac: string; fd: number };
  /**
   * A second NIC only for the host to reach the guest (krd: vdocker): slirp with restrict=on, so
   * the guest gets nothing out of it but these forwards; `net` is its subnet, `guest` the address
   * the guest gives itself there.
   */
  control?: { mac: string; net: string; guest: string; forwards: Forward[] };
  quiet: boolean;
  /** virtiofs shares: the vhost-user socket of each share's virtiofsd. */
  shares?: { tag: string; socket: string }[];
  /**
   * NICs plugged in while the guest runs (krd: docker network connect): virtio-mmio cannot be
   * hot-plugged, so the machine gets PCIe with `slots` root ports (hp0…) and a QMP socket to plug
   * virtio-net-pci devices into them (src/runtime/vm/pod-nics.ts).
   */
  hotplug?: { qmp: string; slots: number };
}

export function qemuArgs(o: QemuOptions): string[] {
  const khz = tscKhz();
  const cmdline = ['console=hvc0', 'panic=-1', 'cryptomgr.notests', 'no_timer_check', 'noreplace-smp', 'i8042.noaux', 'i8042.nokbd'];
  if (o.quiet) cmdline.push('quiet', 'loglevel=0');
  if (khz) cmdline.push(`tsc_early_khz=${khz}`);
  // microvm's ACPI grants the guest no native PCIe control; without it pciehp sees no hot-plug
  if (o.hotplug) cmdline.push('pcie_ports=native');
  const shares = o.shares ?? [];
  // vhost-user (virtiofsd) needs guest RAM it can map (a shared memfd) and modern virtio-mmio
  const machine = `microvm,x-option-roms=off,pit=off,pic=off,isa-serial=off,rtc=off${shares.length ? ',memory-backend=mem' : ''}${o.hotplug ? ',pcie=on' : ''}`;
  const args = [
    '-M', machine,
    '-accel', o.accel,
    ...(o.accel === 'kvm' ? ['-cpu', 'host'] : []),
    '-m', String(o.memoryMiB),
    '-smp', String(o.cpus),
    '-nodefaults', '-no-user-config', '-no-reboot', '-display', 'none',
    '-kernel', o.kernel, '-initrd', o.initrd, '-append', cmdline.join(' '),
    '-device', 'virtio-serial-device',
    '-chardev', o.consoleFile ? `file,id=con,path=${o.consoleFile}` : 'stdio,id=con,signal=off',
    '-device', 'virtconsole,chardev=con',
  ];
  if (shares.length) {
    args.push('-object', `memory-backend-memfd,id=mem,size=${o.memoryMiB}M,share=on`, '-global', 'virtio-mmio.force-legacy=false');
    shares.forEach((sh, i) => args.push('-chardev', `socket,id=fs${i},path=${sh.socket}`, '-device', `vhost-user-fs-device,chardev=fs${i},tag=${sh.tag}`));
  }
  if (o.ioSocket) args.push('-chardev', `socket,id=io,path=${o.ioSocket}`, '-device', 'virtserialport,chardev=io,name=kraud.io');
  o.disks.forEach((d, i) => {
    args.push('-drive', `id=d${i},file=${d.file},format=raw,if=none${d.readonly ? ',readonly=on' : ''}`);
    args.push('-device', `virtio-blk-device,drive=d${i},serial=${d.serial}`);
  });
  if (o.network.mode === 'user') {
    const fwd = o.network.forwards.map((f) => `,hostfwd=${f.proto}:127.0.0.1:${f.host}-:${f.guest}`).join('');
    args.push('-netdev', `user,id=n0${fwd}`, '-device', `virtio-net-device,netdev=n0,mac=${o.network.mac}`);
  } else if (o.network.mode === 'tap') {
    if (!Number.isInteger(o.network.fd) || o.network.fd < 3) throw new KrError('invalid', `invalid tap fd: ${o.network.fd}`);
    args.push('-netdev', `tap,id=n0,fd=${o.network.fd}`, '-device', `virtio-net-device,netdev=n0,mac=${o.network.mac}`);
  }
  if (o.hotplug) {
    args.push('-qmp', `unix:${o.hotplug.qmp},server=on,wait=off`);
    for (let i = 0; i < o.hotplug.slots; i++) args.push('-device', `pcie-root-port,id=hp${i},chassis=1,slot=${i + 1}`);
  }
  if (o.control) {
    const c = o.control;
    const host = c.net.replace(/\.\d+\/\d+$/, '.2');
    const fwd = c.forwards.map((f) => `,hostfwd=${f.proto}:127.0.0.1:${f.host}-${c.guest}:${f.guest}`).join('');
    args.push('-netdev', `user,id=c0,restrict=on,net=${c.net},host=${host}${fwd}`, '-device', `virtio-net-device,netdev=c0,mac=${c.mac}`);
  }
  return args;
}
