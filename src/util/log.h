/* log.h - structured one-line logs: "ts level module key=value ...".
 *
 * wg_log() checks the level before its arguments are evaluated. The level is process-wide and
 * set once at start-up (from WAGATE_LOG_LEVEL) before threads start; lines go to stderr, each
 * written with one write() so lines from threads do not interleave. */
#ifndef WG_UTIL_LOG_H
#define WG_UTIL_LOG_H

typedef enum { WG_LOG_DEBUG = 0, WG_LOG_INFO, WG_LOG_WARN, WG_LOG_ERROR, WG_LOG_OFF } wg_log_level_t;

extern wg_log_level_t wg_log_min_level;

/* Parses "debug|info|warn|error|off"; returns 0 and sets *out, or WG_EINVAL. */
int wg_log_parse_level(const char *s, wg_log_level_t *out);
void wg_log_set_level(wg_log_level_t lvl);

void wg_log_write(wg_log_level_t lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define wg_log(lvl, module, ...)                                                                   \
    do {                                                                                           \
        if ((lvl) >= wg_log_min_level)                                                             \
            wg_log_write((lvl), (module), __VA_ARGS__);                                            \
    } while (0)

#endif
