/* Test helper: cf_image_check() on a file, printing the status, for tests/client. */
#include <stdio.h>
#include <string.h>

#include "canfleet/image.h"

static unsigned char area[CF_IMAGE_AREA_SIZE + 1];

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: image-check FILE\n");
                return 2;
        }
        FILE *f = fopen(argv[1], "rb");
        if (!f) {
                perror(argv[1]);
                return 2;
        }
        size_t n = fread(area, 1, sizeof(area), f);
        fclose(f);
        if (n != CF_IMAGE_AREA_SIZE) {
                fprintf(stderr, "%s: %zu bytes, not an area image\n", argv[1], n);
                return 2;
        }
        struct cf_image_info info;
        int r = cf_image_check(area, &info);
        printf("%d %s\n", r, cf_image_status_str(r));
        return r == CF_IMAGE_OK ? 0 : 1;
}
