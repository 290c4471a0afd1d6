/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PCI addresses as sysfs spells them ("0000:3b:00.1"). Parsing is strict about field
 * widths so that scanning a sysfs path never mistakes another component (such as the
 * "pci0000:00" root bridge) for a device address.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pci-addr.h"

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Reads between @min and @max hex digits from *p, advancing it. */
static int parse_hex(const char **p, size_t min, size_t max, uint32_t *ret) {
        uint32_t v = 0;
        size_t n = 0;
        int d;

        while (n < max && (d = hex_digit((*p)[n])) >= 0) {
                v = (v << 4) | (uint32_t) d;
                n++;
        }
        if (n < min || hex_digit((*p)[n]) >= 0)
                return -EINVAL;
        *p += n;
        *ret = v;
        return 0;
}

/* Parses an address that ends at @end (exclusive); used for whole strings and path components. */
static int parse_span(const char *s, const char *end, PciAddr *ret) {
        uint32_t domain, bus, dev, fn;
        const char *p = s;

        if (parse_hex(&p, 4, 8, &domain) < 0 || *p++ != ':')
                return -EINVAL;
        if (parse_hex(&p, 2, 2, &bus) < 0 || *p++ != ':')
                return -EINVAL;
        if (parse_hex(&p, 2, 2, &dev) < 0 || *p++ != '.')
                return -EINVAL;
        if (parse_hex(&p, 1, 1, &fn) < 0)
                return -EINVAL;
        if (p != end)
                return -EINVAL;
        if (dev > 0x1f || fn > 7)
                return -EINVAL;

        if (ret)
                *ret = (PciAddr) {
                        .domain = domain,
                        .bus = (uint8_t) bus,
                        .dev = (uint8_t) dev,
                        .fn = (uint8_t) fn,
                };
        return 0;
}

int pci_addr_parse(const char *s, PciAddr *ret) {
        if (!s || !ret)
                return -EINVAL;
        return parse_span(s, s + strlen(s), ret);
}

char *pci_addr_to_string(const PciAddr *a, char buf[static PCI_ADDR_STRING_MAX]) {
        if (!a) {
                buf[0] = '\0';
                return buf;
        }
        (void) snprintf(buf, PCI_ADDR_STRING_MAX, "%04x:%02x:%02x.%x",
                        a->domain, a->bus, (unsigned) (a->dev & 0x1f), (unsigned) (a->fn & 7));
        return buf;
}

bool pci_addr_equal(const PciAddr *a, const PciAddr *b) {
        if (!a || !b)
                return a == b;
        return a->domain == b->domain && a->bus == b->bus && a->dev == b->dev && a->fn == b->fn;
}

int pci_addr_from_path(const char *path, PciAddr *ret) {
        bool found = false;
        PciAddr a;

        if (!path || !ret)
                return -EINVAL;

        for (const char *p = path; *p; ) {
                const char *end;

                if (*p == '/') {
                        p++;
                        continue;
                }
                end = strchrnul(p, '/');
                if (parse_span(p, end, &a) >= 0) {
                        *ret = a;
                        found = true;
                }
                p = end;
        }

        return found ? 0 : -ENOENT;
}
