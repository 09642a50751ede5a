/* nodes_tool.c - command-line bridge between the C binary-node codec and the Baileys interop
 * suite (tests/interop/binary.test.mjs). Built by tests/interop/run.sh against build/libwagate.a.
 *
 *   nodes_tool encode < nodes.jsonl > hex.txt    one JSON node per line -> hex of our bytes
 *   nodes_tool decode < hex.txt > nodes.jsonl    hex bytes per line -> JSON node (ours)
 *
 * A line that fails gives {"error": "<message>"} (decode) or "error <message>" (encode), so the
 * line numbers stay aligned. JSON node form:
 *   {"tag": "iq", "attrs": {"id": "1", "to": {"jid": "@s.whatsapp.net"}},
 *    "content": null | [node, ...] | {"bytes": "<hex>"} | {"text": "..."} | {"jid": "..."}}
 * Attribute order is the object's order (jansson keeps insertion order). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/codec.h"
#include "util/err.h"
#include "wa/binary.h"
#include "wa/node.h"

static wg_node_t *from_json(json_t *j, const char **why);

static int set_content(wg_node_t *n, json_t *c, const char **why)
{
    json_t *v;
    size_t i;

    if (!c || json_is_null(c))
        return 0;
    if (json_is_array(c)) {
        wg_node_set_list(n);
        for (i = 0; i < json_array_size(c); i++) {
            wg_node_t *k = from_json(json_array_get(c, i), why);
            if (!k || wg_node_add_child(n, k) != 0) {
                wg_node_free(k);
                return -1;
            }
        }
        return 0;
    }
    if ((v = json_object_get(c, "bytes")) && json_is_string(v)) {
        const char *h = json_string_value(v);
        size_t hl = strlen(h);
        uint8_t *p = malloc(hl / 2 + 1);
        ssize_t len = p ? wg_hex_decode(h, hl, p, hl / 2 + 1) : -1;
        if (len < 0) {
            free(p);
            *why = "bad hex";
            return -1;
        }
        return wg_node_take_bytes(n, p, (size_t)len);
    }
    if ((v = json_object_get(c, "text")) && json_is_string(v))
        return wg_node_set_text(n, json_string_value(v));
    if ((v = json_object_get(c, "jid")) && json_is_string(v)) {
        if (wg_node_set_text_jid(n, json_string_value(v)) != 0) {
            *why = "bad content jid";
            return -1;
        }
        return 0;
    }
    *why = "bad content";
    return -1;
}

static wg_node_t *from_json(json_t *j, const char **why)
{
    json_t *tag = json_object_get(j, "tag"), *attrs = json_object_get(j, "attrs"), *v;
    const char *key;
    wg_node_t *n;

    if (!json_is_string(tag) || !(n = wg_node_new(json_string_value(tag)))) {
        *why = "bad tag";
        return NULL;
    }
    json_object_foreach(attrs, key, v)
    {
        int rv;
        if (json_is_string(v))
            rv = wg_node_set_attr(n, key, json_string_value(v));
        else if (json_is_object(v) && json_is_string(json_object_get(v, "jid")))
            rv = wg_node_set_attr_jid(n, key, json_string_value(json_object_get(v, "jid")));
        else
            rv = WG_EINVAL;
        if (rv != 0) {
            *why = "bad attribute";
            wg_node_free(n);
            return NULL;
        }
    }
    if (set_content(n, json_object_get(j, "content"), why) != 0) {
        wg_node_free(n);
        return NULL;
    }
    return n;
}

static json_t *to_json(const wg_node_t *n)
{
    json_t *o = json_object(), *attrs = json_object(), *c = NULL;
    const char *key, *val;
    size_t i, len;
    int is_jid;

    json_object_set_new(o, "tag", json_string(wg_node_tag(n)));
    for (i = 0; (key = wg_node_attr_at(n, i, &val, &is_jid)) != NULL; i++)
        json_object_set_new(attrs, key, is_jid ? json_pack("{s:s}", "jid", val) : json_string(val));
    json_object_set_new(o, "attrs", attrs);
    switch (wg_node_content_type(n)) {
    case WG_NODE_LIST:
        c = json_array();
        for (i = 0; i < wg_node_child_count(n); i++)
            json_array_append_new(c, to_json(wg_node_child(n, i)));
        break;
    case WG_NODE_BYTES: {
        const uint8_t *p = wg_node_bytes(n, &len);
        char *h = wg_hex_encode(p, len);
        c = json_pack("{s:s}", "bytes", h);
        free(h);
        break;
    }
    case WG_NODE_TEXT: {
        const uint8_t *p = wg_node_bytes(n, &len);
        c = json_pack("{s:s%}", wg_node_text_is_jid(n) ? "jid" : "text", (const char *)p, len);
        break;
    }
    default:
        c = json_null();
    }
    json_object_set_new(o, "content", c);
    return o;
}

int main(int argc, char **argv)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int encode;
    wg_buf_t b;

    if (argc != 2 || (strcmp(argv[1], "encode") != 0 && strcmp(argv[1], "decode") != 0)) {
        fprintf(stderr, "usage: %s encode|decode < in > out\n", argv[0]);
        return 2;
    }
    encode = strcmp(argv[1], "encode") == 0;
    wg_buf_init(&b, 0);
    while ((len = getline(&line, &cap, stdin)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (encode) {
            json_error_t err;
            json_t *j = json_loads(line, 0, &err);
            const char *why = "bad json";
            wg_node_t *n = j ? from_json(j, &why) : NULL;
            int rv;
            char *h;
            if (!n) {
                printf("error %s\n", why);
                json_decref(j);
                continue;
            }
            wg_buf_reset(&b);
            if ((rv = wg_binary_encode(n, &b)) != 0) {
                printf("error %s\n", wg_strerror(rv));
            } else {
                h = wg_hex_encode(b.data, b.len);
                printf("%s\n", h);
                free(h);
            }
            wg_node_free(n);
            json_decref(j);
        } else {
            uint8_t *p = malloc((size_t)len / 2 + 1);
            ssize_t n = p ? wg_hex_decode(line, (size_t)len, p, (size_t)len / 2 + 1) : -1;
            wg_node_t *node = NULL;
            int rv = n < 0 ? WG_EINVAL : wg_binary_decode(p, (size_t)n, NULL, &node);
            json_t *j;
            char *s;
            if (rv != 0) {
                j = json_pack("{s:s}", "error", wg_strerror(rv));
            } else {
                j = to_json(node);
            }
            s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
            printf("%s\n", s);
            free(s);
            json_decref(j);
            wg_node_free(node);
            free(p);
        }
    }
    free(line);
    wg_buf_dispose(&b);
    return 0;
}
