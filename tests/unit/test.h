/* test.h - the unit-test harness: tests register themselves, tests/unit/main.c runs them.
 *
 *   WG_TEST(buf_append) { WG_CHECK(x == 1); WG_CHECK_EQ_INT(a, b); }
 *
 * A failed check records the file:line and expression and ends that test; the runner goes on
 * with the next one and prints "N passed, N failed" last. Run one suite or test by giving a
 * prefix of its name: build/test_unit buf_ */
#ifndef WG_TEST_H
#define WG_TEST_H

#include <stdio.h>
#include <string.h>

typedef struct wg_test_s {
    const char *name;
    void (*fn)(int *failed);
    struct wg_test_s *next;
} wg_test_t;

void wg_test_register(wg_test_t *t);
void wg_test_fail(int *failed, const char *file, int line, const char *msg);

#define WG_TEST(name)                                                                              \
    static void wg_test_fn_##name(int *wg_failed_);                                               \
    static wg_test_t wg_test_rec_##name = {#name, wg_test_fn_##name, NULL};                        \
    __attribute__((constructor)) static void wg_test_reg_##name(void)                             \
    {                                                                                              \
        wg_test_register(&wg_test_rec_##name);                                                     \
    }                                                                                              \
    static void wg_test_fn_##name(int *wg_failed_)

#define WG_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            wg_test_fail(wg_failed_, __FILE__, __LINE__, #cond);                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define WG_CHECK_EQ_INT(a, b)                                                                      \
    do {                                                                                           \
        long long wg_a_ = (long long)(a), wg_b_ = (long long)(b);                                  \
        if (wg_a_ != wg_b_) {                                                                      \
            char wg_m_[256];                                                                       \
            snprintf(wg_m_, sizeof(wg_m_), "%s == %s (%lld != %lld)", #a, #b, wg_a_, wg_b_);       \
            wg_test_fail(wg_failed_, __FILE__, __LINE__, wg_m_);                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define WG_CHECK_STR(a, b)                                                                         \
    do {                                                                                           \
        const char *wg_a_ = (a), *wg_b_ = (b);                                                     \
        if (!wg_a_ || !wg_b_ || strcmp(wg_a_, wg_b_) != 0) {                                       \
            char wg_m_[512];                                                                       \
            snprintf(wg_m_, sizeof(wg_m_), "%s == %s (\"%.200s\" != \"%.200s\")", #a, #b,          \
                     wg_a_ ? wg_a_ : "(null)", wg_b_ ? wg_b_ : "(null)");                          \
            wg_test_fail(wg_failed_, __FILE__, __LINE__, wg_m_);                                   \
            return;                                                                                \
        }                                                                                          \
    } while (0)

#define WG_CHECK_MEM(a, b, n) WG_CHECK(memcmp((a), (b), (n)) == 0)

#endif
