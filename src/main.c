/* main.c - the wagate command: sub-commands, configuration, start-up and shut-down. */
#include "util/log.h"

#include <stdio.h>
#include <string.h>

static int usage(FILE *f)
{
    fprintf(f, "usage: wagate <command> [options]\n"
               "  serve     run the gateway (HTTP API, WhatsApp engine, event delivery)\n"
               "  sandbox   run a simulated WhatsApp server with scriptable phones\n"
               "  version   print the version\n");
    return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "version") == 0) {
        printf("wagate %s\n", WG_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0)
        return usage(stdout);
    fprintf(stderr, "wagate: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
