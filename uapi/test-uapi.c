/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Compile-time checks of every struct size, field offset and ioctl number that
 * shared/spec/luo-abi.md gives for the headers in uapi/. If this file compiles, the
 * layouts match the kernel ABI; the runtime part only proves the test ran.
 */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>

#include "linux/liveupdate.h"
#include "lu/iommufd.h"
#include "lu/liveupdate-v4.h"
#include "lu/vfio-cdev.h"

#define CHECK_SIZE(t, n)      static_assert(sizeof(t) == (n), #t " size")
#define CHECK_ALIGN(t, n)     static_assert(_Alignof(t) == (n), #t " alignment")
#define CHECK_OFF(t, f, n)    static_assert(offsetof(t, f) == (n), #t "." #f " offset")
#define CHECK_CMD(c, n)       static_assert((c) == (n), #c " number")

/* §1.4 upstream command numbers */
CHECK_CMD(LIVEUPDATE_IOCTL_CREATE_SESSION,     0xBA00);
CHECK_CMD(LIVEUPDATE_IOCTL_RETRIEVE_SESSION,   0xBA01);
CHECK_CMD(LIVEUPDATE_SESSION_PRESERVE_FD,      0xBA40);
CHECK_CMD(LIVEUPDATE_SESSION_RETRIEVE_FD,      0xBA41);
CHECK_CMD(LIVEUPDATE_SESSION_FINISH,           0xBA42);
CHECK_CMD(LIVEUPDATE_SESSION_GET_NAME,         0xBA43);
CHECK_CMD(LIVEUPDATE_SESSION_RETRIEVE_INTO_FD, 0xBA44);
static_assert(LIVEUPDATE_SESSION_NAME_LENGTH == 64, "name length");

/* §1.5 upstream layouts */
CHECK_SIZE(struct liveupdate_ioctl_create_session, 72);
CHECK_ALIGN(struct liveupdate_ioctl_create_session, 4);
CHECK_OFF(struct liveupdate_ioctl_create_session, size, 0);
CHECK_OFF(struct liveupdate_ioctl_create_session, fd, 4);
CHECK_OFF(struct liveupdate_ioctl_create_session, name, 8);
CHECK_SIZE(struct liveupdate_ioctl_retrieve_session, 72);
CHECK_ALIGN(struct liveupdate_ioctl_retrieve_session, 4);
CHECK_OFF(struct liveupdate_ioctl_retrieve_session, fd, 4);
CHECK_OFF(struct liveupdate_ioctl_retrieve_session, name, 8);
CHECK_SIZE(struct liveupdate_session_preserve_fd, 16);
CHECK_ALIGN(struct liveupdate_session_preserve_fd, 8);
CHECK_OFF(struct liveupdate_session_preserve_fd, fd, 4);
CHECK_OFF(struct liveupdate_session_preserve_fd, token, 8);
CHECK_SIZE(struct liveupdate_session_retrieve_fd, 16);
CHECK_ALIGN(struct liveupdate_session_retrieve_fd, 8);
CHECK_OFF(struct liveupdate_session_retrieve_fd, fd, 4);
CHECK_OFF(struct liveupdate_session_retrieve_fd, token, 8);
CHECK_SIZE(struct liveupdate_session_finish, 8);
CHECK_ALIGN(struct liveupdate_session_finish, 4);
CHECK_OFF(struct liveupdate_session_finish, reserved, 4);
CHECK_SIZE(struct liveupdate_session_get_name, 72);
CHECK_OFF(struct liveupdate_session_get_name, reserved, 4);
CHECK_OFF(struct liveupdate_session_get_name, name, 8);
CHECK_SIZE(struct liveupdate_session_retrieve_into_fd, 16);
CHECK_OFF(struct liveupdate_session_retrieve_into_fd, token, 8);

/* §3.3 LUO v4 */
CHECK_CMD(LUO_V4_IOCTL_GET_STATE,        0xBA00);
CHECK_CMD(LUO_V4_IOCTL_SET_EVENT,        0xBA01);
CHECK_CMD(LUO_V4_IOCTL_CREATE_SESSION,   0xBA02);
CHECK_CMD(LUO_V4_IOCTL_RETRIEVE_SESSION, 0xBA03);
CHECK_CMD(LUO_V4_SESSION_PRESERVE_FD,    0xBA40);
CHECK_CMD(LUO_V4_SESSION_UNPRESERVE_FD,  0xBA41);
CHECK_CMD(LUO_V4_SESSION_RESTORE_FD,     0xBA42);
CHECK_CMD(LUO_V4_SESSION_GET_STATE,      0xBA43);
CHECK_CMD(LUO_V4_SESSION_SET_EVENT,      0xBA44);
CHECK_SIZE(struct luo_v4_get_state, 8);
CHECK_OFF(struct luo_v4_get_state, state, 4);
CHECK_SIZE(struct luo_v4_set_event, 8);
CHECK_OFF(struct luo_v4_set_event, event, 4);
CHECK_SIZE(struct luo_v4_create_session, 64);
CHECK_OFF(struct luo_v4_create_session, fd, 4);
CHECK_OFF(struct luo_v4_create_session, name, 8);
CHECK_SIZE(struct luo_v4_retrieve_session, 72);
CHECK_OFF(struct luo_v4_retrieve_session, name, 8);
CHECK_SIZE(struct luo_v4_session_preserve_fd, 16);
CHECK_OFF(struct luo_v4_session_preserve_fd, token, 8);
CHECK_SIZE(struct luo_v4_session_unpreserve_fd, 16);
CHECK_OFF(struct luo_v4_session_unpreserve_fd, reserved, 4);
CHECK_OFF(struct luo_v4_session_unpreserve_fd, token, 8);
CHECK_SIZE(struct luo_v4_session_restore_fd, 16);
CHECK_OFF(struct luo_v4_session_restore_fd, fd, 4);
CHECK_OFF(struct luo_v4_session_restore_fd, token, 8);
CHECK_SIZE(struct luo_v4_session_get_state, 12);
CHECK_OFF(struct luo_v4_session_get_state, incoming, 4);
CHECK_OFF(struct luo_v4_session_get_state, reserved, 5);
CHECK_OFF(struct luo_v4_session_get_state, state, 8);
CHECK_SIZE(struct luo_v4_session_set_event, 8);
static_assert(LUO_V4_STATE_NORMAL == 1 && LUO_V4_STATE_PREPARED == 2 && LUO_V4_STATE_FROZEN == 3 &&
              LUO_V4_STATE_UPDATED == 4, "v4 states");
static_assert(LUO_V4_EVENT_PREPARE == 0 && LUO_V4_EVENT_FREEZE == 1 && LUO_V4_EVENT_FINISH == 2 &&
              LUO_V4_EVENT_CANCEL == 3, "v4 events");

/* §3.4 probes of the older ABIs */
CHECK_CMD(LUO_V1_IOCTL_GET_STATE, 0x8004BA03u);
CHECK_CMD(LUO_G1_IOCTL_GET_STATE, 0xBA03);

/* §4.3 VFIO */
CHECK_CMD(VFIO_DEVICE_GET_INFO,               0x3B6B);
CHECK_CMD(VFIO_DEVICE_GET_IRQ_INFO,           0x3B6D);
CHECK_CMD(VFIO_DEVICE_SET_IRQS,               0x3B6E);
CHECK_CMD(VFIO_DEVICE_RESET,                  0x3B6F);
CHECK_CMD(VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, 0x3B70);
CHECK_CMD(VFIO_DEVICE_BIND_IOMMUFD,           0x3B76);
CHECK_CMD(VFIO_DEVICE_ATTACH_IOMMUFD_PT,      0x3B77);
CHECK_SIZE(struct lu_vfio_device_info, 24);
CHECK_OFF(struct lu_vfio_device_info, flags, 4);
CHECK_OFF(struct lu_vfio_device_info, num_regions, 8);
CHECK_OFF(struct lu_vfio_device_info, num_irqs, 12);
CHECK_OFF(struct lu_vfio_device_info, cap_offset, 16);
CHECK_OFF(struct lu_vfio_device_info, pad, 20);
CHECK_OFF(struct vfio_device_info, num_irqs, 12);   /* the system header's prefix agrees */
CHECK_SIZE(struct vfio_irq_info, 16);
CHECK_OFF(struct vfio_irq_info, index, 8);
CHECK_OFF(struct vfio_irq_info, count, 12);
CHECK_SIZE(struct vfio_irq_set, 20);
CHECK_OFF(struct vfio_irq_set, index, 8);
CHECK_OFF(struct vfio_irq_set, start, 12);
CHECK_OFF(struct vfio_irq_set, count, 16);
CHECK_OFF(struct vfio_irq_set, data, 20);
CHECK_SIZE(struct vfio_pci_hot_reset_info, 12);
CHECK_OFF(struct vfio_pci_hot_reset_info, count, 8);
CHECK_SIZE(struct lu_vfio_pci_dependent_device, 8);
CHECK_OFF(struct lu_vfio_pci_dependent_device, segment, 4);
CHECK_OFF(struct lu_vfio_pci_dependent_device, bus, 6);
CHECK_OFF(struct lu_vfio_pci_dependent_device, devfn, 7);
CHECK_SIZE(struct vfio_device_bind_iommufd, 24);
CHECK_OFF(struct vfio_device_bind_iommufd, iommufd, 8);
CHECK_OFF(struct vfio_device_bind_iommufd, out_devid, 12);
CHECK_OFF(struct vfio_device_bind_iommufd, token_uuid_ptr, 16);
CHECK_SIZE(struct vfio_device_attach_iommufd_pt, 16);
CHECK_OFF(struct vfio_device_attach_iommufd_pt, pt_id, 8);
CHECK_OFF(struct vfio_device_attach_iommufd_pt, pasid, 12);
static_assert(VFIO_IRQ_SET_DATA_NONE == 1 && VFIO_IRQ_SET_DATA_BOOL == 2 && VFIO_IRQ_SET_DATA_EVENTFD == 4 &&
              VFIO_IRQ_SET_ACTION_MASK == 8 && VFIO_IRQ_SET_ACTION_UNMASK == 0x10 &&
              VFIO_IRQ_SET_ACTION_TRIGGER == 0x20, "SET_IRQS flags");
static_assert(VFIO_PCI_INTX_IRQ_INDEX == 0 && VFIO_PCI_MSI_IRQ_INDEX == 1 && VFIO_PCI_MSIX_IRQ_INDEX == 2 &&
              VFIO_PCI_ERR_IRQ_INDEX == 3 && VFIO_PCI_REQ_IRQ_INDEX == 4, "PCI IRQ indexes");
static_assert(VFIO_DEVICE_FLAGS_RESET == 1 && VFIO_DEVICE_FLAGS_PCI == 2, "device flags");

/* iommufd */
CHECK_CMD(IOMMU_DESTROY,       0x3B80);
CHECK_CMD(IOMMU_IOAS_ALLOC,    0x3B81);
CHECK_CMD(IOMMU_IOAS_MAP,      0x3B85);
CHECK_CMD(IOMMU_HWPT_ALLOC,    0x3B89);
CHECK_CMD(IOMMU_IOAS_MAP_FILE, 0x3B8F);
CHECK_SIZE(struct iommu_ioas_alloc, 12);
CHECK_OFF(struct iommu_ioas_alloc, out_ioas_id, 8);
CHECK_SIZE(struct iommu_ioas_map, 40);
CHECK_SIZE(struct iommu_ioas_map_file, 40);
CHECK_OFF(struct iommu_ioas_map_file, fd, 12);
CHECK_OFF(struct iommu_ioas_map_file, start, 16);
CHECK_SIZE(struct iommu_hwpt_alloc, 48);

int main(void) {
        /* The assertions above are the test; reaching here means they all held. */
        printf("uapi layouts: all compile-time checks hold\n");
        return 0;
}
