/* link.c - linking an instance by pairing code, and how many QR codes its current connect
 * attempt has shown (core.h). The engine does the protocol (wa/engine.c, docs/pairing.md);
 * here are the rules an API must not decide on its own: who may ask, which numbers are
 * acceptable, and what each engine refusal means to a client. */
#include "core/core.h"
#include "core/validate.h"
#include "util/err.h"

#include <string.h>

int wg_core_pairing_code(wg_core_t *c, const wg_auth_t *a, const char *id, const char *phone,
                         char code[16], wg_core_err_t *err)
{
    wg_instance_t in;
    char e164[20];
    int rv;
    code[0] = 0;
    if ((rv = wg_core_instance_get(c, a, id, &in, err)) != 0)
        return rv;
    wg_instance_dispose(&in);
    if (!phone || !wg_valid_e164(phone, e164, sizeof(e164))) {
        wg_core_err_set(err, 422, "validation_error", "phone",
                        "phone must be the account's number in international format, digits "
                        "only");
        return WG_EINVAL;
    }
    if (!c->engine || !c->engine->ops->pairing_code) {
        wg_core_err_set(err, 503, "engine_unavailable", NULL, "no WhatsApp engine");
        return WG_EPERM;
    }
    rv = c->engine->ops->pairing_code(c->engine, id, e164, code);
    if (rv == WG_EINVAL) {
        wg_core_err_set(err, 422, "validation_error", "phone",
                        "phone must be the account's number in international format, digits "
                        "only");
    } else if (rv == WG_EPERM) {
        wg_core_err_set(err, 409, "not_pairing", NULL,
                        "the instance is not waiting to be linked (no QR code is shown)");
    } else if (rv) {
        wg_core_err_set(err, 500, "internal_error", NULL, "could not start the pairing code");
    }
    if (rv)
        code[0] = 0;
    return rv;
}

int wg_core_pairing_code_state(wg_core_t *c, const char *id)
{
    if (!c->engine || !c->engine->ops->pairing_code_state)
        return WG_ENOTFOUND;
    return c->engine->ops->pairing_code_state(c->engine, id);
}

int wg_core_qr_count(wg_core_t *c, const char *id)
{
    if (!c->engine || !c->engine->ops->qr_count)
        return 0;
    return c->engine->ops->qr_count(c->engine, id);
}
