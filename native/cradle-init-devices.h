/* The VM's devices: kernel modules, disks and ports found by their virtio names, and the disks'
 * mounts under RUN. */
#ifndef CRADLE_INIT_DEVICES_H
#define CRADLE_INIT_DEVICES_H
#include <stddef.h>

void load_modules(void);
/* /dev/vdX whose virtio-blk serial is `serial`. */
int find_disk(const char *serial, char *dev, size_t size);
/* The virtio-serial port named `name` (its name arrives from the host shortly after the port). */
int open_port(const char *name);
/* The image disks (erofs, serials kraud-img0…) at RUN/img/N, the tools disk at RUN/tools if any. */
void mount_images(void);
/* Host directories (virtiofs, one device per tag), mounted where krd-shim's --bind finds them. */
void mount_shares(void);

#endif
