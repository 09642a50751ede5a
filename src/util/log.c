/* log.c - see log.h. */
#include "util/log.h"
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Set once by main before threads start; read-only afterwards. */
wg_log_level_t wg_log_min_level = WG_LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

int wg_log_parse_level(const char *s, wg_log_level_t *out)
{
    for (int i = 0; i <= WG_LOG_OFF; i++) {
        if (s && strcmp(s, level_names[i]) == 0) {
            *out = (wg_log_level_t)i;
            return 0;
        }
    }
    return WG_EINVAL;
}

void wg_log_set_level(wg_log_level_t lvl)
{
    wg_log_min_level = lvl;
}

void wg_log_write(wg_log_level_t lvl, const char *module, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int k;
    va_list ap;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    k = snprintf(line + n, sizeof(line) - n, ".%03dZ %s %s ", (int)(tv.tv_usec / 1000),
                 level_names[lvl < WG_LOG_OFF ? lvl : WG_LOG_ERROR], module ? module : "-");
    if (k > 0)
        n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k < sizeof(line) - n ? (size_t)k : sizeof(line) - n - 1;
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(2, line, n);
    (void)w;
}
