/* main.c - runs every registered unit test (see test.h); optional argv[1] = name prefix. */
#include "test.h"

#include <stdlib.h>

static wg_test_t *head, **tail = &head;

void wg_test_register(wg_test_t *t)
{
    *tail = t;
    tail = &t->next;
}

void wg_test_fail(int *failed, const char *file, int line, const char *msg)
{
    *failed = 1;
    fprintf(stderr, "    %s:%d: check failed: %s\n", file, line, msg);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    int passed = 0, nfailed = 0;

    for (wg_test_t *t = head; t; t = t->next) {
        int failed = 0;
        if (only && strncmp(t->name, only, strlen(only)) != 0)
            continue;
        t->fn(&failed);
        printf("%s %s\n", failed ? "FAIL" : "ok  ", t->name);
        fflush(stdout);
        if (failed)
            nfailed++;
        else
            passed++;
    }
    printf("unit: %d passed, %d failed\n", passed, nfailed);
    return nfailed ? 1 : 0;
}
