/* --show: reads node flash files read-only (safe while a simulator runs) and reports B and C (or both banks). */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "canfleet/ccp.h"
#include "canfleet/image.h"
#include "bank.h"
#include "ccp-slave.h"
#include "hal-host.h"
#include "journal.h"
#include "sim-flash.h"
#include "sim-show.h"

struct area_state {
        const char *state;
        const char *reason;
        bool has_trailer;
        struct cf_image_info info;
};

static void area_check_at(const uint8_t *area, struct area_state *s, uint32_t app_addr)
{
        *s = (struct area_state){0};
        bool erased = true;
        for (size_t i = 0; i < CF_IMAGE_AREA_SIZE && erased; i++)
                erased = area[i] == CF_FLASH_ERASED;
        if (erased) {
                s->state = "erased";
                return;
        }
        int r = cf_image_check_at(area, &s->info, app_addr);
        s->has_trailer = s->info.magic == CF_IMAGE_MAGIC;
        s->state = r == CF_IMAGE_OK ? "valid" : "invalid";
        if (r != CF_IMAGE_OK)
                s->reason = cf_image_status_str(r);
}

static void area_check(const uint8_t *area, struct area_state *s)
{
        area_check_at(area, s, CF_AREA_APP_ADDR);
}

static int cmp_names(const void *a, const void *b)
{
        const char *x = *(const char *const *) a, *y = *(const char *const *) b;
        /* "bus-2" before "bus-10": compare the bus, then the station number */
        const char *dx = strrchr(x, '-'), *dy = strrchr(y, '-');
        if (dx && dy && dx - x == dy - y && strncmp(x, y, (size_t) (dx - x)) == 0)
                return atoi(dx + 1) - atoi(dy + 1);
        return strcmp(x, y);
}

/* Only names the simulator makes (sim_bus_name_of(): [A-Za-z0-9._-]): nothing to escape in JSON. */
static bool safe_name(const char *s)
{
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '.' || *s == '_' || *s == '-'))
                        return false;
        return true;
}

static void print_area_text(const char *label, const struct area_state *s)
{
        printf("  %s %s", label, s->state);
        if (s->has_trailer)
                printf(" %u.%u.%u release %u hw 0x%04X", s->info.ver_major, s->info.ver_minor,
                       s->info.ver_patch, s->info.release, s->info.hw_id);
        if (s->reason)
                printf(" (%s)", s->reason);
}

static void print_area_json(const char *label, const struct area_state *s)
{
        printf("\"%s\":{\"state\":\"%s\"", label, s->state);
        if (s->reason)
                printf(",\"reason\":\"%s\"", s->reason);
        if (s->has_trailer)
                printf(",\"version\":\"%u.%u.%u\",\"release\":%u,\"hw_id\":%u", s->info.ver_major,
                       s->info.ver_minor, s->info.ver_patch, s->info.release, s->info.hw_id);
        printf("}");
}

static const char *trial_name(uint8_t t)
{
        static const char *const names[] = {"none", "pending", "confirmed", "reverted"};
        return t < 4 ? names[t] : "?";
}

/* A dual-bank node: both banks, the bank BOOT_ADD0 starts, and the last swap as its journals tell. */
static void show_dual(struct sim_flash *f, const char *name, const char *uid, bool json, bool first)
{
        struct cf_hal h = {.flash = f->flash, .dual_bank = true, .erase_sector = -1,
                           .option_bytes = (uint16_t *) (void *) ((uint8_t *) f->map +
                                                                  offsetof(struct sim_flash_header, option_bytes))};
        struct area_state a[2];
        struct cf_bank bk[2];
        unsigned boot = cf_hal_host_boot_bank(&h);

        for (unsigned i = 0; i < 2; i++) {
                area_check_at(f->flash + (cf_f7_app_addr(i + 1) - CF_FLASH_BASE), &a[i], cf_f7_app_addr(i + 1));
                cf_bank_read(&h, i + 1, a[i].state && strcmp(a[i].state, "valid") == 0, &bk[i]);
        }
        uint8_t trial = cf_bank_trial_state(&bk[boot - 1], &bk[2 - boot]);
        const char *dash = strrchr(name, '-');
        if (json) {
                printf("%s{\"name\":\"%s\",\"bus\":\"%.*s\",\"station\":%d,\"uid\":\"%s\","
                       "\"boot_count\":%u,\"layout\":\"f7-dual-bank\",\"boot_bank\":%u,\"trial\":\"%s\",",
                       first ? "" : ",", name, dash ? (int) (dash - name) : 0, name, dash ? atoi(dash + 1) : 0,
                       uid, f->hdr->boot_count, boot, trial_name(trial));
                print_area_json("bank1", &a[0]);
                printf(",");
                print_area_json("bank2", &a[1]);
                printf("}");
        } else {
                printf("%s: uid %s boots %u boot bank %u, trial %s ", name, uid, f->hdr->boot_count, boot,
                       trial_name(trial));
                print_area_text("bank1", &a[0]);
                print_area_text(" bank2", &a[1]);
                printf("\n");
        }
}


int sim_show(const char *dir, bool json)
{
        DIR *d = opendir(dir);
        if (!d) {
                int r = -errno;
                fprintf(stderr, "canfleet-nodesim: --state %s: %s\n", dir, strerror(-r));
                return r;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len <= 6 || strcmp(de->d_name + len - 6, ".flash") != 0 || !safe_name(de->d_name))
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 16;
                        char **nn = realloc(names, cap * sizeof(*names));
                        if (!nn)
                                break;
                        names = nn;
                }
                names[n] = strndup(de->d_name, len - 6);
                if (names[n])
                        n++;
        }
        closedir(d);
        if (n > 0)
                qsort(names, n, sizeof(*names), cmp_names);

        int ret = 0;
        /* What the group transfer costs each node in RAM: the same struct the MCU images hold. */
        size_t record = sizeof(((struct cf_group *) 0)->bits), group = sizeof(struct cf_group);
        if (json)
                printf(
                    "{\"node_ram\":{\"group_slots\":%u,\"slot_record_bytes\":%zu,\"group_state_bytes\":%zu,"
                    "\"ccp_slave_bytes\":%zu},\"nodes\":[",
                    CF_GROUP_SLOTS, record, group, sizeof(struct cf_ccp_slave));
        else
                printf("node RAM: group slot record %zu bytes (%u slots), group state %zu bytes, CCP slave "
                       "%zu bytes\n",
                       record, CF_GROUP_SLOTS, group, sizeof(struct cf_ccp_slave));
        for (size_t i = 0; i < n; i++) {
                char *path = NULL;
                struct sim_flash f;
                if (asprintf(&path, "%s/%s.flash", dir, names[i]) < 0)
                        continue;
                int r = sim_flash_open(&f, path, false, true, SIM_LAYOUT_ANY);
                free(path);
                if (r < 0) {
                        fprintf(stderr, "canfleet-nodesim: %s/%s.flash: %s\n", dir, names[i],
                                r == -EBADMSG ? "not a node flash file" : strerror(-r));
                        ret = r;
                        continue;
                }
                if (f.layout == SIM_LAYOUT_F7_DUAL) {
                        char uid[2 * CF_UID_LEN + 1];
                        for (unsigned k = 0; k < CF_UID_LEN; k++)
                                snprintf(uid + 2 * k, 3, "%02x", f.hdr->uid[k]);
                        show_dual(&f, names[i], uid, json, i == 0);
                        sim_flash_close(&f);
                        continue;
                }
                struct area_state b, c;
                area_check(f.flash + (CF_AREA_APP_ADDR - CF_FLASH_BASE), &b);
                area_check(f.flash + (CF_AREA_STAGING_ADDR - CF_FLASH_BASE), &c);
                char uid[2 * CF_UID_LEN + 1];
                for (unsigned k = 0; k < CF_UID_LEN; k++)
                        snprintf(uid + 2 * k, 3, "%02x", f.hdr->uid[k]);
                /* the install journal's count for the image in C (boot.h): 3 = given up */
                struct cf_journal j;
                cf_journal_scan(
                    f.flash, cf_le32_get(f.flash + (CF_AREA_STAGING_ADDR - CF_FLASH_BASE) + CF_CRC_OFFSET),
                    &j);
                const char *dash = strrchr(names[i], '-');
                if (json) {
                        printf("%s{\"name\":\"%s\",\"bus\":\"%.*s\",\"station\":%d,\"uid\":\"%s\","
                               "\"boot_count\":%u,",
                               i ? "," : "", names[i], dash ? (int) (dash - names[i]) : 0, names[i],
                               dash ? atoi(dash + 1) : 0, uid, f.hdr->boot_count);
                        print_area_json("B", &b);
                        printf(",");
                        print_area_json("C", &c);
                        printf(",\"install_failures\":%u}", j.failures);
                } else {
                        printf("%s: uid %s boots %u ", names[i], uid, f.hdr->boot_count);
                        print_area_text("B", &b);
                        print_area_text(" C", &c);
                        if (j.failures)
                                printf(" (%u failed installs of C%s)", j.failures,
                                       j.failures >= CF_JOURNAL_MAX_FAILURES ? ", given up" : "");
                        printf("\n");
                }
                sim_flash_close(&f);
        }
        if (json)
                printf("]}\n");
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return ret;
}
