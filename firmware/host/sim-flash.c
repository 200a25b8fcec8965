/* Node flash files: create atomically, validate, map MAP_SHARED. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim-flash.h"

static uint32_t flash_size_of(enum sim_layout layout)
{
        return layout == SIM_LAYOUT_F7_DUAL ? CF_F7_FLASH_SIZE : CF_FLASH_SIZE;
}

static size_t file_size_of(enum sim_layout layout)
{
        return (size_t) SIM_FLASH_HEADER_SIZE + flash_size_of(layout);
}

static int fill_random(uint8_t *buf, size_t n)
{
        while (n > 0) {
                ssize_t r = getrandom(buf, n, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                buf += r;
                n -= (size_t) r;
        }
        return 0;
}

static int create_file(const char *path, enum sim_layout layout)
{
        size_t file_size = file_size_of(layout);
        char *tmp = NULL;
        int r;
        if (asprintf(&tmp, "%s.new", path) < 0)
                return -ENOMEM;
        int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
                r = -errno;
                free(tmp);
                return r;
        }
        if (ftruncate(fd, (off_t) file_size) < 0) {
                r = -errno;
                goto fail;
        }
        uint8_t *m = mmap(NULL, file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
                r = -errno;
                goto fail;
        }
        struct sim_flash_header h = {.header_size = SIM_FLASH_HEADER_SIZE,
                                     .flash_size = flash_size_of(layout),
                                     .layout = (uint32_t) layout};
        if (layout == SIM_LAYOUT_F7_DUAL) {
                h.option_bytes[0] = CF_F7_BOOT_ADD_BANK1;
                h.option_bytes[1] = 0x0040u; /* the system memory: BOOT0 high runs ST's ROM loader */
        }
        memcpy(h.magic, SIM_FLASH_MAGIC, sizeof(h.magic));
        r = fill_random(h.uid, sizeof(h.uid));
        if (r == 0) {
                memcpy(m, &h, sizeof(h));
                memset(m + SIM_FLASH_HEADER_SIZE, CF_FLASH_ERASED, h.flash_size);
                if (msync(m, file_size, MS_SYNC) < 0)
                        r = -errno;
        }
        munmap(m, file_size);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                goto fail;
        close(fd);
        free(tmp);
        return 0;
fail:
        close(fd);
        unlink(tmp);
        free(tmp);
        return r;
}

int sim_flash_open(struct sim_flash *f, const char *path, bool create, bool readonly, enum sim_layout layout)
{
        int r;
        *f = (struct sim_flash){0};

        int fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT && create && !readonly) {
                r = create_file(path, layout == SIM_LAYOUT_ANY ? SIM_LAYOUT_F4_COPY : layout);
                if (r < 0)
                        return r;
                fd = open(path, O_RDWR | O_CLOEXEC);
        }
        if (fd < 0)
                return -errno;

        struct stat st;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        if (!S_ISREG(st.st_mode) || (size_t) st.st_size < SIM_FLASH_HEADER_SIZE) {
                close(fd);
                return -EBADMSG;
        }
        size_t size = (size_t) st.st_size;
        void *m = mmap(NULL, size, readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        r = -errno;
        close(fd);
        if (m == MAP_FAILED)
                return r;

        struct sim_flash_header *h = m;
        enum sim_layout have = (enum sim_layout) h->layout;
        if (memcmp(h->magic, SIM_FLASH_MAGIC, sizeof(h->magic)) != 0 ||
            h->header_size != SIM_FLASH_HEADER_SIZE || h->layout > SIM_LAYOUT_F7_DUAL ||
            h->flash_size != flash_size_of(have) || size != file_size_of(have)) {
                munmap(m, size);
                return -EBADMSG;
        }
        if (layout != SIM_LAYOUT_ANY && have != layout) {
                munmap(m, size);
                return -EMEDIUMTYPE;
        }
        f->path = strdup(path);
        if (!f->path) {
                munmap(m, size);
                return -ENOMEM;
        }
        f->map = m;
        f->map_size = size;
        f->flash_size = h->flash_size;
        f->layout = have;
        f->hdr = h;
        f->flash = (uint8_t *) m + SIM_FLASH_HEADER_SIZE;
        return 0;
}

int sim_flash_sync(struct sim_flash *f)
{
        if (!f->map)
                return 0;
        if (msync(f->map, f->map_size, MS_SYNC) < 0)
                return -errno;
        return 0;
}

void sim_flash_close(struct sim_flash *f)
{
        if (f->map)
                munmap(f->map, f->map_size);
        free(f->path);
        *f = (struct sim_flash){0};
}
