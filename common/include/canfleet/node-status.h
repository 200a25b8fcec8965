/* What a node tells about itself over CCP: the device ID (MTA extension 0) and the status block (extension 1). */
#pragma once

#include <stdint.h>

#include "canfleet/image.h"

/* Extension 0, 16 bytes, read-only:
 *   0 uid[12] (STM32 96-bit unique ID)   12 hw_id u16 LE   14 bootloader_version u16 LE */
#define CF_DEVID_SIZE        16u
#define CF_DEVID_UID         0u
#define CF_DEVID_HW_ID       12u
#define CF_DEVID_BOOT_VERSION 14u

/* Extension 1, CF_STATUS_SIZE bytes, read-only, little-endian:
 *   0  trailer[60]      the running image's trailer verbatim (B's; all 0xFF / garbage when B is invalid)
 *  60  boot_count u32   boots since the flash was first programmed (simulator) or since power-on (MCU)
 *  64  mode u8          CF_MODE_*
 *  65  last_update u8   CF_UPDATE_* : what the bootloader did with C at the last boot
 *  66  staged u8        CF_STAGED_* : what the slave knows of C right now
 *  67  last_error u8    last CCP error code the slave answered (0 none)
 *  68  b_crc u32        CRC stored at the end of B
 *  72  ticks u32        main-loop iterations of the node's normal work (shows it kept working)
 *  76  install_failures u8  failed boot installs of the image now staged in C, as the bootloader's
 *                       journal counts them (0 after a new image is staged); with last_update
 *                       CF_UPDATE_GAVE_UP it says why the image is not installed
 *  77  bank u8          0: a single-bank node (the F4 copy layout, docs/design.md §2); 1 or 2: a
 *                       dual-bank node (docs/design.md §9) running from bank 1 (0x08000000) or 2
 *                       (0x08100000), found from where the code runs (VTOR / the reset handler's
 *                       address), never from SYSCFG_MEMRMP.SWP_FB
 *  78  trial u8         CF_TRIAL_* (dual-bank only, 0 on a single-bank node): the state of the last
 *                       bank swap
 *  79  reserved u8      0
 * A master reads the running version with SHORT_UP of 4 bytes at offset 8 (major, minor, patch LE). */
#define CF_STATUS_SIZE        80u
#define CF_STATUS_TRAILER     0u
#define CF_STATUS_BOOT_COUNT  60u
#define CF_STATUS_MODE        64u
#define CF_STATUS_LAST_UPDATE 65u
#define CF_STATUS_STAGED      66u
#define CF_STATUS_LAST_ERROR  67u
#define CF_STATUS_B_CRC       68u
#define CF_STATUS_TICKS       72u
#define CF_STATUS_INSTALL_FAILURES 76u
#define CF_STATUS_BANK        77u
#define CF_STATUS_TRIAL       78u

enum cf_node_mode {
        CF_MODE_APP = 1,        /* running the application in B */
        CF_MODE_BOOTLOADER = 2, /* recovery: no valid application, the bootloader speaks CCP */
};

enum cf_update_result {
        CF_UPDATE_NONE = 0,       /* C was not valid: nothing to do */
        CF_UPDATE_INSTALLED = 1,  /* C copied to B, B verified, C erased */
        CF_UPDATE_REJECTED = 2,   /* C had a valid CRC but wrong hw id / rollback: left alone */
        CF_UPDATE_VERIFY_FAILED = 3, /* B did not verify after the copy; retried at the next boot */
        CF_UPDATE_GAVE_UP = 4,    /* C failed to install 3 times (install_failures): not tried again
                                   * until a new image is staged; the node runs B, or stays in the
                                   * bootloader's recovery when the failed installs erased B */
        CF_UPDATE_SWAPPED = 5,    /* dual-bank: the running bank was booted by a swap (the image staged
                                   * in it was validated and the boot address flipped to it); trial
                                   * says whether it is still on trial or confirmed */
};

/* Dual-bank nodes: the last swap (status byte 78). */
enum cf_trial_state {
        CF_TRIAL_NONE = 0,      /* no swap since the banks were programmed (or a single-bank node) */
        CF_TRIAL_PENDING = 1,   /* running a new bank that is not confirmed yet: a reset now reverts */
        CF_TRIAL_CONFIRMED = 2, /* the last swap was confirmed (by the application or CCP CONFIRM) */
        CF_TRIAL_REVERTED = 3,  /* the last trial was not confirmed before a reset: the node went back
                                 * to the previous bank, and does not try that image again */
};

enum cf_staged_state {
        CF_STAGED_UNKNOWN = 0, /* not looked at in this session */
        CF_STAGED_ERASED = 1,  /* CLEAR_MEMORY done, programming may go on */
        CF_STAGED_VALID = 2,   /* C checks out: DISCONNECT(end) will install it */
        CF_STAGED_INVALID = 3, /* C does not check out */
};

/* Extension 2: read/write control memory (the seed's CONTROL array). */
#define CF_CONTROL_SIZE 16u
