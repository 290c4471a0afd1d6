/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MESSAGE_ID= values of lu-vfiod's journal entries; each has an entry with the same id
 * in daemon/catalog/lu-vfiod.catalog (explanation and what to do). Ids never change
 * meaning: a changed event gets a new id.
 */
#pragma once

#define LU_MESSAGE_READY              "1c271937f0b94d14b10892686a81afb1"
#define LU_MESSAGE_PREPARED           "8b0383d72d6b4c9b86dedde28774b09d"
#define LU_MESSAGE_REBOOTING          "9a1e21d7c49441e2b3fc5dd22ad0a3de"
#define LU_MESSAGE_UPDATE_FAILED      "57dd1b21b9e04a768ad2a06ff55c1c95"
#define LU_MESSAGE_UPDATE_CANCELLED   "87bab09da9cd4e85879f9f6ad59a5509"
#define LU_MESSAGE_INCOMING           "9fd71ee17b9a4bf4890e9d3ddb6ed76d"
#define LU_MESSAGE_RESTORE_DONE       "7865d4140d144c47b553b57688e5405d"
#define LU_MESSAGE_VM_NOT_RECLAIMED   "c8e38a0cd1294302ae454cdf98ca198e"
#define LU_MESSAGE_ITEM_LOST          "d2a1c54661374be0b51ed7db6c80c585"
#define LU_MESSAGE_NO_LUO             "c8dbc5a7f881429e8bd5252c57496ef9"
