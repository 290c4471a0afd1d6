/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* VFIO device fd helpers: device and interrupt information, turning every interrupt off. */
#pragma once

#include <stdint.h>

#include "lu/vfio-cdev.h"
#include "pci-addr.h"

/* vfio_device_get_info() - VFIO_DEVICE_GET_INFO with the current (24-byte) layout. */
int vfio_device_get_info(int fd, struct lu_vfio_device_info *ret);

/* vfio_device_get_irq_info() - VFIO_DEVICE_GET_IRQ_INFO for @index. */
int vfio_device_get_irq_info(int fd, uint32_t index, struct vfio_irq_info *ret);

/*
 * vfio_device_set_irqs_eventfd() - enable @n triggers of @index signalling @eventfds
 * (DATA_EVENTFD|ACTION_TRIGGER, start 0). An fd of -1 leaves that vector unassigned.
 */
int vfio_device_set_irqs_eventfd(int fd, uint32_t index, const int *eventfds, uint32_t n);

/*
 * vfio_device_disable_irqs() - turn off every interrupt index of a PCI device
 * (DATA_NONE|ACTION_TRIGGER, count 0: INTx, MSI, MSI-X, ERR, REQ) as LUO requires before
 * the freeze. Indexes the device does not have or has not enabled are not errors.
 * Returns the number of indexes that were switched off, or a negative errno.
 */
int vfio_device_disable_irqs(int fd);

/* vfio_device_bind_iommufd() - VFIO_DEVICE_BIND_IOMMUFD; *ret_devid may be NULL. */
int vfio_device_bind_iommufd(int fd, int iommufd, uint32_t *ret_devid);

/* vfio_device_attach_pt() - VFIO_DEVICE_ATTACH_IOMMUFD_PT to an IOAS/HWPT; *ret_pt_id may be NULL. */
int vfio_device_attach_pt(int fd, uint32_t pt_id, uint32_t *ret_pt_id);

/* iommufd_ioas_alloc() - IOMMU_IOAS_ALLOC on an open /dev/iommu fd. */
int iommufd_ioas_alloc(int iommufd, uint32_t *ret_ioas_id);
