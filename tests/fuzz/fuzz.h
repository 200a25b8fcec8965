/* What every fuzz target shares: libFuzzer's entry point and the invariant check that aborts. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Each target is one file defining LLVMFuzzerTestOneInput(). It is linked either with libFuzzer
 * (clang -fsanitize=fuzzer) or with driver.c, which replays a corpus and then runs a bounded,
 * seeded series of mutated inputs. A target reports a broken invariant with FUZZ_CHECK(): the
 * message goes to stderr and the process aborts, so that libFuzzer saves the input as a crash and
 * driver.c prints it before the test fails.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn void fuzz_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define FUZZ_CHECK(cond, ...)                                                                               \
        do {                                                                                                \
                if (!(cond))                                                                                \
                        fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                                         \
        } while (0)

/* A reader over the input that never fails: past the end it yields zeros, so every input is valid. */
struct fuzz_in {
        const uint8_t *p;
        size_t n;
};

static inline int fuzz_left(const struct fuzz_in *in)
{
        return in->n > 0;
}

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
        if (in->n == 0)
                return 0;
        in->n--;
        return *in->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
        uint16_t v = fuzz_u8(in);
        return (uint16_t) (v << 8 | fuzz_u8(in));
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
        uint32_t v = fuzz_u16(in);
        return v << 16 | fuzz_u16(in);
}

static inline void fuzz_bytes(struct fuzz_in *in, uint8_t *out, size_t n)
{
        for (size_t i = 0; i < n; i++)
                out[i] = fuzz_u8(in);
}
