/* The container's root, made inside its new mount namespace: the overlay, /proc, /sys, docker's
 * /dev, the binds and tmpfs asked for, then pivot_root into it. */
#ifndef KRD_SHIM_ROOTFS_H
#define KRD_SHIM_ROOTFS_H

void setup_rootfs(void);

#endif
