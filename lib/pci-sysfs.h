/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A PCI device's place in sysfs: whether it is an SR-IOV virtual function, which driver it is
 * bound to, and binding it to vfio-pci (driver_override, then the driver's bind file). The
 * PCI preservation series leaves binding a preserved device after the kexec to userspace and
 * cannot preserve VFs (spec §8, "out of tree"). @sysfs is the sysfs mount ("/sys"; tests pass
 * a directory of their own).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* pci_is_virtfn() - 1 if <sysfs>/bus/pci/devices/<bdf>/physfn exists (a VF), 0 if not, -errno if the device is unknown. */
int pci_is_virtfn(const char *sysfs, const char *bdf);

/*
 * pci_driver_name() - the driver @bdf is bound to, into @buf: 1 when bound, 0 when not (buf
 * empty), -errno if the device is unknown.
 */
int pci_driver_name(const char *sysfs, const char *bdf, char *buf, size_t size);

/*
 * pci_bind_vfio_pci() - bind @bdf to vfio-pci: writes "vfio-pci" to its driver_override (so
 * that no other driver takes it) and @bdf to the driver's bind file. 0 when bound (or already
 * bound to vfio-pci), -EBUSY when another driver has it (it is never unbound from one: that
 * driver's probe has reset the device already), -errno when a write fails (-EROFS in a unit
 * whose /sys is read-only, -ENODEV without vfio-pci).
 */
int pci_bind_vfio_pci(const char *sysfs, const char *bdf);
