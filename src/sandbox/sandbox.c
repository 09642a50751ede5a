/* sandbox.c - entry of `wagate sandbox` (being written: the server, phones, state and control
 * API follow in this directory). Until then it says so and exits with status 1. */
#include "sandbox/sandbox.h"

#include <stdio.h>

int wg_sandbox_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "wagate sandbox: not implemented yet\n");
    return 1;
}
