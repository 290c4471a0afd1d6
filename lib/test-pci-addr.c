/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Unit tests for lib/pci-addr.c: parsing, formatting, comparison, sysfs path scanning. */
#include <errno.h>

#include "pci-addr.h"
#include "test-helpers.h"

static void test_parse_valid(void) {
        char buf[PCI_ADDR_STRING_MAX];
        PciAddr a;

        TEST_ERRNO(pci_addr_parse("0000:00:03.0", &a), 0);
        TEST_ASSERT(a.domain == 0 && a.bus == 0 && a.dev == 3 && a.fn == 0);
        TEST_STREQ(pci_addr_to_string(&a, buf), "0000:00:03.0");

        TEST_ERRNO(pci_addr_parse("0000:3b:1f.7", &a), 0);
        TEST_ASSERT(a.bus == 0x3b && a.dev == 0x1f && a.fn == 7);
        TEST_STREQ(pci_addr_to_string(&a, buf), "0000:3b:1f.7");

        /* Upper case is accepted, output is always lower case. */
        TEST_ERRNO(pci_addr_parse("ABCD:EF:1A.3", &a), 0);
        TEST_ASSERT(a.domain == 0xabcd && a.bus == 0xef && a.dev == 0x1a && a.fn == 3);
        TEST_STREQ(pci_addr_to_string(&a, buf), "abcd:ef:1a.3");

        /* Domains above 0xffff exist (VMD) and print with more digits. */
        TEST_ERRNO(pci_addr_parse("10000:e1:00.0", &a), 0);
        TEST_ASSERT(a.domain == 0x10000 && a.bus == 0xe1);
        TEST_STREQ(pci_addr_to_string(&a, buf), "10000:e1:00.0");

        TEST_ERRNO(pci_addr_parse("ffffffff:ff:1f.7", &a), 0);
        TEST_STREQ(pci_addr_to_string(&a, buf), "ffffffff:ff:1f.7");
        TEST_ASSERT(strlen(buf) + 1 == PCI_ADDR_STRING_MAX);
}

static void test_parse_invalid(void) {
        static const char *const bad[] = {
                "", "0", "00:03.0", "000:00:03.0", "123456789:00:03.0",
                "0000:0:03.0", "0000:000:03.0", "0000:00:3.0", "0000:00:003.0",
                "0000:00:20.0",   /* device > 31 */
                "0000:00:03.8",   /* function > 7 */
                "0000:00:03.00", "0000:00:03.", "0000:00:03", "0000-00:03.0",
                "0000:00.03.0", "0000:00:03:0", "0000:00:03.0 ", " 0000:00:03.0",
                "0000:00:03.0\n", "g000:00:03.0", "0000:0x:03.0", "pci0000:00",
                "0000:00:03.0/", "+000:00:03.0",
        };
        PciAddr a = { .domain = 0x1234 };

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = pci_addr_parse(bad[i], &a);
                if (r != -EINVAL) {
                        fprintf(stderr, "parse accepted \"%s\" (%d)\n", bad[i], r);
                        test_failures++;
                }
        }
        /* A failed parse leaves the output alone. */
        TEST_ASSERT(a.domain == 0x1234);

        TEST_ERRNO(pci_addr_parse(NULL, &a), EINVAL);
        TEST_ERRNO(pci_addr_parse("0000:00:03.0", NULL), EINVAL);
}

static void test_equal(void) {
        PciAddr a, b, c;

        TEST_ERRNO(pci_addr_parse("0000:3b:00.1", &a), 0);
        TEST_ERRNO(pci_addr_parse("0000:3B:00.1", &b), 0);
        TEST_ERRNO(pci_addr_parse("0001:3b:00.1", &c), 0);
        TEST_ASSERT(pci_addr_equal(&a, &b));
        TEST_ASSERT(!pci_addr_equal(&a, &c));
        TEST_ERRNO(pci_addr_parse("0000:3b:00.2", &c), 0);
        TEST_ASSERT(!pci_addr_equal(&a, &c));
        TEST_ASSERT(!pci_addr_equal(&a, NULL));
        TEST_ASSERT(!pci_addr_equal(NULL, &a));
        TEST_ASSERT(pci_addr_equal(NULL, NULL));
}

static void test_from_path(void) {
        char buf[PCI_ADDR_STRING_MAX];
        PciAddr a;

        /* The root bridge component does not parse; the device under it does. */
        TEST_ERRNO(pci_addr_from_path("/sys/devices/pci0000:00/0000:00:03.0", &a), 0);
        TEST_STREQ(pci_addr_to_string(&a, buf), "0000:00:03.0");

        /* Behind a bridge: the last address is the device, not the bridge. */
        TEST_ERRNO(pci_addr_from_path("/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1/vfio-dev/vfio3", &a), 0);
        TEST_STREQ(pci_addr_to_string(&a, buf), "0000:01:00.1");

        /* Relative sysfs links as readlink returns them. */
        TEST_ERRNO(pci_addr_from_path("../../../0000:5e:00.0", &a), 0);
        TEST_STREQ(pci_addr_to_string(&a, buf), "0000:5e:00.0");

        TEST_ERRNO(pci_addr_from_path("0000:5e:00.0", &a), 0);
        TEST_ERRNO(pci_addr_from_path("/sys/devices/pci0000:00//0000:00:1f.6//", &a), 0);
        TEST_STREQ(pci_addr_to_string(&a, buf), "0000:00:1f.6");

        TEST_ERRNO(pci_addr_from_path("/sys/devices/platform/foo", &a), ENOENT);
        TEST_ERRNO(pci_addr_from_path("/sys/devices/pci0000:00/0000:00:03.0x", &a), ENOENT);
        TEST_ERRNO(pci_addr_from_path("", &a), ENOENT);
        TEST_ERRNO(pci_addr_from_path("/", &a), ENOENT);
        TEST_ERRNO(pci_addr_from_path(NULL, &a), EINVAL);
        TEST_ERRNO(pci_addr_from_path("/x/0000:00:03.0", NULL), EINVAL);
}

static void test_format_null(void) {
        char buf[PCI_ADDR_STRING_MAX] = "junk";

        TEST_STREQ(pci_addr_to_string(NULL, buf), "");
}

int main(void) {
        test_parse_valid();
        test_parse_invalid();
        test_equal();
        test_from_path();
        test_format_null();
        return test_result("test-pci-addr");
}
