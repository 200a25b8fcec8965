/* Tests of daemon/bundle-cache.c's store: the URL index with its validator, and the bound on kept files. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "bundle-cache.h"
#include "canfleet/sha256.h"
#include "cf-test.h"

static char *make_tmp(void)
{
        char t[] = "/tmp/cf-bundle-cache-XXXXXX";
        char *d = mkdtemp(t);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d);
        return strdup(d);
}

static void rm_rf(const char *dir)
{
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CU_ASSERT_EQUAL(system(cmd), 0);
}

static size_t count_suffix(const char *dir, const char *prefix, const char *suffix)
{
        size_t n = 0;
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        struct dirent *e;
        while ((e = readdir(d))) {
                size_t l = strlen(e->d_name), ls = strlen(suffix);
                if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && l >= ls &&
                    strcmp(e->d_name + l - ls, suffix) == 0)
                        n++;
        }
        closedir(d);
        return n;
}

static void sha_hex(const void *data, size_t size, char out[65])
{
        static const char hex[] = "0123456789abcdef";
        uint8_t d[CF_SHA256_LEN];
        cf_sha256(data, size, d);
        for (unsigned i = 0; i < CF_SHA256_LEN; i++) {
                out[2 * i] = hex[d[i] >> 4];
                out[2 * i + 1] = hex[d[i] & 0xF];
        }
        out[64] = 0;
}

static char *read_text(const char *path)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        char *buf = calloc(1, 4096);
        size_t n = fread(buf, 1, 4095, f);
        buf[n] = 0;
        fclose(f);
        return buf;
}

/* The entry holds the file's sha256 and the ETag; credentials do not change the entry's name; a weak or
 * missing validator leaves no entry (nothing could revalidate it). */
static void test_index(void)
{
        char *dir = make_tmp(), path[512], key[65], sha[65];
        const uint8_t data[] = "bundle bytes";
        CU_ASSERT_EQUAL(
            bundle_cache_keep(dir, "https://u:secret@h.example/a.cfb", "\"abc\"", data, sizeof data), 0);
        sha_hex("https://h.example/a.cfb", strlen("https://h.example/a.cfb"), key);
        sha_hex(data, sizeof data, sha);
        snprintf(path, sizeof path, "%s/bundles/url-%s", dir, key);
        char *text = read_text(path), want[200];
        snprintf(want, sizeof want, "%s\n\"abc\"\n", sha);
        CU_ASSERT_PTR_NOT_NULL_FATAL(text);
        CU_ASSERT_STRING_EQUAL(text, want);
        free(text);
        snprintf(path, sizeof path, "%s/bundles/%s.cfb", dir, sha);
        CU_ASSERT_EQUAL(access(path, R_OK), 0);

        /* the same URL again with a weak tag: the entry goes, the file stays */
        CU_ASSERT_EQUAL(bundle_cache_keep(dir, "https://h.example/a.cfb", "W/\"abc\"", data, sizeof data),
                        0);
        snprintf(path, sizeof path, "%s/bundles/url-%s", dir, key);
        CU_ASSERT_EQUAL(access(path, F_OK), -1);
        CU_ASSERT_EQUAL(bundle_cache_keep(dir, "https://h.example/b.cfb", NULL, data, sizeof data), 0);
        snprintf(path, sizeof path, "%s/bundles", dir);
        CU_ASSERT_EQUAL(count_suffix(path, "url-", ""), 0);
        CU_ASSERT_EQUAL(count_suffix(path, "", ".cfb"), 1);
        rm_rf(dir);
        free(dir);
}

/* A FIFO left at the names a kept bundle and its URL entry are written through: replaced, never
 * opened (opening it for writing would block canfleetd until a reader came). */
static void test_fifo_at_tmp(void)
{
        char *dir = make_tmp(), path[512], key[65], sha[65];
        const uint8_t data[] = "bundle bytes";
        sha_hex(data, sizeof data, sha);
        sha_hex("https://h.example/a.cfb", strlen("https://h.example/a.cfb"), key);
        snprintf(path, sizeof path, "%s/bundles", dir);
        CU_ASSERT_EQUAL_FATAL(mkdir(path, 0700), 0);
        /* at the tmp names, and at those of the cache's own writer before write_file_atomic() */
        for (int dot = 0; dot < 2; dot++) {
                snprintf(path, sizeof path, "%s/bundles/%s%s.cfb.tmp", dir, dot ? "." : "", sha);
                CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
                snprintf(path, sizeof path, "%s/bundles/%surl-%s.tmp", dir, dot ? "." : "", key);
                CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
        }
        alarm(10); /* a blocked open ends the test instead of hanging it */
        CU_ASSERT_EQUAL(bundle_cache_keep(dir, "https://h.example/a.cfb", "\"abc\"", data, sizeof data), 0);
        alarm(0);
        snprintf(path, sizeof path, "%s/bundles/%s.cfb", dir, sha);
        CU_ASSERT_EQUAL(access(path, R_OK), 0);
        snprintf(path, sizeof path, "%s/bundles/url-%s", dir, key);
        CU_ASSERT_EQUAL(access(path, R_OK), 0);
        rm_rf(dir);
        free(dir);
}

/* At most BUNDLE_CACHE_MAX files: the least recently used go first. */
static void test_bound(void)
{
        char *dir = make_tmp(), bdir[256], first[600], last[600];
        snprintf(bdir, sizeof bdir, "%s/bundles", dir);
        for (unsigned i = 0; i < BUNDLE_CACHE_MAX + 3; i++) {
                char url[64], data[32], sha[65];
                snprintf(url, sizeof url, "https://h.example/%u.cfb", i);
                int n = snprintf(data, sizeof data, "bundle %u", i);
                CU_ASSERT_EQUAL(bundle_cache_keep(dir, url, "\"t\"", (const uint8_t *) data, (size_t) n), 0);
                sha_hex(data, (size_t) n, sha);
                char p[600];
                snprintf(p, sizeof p, "%s/%s.cfb", bdir, sha);
                /* distinct, increasing times without sleeping: the order the trim goes by */
                struct timeval tv[2] = {{.tv_sec = 1000000 + i}, {.tv_sec = 1000000 + i}};
                CU_ASSERT_EQUAL(utimes(p, tv), 0);
                if (i == 0)
                        snprintf(first, sizeof first, "%s", p);
                snprintf(last, sizeof last, "%s", p);
        }
        CU_ASSERT_EQUAL(count_suffix(bdir, "", ".cfb"), BUNDLE_CACHE_MAX);
        CU_ASSERT_EQUAL(access(first, F_OK), -1);
        CU_ASSERT_EQUAL(access(last, F_OK), 0);
        rm_rf(dir);
        free(dir);
}

static void test_url_for_log(void)
{
        char *s = bundle_url_for_log("https://user:pw@host:8443/x@y.cfb");
        CU_ASSERT_STRING_EQUAL(s, "https://host:8443/x@y.cfb");
        free(s);
        s = bundle_url_for_log("http://host/a.cfb");
        CU_ASSERT_STRING_EQUAL(s, "http://host/a.cfb");
        free(s);
}

int main(void)
{
        static const struct cf_test tests[] = {
            {"the URL index: sha256 and ETag, no credentials, no weak tags", test_index},
            {"a FIFO at the tmp names is replaced, never opened", test_fifo_at_tmp},
            {"at most BUNDLE_CACHE_MAX files, least recently used first out", test_bound},
            {"URLs shown without credentials", test_url_for_log},
            {NULL, NULL},
        };
        return cf_test_run("daemon-bundle-cache", tests);
}
