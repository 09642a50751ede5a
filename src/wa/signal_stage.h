/* signal_stage.h - a Signal storage that can hold back its writes: between
 * wg_signal_stage_begin() and _commit()/_discard() every put/remove is kept in memory (reads see
 * them), so the ratchet state a decryption produced reaches the store only after the event it
 * produced is committed (DESIGN "inbound stanzas are acknowledged only after what they produced
 * is committed"). A crash in between leaves the old state: the server re-delivers the message,
 * it decrypts again, and the event (keyed) is found instead of lost. Outside a stage, writes go
 * straight through. keys() goes to the inner storage (staged keys are not listed).
 *
 * Thread: the owner's (like every wg_signal_t storage). */
#ifndef WG_WA_SIGNAL_STAGE_H
#define WG_WA_SIGNAL_STAGE_H

#include "wa/signal.h"

/* A stage in front of inner, which it owns from now on (also on failure). 0, WG_ENOMEM. */
int wg_signal_stage_new(wg_signal_storage_t *inner, wg_signal_storage_t **out);
void wg_signal_stage_begin(wg_signal_storage_t *s);
/* Writes what was held back, in order. 0 or the inner storage's error (the rest is dropped). */
int wg_signal_stage_commit(wg_signal_storage_t *s);
void wg_signal_stage_discard(wg_signal_storage_t *s);
/* The store transaction that _commit wrote into was rolled back: what the inner storage cached
 * from those writes is forgotten (wg_signal_storage_cache_clear), so the next read comes from
 * the store again. */
void wg_signal_stage_rolled_back(wg_signal_storage_t *s);
/* Writes held back now (tests). */
size_t wg_signal_stage_pending(wg_signal_storage_t *s);

#endif
