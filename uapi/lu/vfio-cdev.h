/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VFIO definitions newer than Debian 12's linux-libc-dev (6.1): the device cdev
 * interface (bind to iommufd, attach a page table) and the DEV_ID hot-reset info.
 * Everything older comes from the system's <linux/vfio.h>; each addition is guarded
 * so that a newer system header wins without a redefinition.
 * Facts from shared/spec/luo-abi.md §4.3.
 */
#ifndef LU_UAPI_VFIO_CDEV_H
#define LU_UAPI_VFIO_CDEV_H

#include <linux/types.h>
#include <linux/vfio.h>

#ifndef VFIO_DEVICE_BIND_IOMMUFD
#define VFIO_DEVICE_BIND_FLAG_TOKEN (1 << 0)
struct vfio_device_bind_iommufd {
        __u32 argsz;
        __u32 flags;
        __s32 iommufd;
        __u32 out_devid;
        __aligned_u64 token_uuid_ptr;    /* with VFIO_DEVICE_BIND_FLAG_TOKEN; min argsz is 16 */
};
#define VFIO_DEVICE_BIND_IOMMUFD        _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif

#ifndef VFIO_DEVICE_ATTACH_IOMMUFD_PT
#define VFIO_DEVICE_ATTACH_PASID (1 << 0)
struct vfio_device_attach_iommufd_pt {
        __u32 argsz;
        __u32 flags;
        __u32 pt_id;                     /* in: IOAS/HWPT id; out: the HWPT actually attached */
        __u32 pasid;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT   _IO(VFIO_TYPE, VFIO_BASE + 19)

struct vfio_device_detach_iommufd_pt {
        __u32 argsz;
        __u32 flags;
        __u32 pasid;
};
#define VFIO_DEVICE_DETACH_IOMMUFD_PT   _IO(VFIO_TYPE, VFIO_BASE + 20)
#endif

#ifndef VFIO_PCI_HOT_RESET_FLAG_DEV_ID
#define VFIO_PCI_HOT_RESET_FLAG_DEV_ID        (1 << 0)
#define VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED  (1 << 1)
#endif

/*
 * VFIO_DEVICE_GET_INFO as the current kernel defines it: 6.1's struct vfio_device_info
 * stops at cap_offset (20 bytes); newer kernels pad it to 24. The kernel accepts any
 * argsz from offsetofend(num_irqs) = 16 on, so both work; we use the current layout.
 */
struct lu_vfio_device_info {
        __u32 argsz;
        __u32 flags;
        __u32 num_regions;
        __u32 num_irqs;
        __u32 cap_offset;
        __u32 pad;
};

/* Hot-reset entry in the DEV_ID form (the 6.1 header names the first field group_id). */
struct lu_vfio_pci_dependent_device {
        __u32 devid;
        __u16 segment;
        __u8  bus;
        __u8  devfn;
};

#endif
