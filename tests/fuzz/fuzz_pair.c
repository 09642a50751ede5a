/* fuzz_pair.c - libFuzzer target for the parsers of src/wa/pair.c that read outside bytes.
 *
 * The first input byte picks the target, the rest is the outside input:
 *   0  wg_pair_verify_success on a <pair-success><device-identity> container as received;
 *   1  the same, but the harness wraps the input (an ADVSignedDeviceIdentity) into a container
 *      with a correct HMAC so the fuzzer reaches the decoding and signature checks;
 *   2  wg_pair_phone_verify_sign on a <pair-device-sign> reply, with fixed keys and details;
 *   3  wg_pair_qr_parse on a scanned QR string;
 *   4  wg_pair_phone_code_finish on a key bundle, and wg_pair_code_unwrap_ephemeral on it;
 *   5  wg_pair_code_normalize on a typed code (NUL-terminated copy).
 * Fixed keys come from constant private keys so seeds made with them (tests/fuzz/corpus/pair/)
 * reach the success paths. Any result is fine; crashes, leaks and UB are not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wa/keys.h"
#include "wa/pair.h"
#include "wa/proto/adv.pb-c.h"

/* Keys shared with the seed generator: private keys of repeated bytes. */
#define PHONE_PRIV 0x44
#define COMPANION_PRIV 0x22
#define ADV_BYTE 0x99
#define PEPH_PRIV 0x33
#define CEPH_PRIV 0x11
/* ADVDeviceIdentity{rawId 1, timestamp 2, keyIndex 3}: the details the phone made */
static const uint8_t DETAILS[] = {0x08, 0x01, 0x10, 0x02, 0x18, 0x03};

static void kp(wg_keys_pair_t *k, uint8_t b)
{
    uint8_t priv[32];
    memset(priv, b, sizeof(priv));
    wg_keys_from_private(k, priv);
}

static void verify(const uint8_t *adv, const wg_keys_pair_t *comp, const uint8_t *p, size_t n)
{
    wg_pair_success_t ok;
    wg_pair_fail_t fail;
    if (wg_pair_verify_success(&ok, &fail, adv, comp, p, n) == 0)
        wg_pair_success_dispose(&ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wg_keys_pair_t phone, comp, peph, ceph;
    uint8_t adv[32], out[32];

    if (size < 1)
        return 0;
    kp(&phone, PHONE_PRIV);
    kp(&comp, COMPANION_PRIV);
    memset(adv, ADV_BYTE, sizeof(adv));
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    switch (data[0] % 6) {
    case 0:
        verify(adv, &comp, p, n);
        break;
    case 1: {
        Wa__ADVSignedDeviceIdentityHMAC h = WA__ADVSIGNED_DEVICE_IDENTITY_HMAC__INIT;
        uint8_t mac[32];
        if (n > WG_PAIR_MAX_INPUT)
            break;
        wg_keys_hmac_sha256(mac, adv, sizeof(adv), p, n);
        h.has_details = h.has_hmac = 1;
        h.details.data = (uint8_t *)p;
        h.details.len = n;
        h.hmac.data = mac;
        h.hmac.len = sizeof(mac);
        uint8_t *buf = malloc(wa__advsigned_device_identity_hmac__get_packed_size(&h));
        if (!buf)
            break;
        size_t len = wa__advsigned_device_identity_hmac__pack(&h, buf);
        verify(adv, &comp, buf, len);
        free(buf);
        break;
    }
    case 2:
        wg_pair_phone_verify_sign(phone.pub, comp.pub, p, n, DETAILS, sizeof(DETAILS));
        break;
    case 3: {
        wg_pair_qr_t qr;
        if (wg_pair_qr_parse(&qr, (const char *)p, n) == 0)
            wg_pair_qr_dispose(&qr);
        break;
    }
    case 4:
        kp(&peph, PEPH_PRIV);
        kp(&ceph, CEPH_PRIV);
        wg_pair_phone_code_finish(out, &peph, &phone, ceph.pub, comp.pub, p, n);
        wg_pair_code_unwrap_ephemeral(out, "15JMBSWA", p, n, 1);
        break;
    case 5: {
        char *s = malloc(n + 1);
        char code[WG_PAIR_CODE_LEN + 1];
        if (!s)
            break;
        memcpy(s, p, n);
        s[n] = '\0';
        wg_pair_code_normalize(code, s);
        free(s);
        break;
    }
    }
    return 0;
}
