/* Typed fields of the JSON records canfleetd keeps in state_dir (job files, the node inventory). */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

/* A string member that fits in out[size] (with its NUL); -EBADMSG when missing, not a string, or too
 * long. */
static inline int json_field_str(json_object *o, const char *key, char *out, size_t size)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return -EBADMSG;
        const char *s = json_object_get_string(v);
        if (strlen(s) >= size)
                return -EBADMSG;
        strcpy(out, s);
        return 0;
}

/* An integer member in 0..max; -EBADMSG when missing, not an integer, negative or above max. */
static inline int json_field_uint(json_object *o, const char *key, uint64_t max, uint64_t *out)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return -EBADMSG;
        int64_t x = json_object_get_int64(v);
        if (x < 0 || (uint64_t) x > max)
                return -EBADMSG;
        *out = (uint64_t) x;
        return 0;
}

/* A boolean member; false when missing. */
static inline bool json_field_flag(json_object *o, const char *key)
{
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}
