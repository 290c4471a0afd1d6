/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* PCI addresses (domain:bus:device.function): parsing, formatting, comparison. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct PciAddr {
        uint32_t domain;   /* 0..0xffff in practice; sysfs prints 4+ hex digits */
        uint8_t bus;
        uint8_t dev;       /* 0..31 */
        uint8_t fn;        /* 0..7 */
} PciAddr;

#define PCI_ADDR_STRING_MAX sizeof("ffffffff:ff:1f.7")

/* pci_addr_parse() - parse "DDDD:BB:DD.F" (lower or upper case hex); -EINVAL if malformed or out of range. */
int pci_addr_parse(const char *s, PciAddr *ret);

/* pci_addr_to_string() - format as "%04x:%02x:%02x.%x" into @buf; returns @buf. */
char *pci_addr_to_string(const PciAddr *a, char buf[static PCI_ADDR_STRING_MAX]);

bool pci_addr_equal(const PciAddr *a, const PciAddr *b);

/* pci_addr_from_path() - find the last path component that parses as a PCI address. -ENOENT if none. */
int pci_addr_from_path(const char *path, PciAddr *ret);
