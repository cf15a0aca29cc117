// The qemu command line without running qemu: the devices, the accelerator override, the seams.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseAccel, qemuArgs, type QemuOptions } from './qemu.ts';

const base: QemuOptions = {
  accel: 'tcg',
  kernel: '/k',
  initrd: '/i',
  memoryMiB: 256,
  cpus: 2,
  disks: [{ file: '/d/config.img', serial: 'kraud-config', readonly: true }],
  consoleFile: '/d/console.log',
  ioSocket: '/s/io.sock',
  network: { mode: 'user', mac: '52:54:00:12:34:56', forwards: [{ host: 8080, guest: 80, proto: 'tcp' }] },
  quiet: true,
};
const after = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag);

test('microvm without legacy devices, virtio-mmio disks by serial, slirp forwards on 127.0.0.1 only', () => {
  const a = qemuArgs(base);
  assert.deepEqual(after(a, '-M'), ['microvm,x-option-roms=off,pit=off,pic=off,isa-serial=off,rtc=off']);
  assert.deepEqual(after(a, '-accel'), ['tcg']);
  assert.ok(a.includes('-nodefaults') && a.includes('-no-user-config') && a.includes('-no-reboot'));
  assert.deepEqual([after(a, '-m')[0], after(a, '-smp')[0]], ['256', '2']);
  assert.ok(after(a, '-device').includes('virtio-blk-device,drive=d0,serial=kraud-config'));
  assert.ok(after(a, '-drive')[0].endsWith(',readonly=on'));
  assert.deepEqual(after(a, '-netdev'), ['user,id=n0,hostfwd=tcp:127.0.0.1:8080-:80']);
  assert.ok(!a.some((x) => x.includes('pci')));
  assert.match(after(a, '-append')[0], /console=hvc0 .*cryptomgr\.notests.* quiet/);
});

test('a tap on an fd (krd bridge networking) beside a restricted control NIC, and virtiofs shares', () => {
  const control = { mac: '52:54:00:00:00:02', net: '169.254.253.0/24', guest: '169.254.253.15', forwards: [{ host: 4000, guest: 1, proto: 'tcp' as const }] };
  const a = qemuArgs({ ...base, accel: 'kvm', network: { mode: 'tap', mac: '52:54:00:00:00:01', fd: 3 }, control, shares: [{ tag: 'v0', socket: '/s/fs.sock' }] });
  assert.deepEqual(after(a, '-netdev'), ['tap,id=n0,fd=3', 'user,id=c0,restrict=on,net=169.254.253.0/24,host=169.254.253.2,hostfwd=tcp:127.0.0.1:4000-169.254.253.15:1']);
  assert.ok(after(a, '-device').includes('virtio-net-device,netdev=c0,mac=52:54:00:00:00:02'));
  assert.deepEqual(after(a, '-cpu'), ['host']);
  assert.match(after(a, '-M')[0], /,memory-backend=mem$/);
  assert.ok(after(a, '-object').includes('memory-backend-memfd,id=mem,size=256M,share=on'));
  assert.ok(after(a, '-device').includes('vhost-user-fs-device,chardev=fs0,tag=v0'));
  assert.throws(() => qemuArgs({ ...base, network: { mode: 'tap', mac: '52:54:00:00:00:01', fd: 0 } }), /invalid tap fd/);
});

test('hot-plug: PCIe on, root ports hp0… for virtio-net-pci, a QMP socket, native PCIe control for the guest', () => {
  const a = qemuArgs({ ...base, hotplug: { qmp: 'qmp.sock', slots: 2 } });
  assert.match(after(a, '-M')[0], /,pcie=on$/);
  assert.deepEqual(after(a, '-qmp'), ['unix:qmp.sock,server=on,wait=off']);
  assert.deepEqual(after(a, '-device').filter((d) => d.startsWith('pcie-root-port')), ['pcie-root-port,id=hp0,chassis=1,slot=1', 'pcie-root-port,id=hp1,chassis=1,slot=2']);
  assert.match(after(a, '-append')[0], / pcie_ports=native/);
});

test('KRAUD_ACCEL forces the accelerator; anything else is refused', () => {
  assert.equal(chooseAccel({ KRAUD_ACCEL: 'tcg' }), 'tcg');
  assert.equal(chooseAccel({ KRAUD_ACCEL: 'kvm' }), 'kvm');
  assert.throws(() => chooseAccel({ KRAUD_ACCEL: 'hvf' }), /KRAUD_ACCEL must be kvm or tcg/);
  assert.match(chooseAccel({}), /^(kvm|tcg)$/);
});
