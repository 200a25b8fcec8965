/* The one main() shape of every CUnit test program: a table of tests, non-zero exit on any failure. */
#pragma once

#include <stdio.h>
#include <stdlib.h>

#include <CUnit/Basic.h>

struct cf_test {
        const char *name;
        void (*fn)(void);
};

/* Run the NULL-terminated table as one suite. Exit status: 0 all passed, 1 a test failed,
 * 2 CUnit itself failed. */
static inline int cf_test_run(const char *suite_name, const struct cf_test *tests)
{
        if (CU_initialize_registry() != CUE_SUCCESS)
                return 2;
        CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
        if (!suite)
                return 2;
        for (const struct cf_test *t = tests; t->name; t++)
                if (!CU_add_test(suite, t->name, t->fn))
                        return 2;
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
        unsigned run = CU_get_number_of_tests_run();
        CU_cleanup_registry();
        if (run == 0) {
                fprintf(stderr, "%s: no test ran\n", suite_name);
                return 1;
        }
        return failed ? 1 : 0;
}
