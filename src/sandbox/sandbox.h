/* sandbox.h - `wagate sandbox`: a simulated WhatsApp server (WebSocket + Noise XX responder +
 * binary nodes + pairing/login server side) with scriptable phones and an HTTP control API.
 *
 * wg_sandbox_main() parses the command line (argv[0] is "wagate", argv[1] "sandbox"), runs the
 * server on one libevent loop until SIGINT/SIGTERM and returns the process exit status
 * (0 clean stop, 1 runtime failure, 2 bad usage). Everything it allocates is freed before it
 * returns. */
#ifndef WG_SANDBOX_SANDBOX_H
#define WG_SANDBOX_SANDBOX_H

int wg_sandbox_main(int argc, char **argv);

#endif
