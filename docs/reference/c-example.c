/* Pull a model with liboci from C, then list the cache.
 *
 *   cc c-example.c -o c-example -L DIR -loci -Wl,-rpath,DIR   (DIR: where liboci.so is)
 *   ./c-example CACHE_DIR [REFERENCE]
 *
 * Prints the ABI version, then each call's envelope on a line of its own. The tests
 * (tests/test_c_example.py) build it and run it against the built-in registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The exports this program uses, as liboci.h declares them. */
extern int AbiVersion(void);
extern char *PullModel(char *request);
extern char *CacheList(char *request);
extern void FreeString(char *envelope);

/* The ABI this program was written for: refuse any other. */
#define WANT_ABI 2

/* s as a JSON string (quotes and backslashes escaped; enough for paths and references). */
static char *json_string(const char *s) {
    char *out = malloc(2 * strlen(s) + 3), *p = out;
    if (out == NULL) return NULL;
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '"';
    *p = '\0';
    return out;
}

/* Prints a call's envelope and frees it; returns 0 when it says "ok":true. */
static int report(const char *name, char *envelope) {
    int ok = strstr(envelope, "\"ok\":true") != NULL;
    printf("%s %s\n", name, envelope);
    FreeString(envelope); /* exactly once, for every envelope an export returned */
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s CACHE_DIR [REFERENCE]\n", argv[0]);
        return 2;
    }
    int abi = AbiVersion();
    printf("abi_version %d\n", abi);
    if (abi != WANT_ABI) {
        fprintf(stderr, "liboci speaks ABI %d, this program ABI %d\n", abi, WANT_ABI);
        return 2;
    }

    char *cache = json_string(argv[1]);
    char request[4096];
    int failed = 0;
    if (argc == 3) {
        char *ref = json_string(argv[2]);
        /* No "env": Go then sees an empty environment (no credentials, no proxy),
           which a registry on 127.0.0.1 needs; a real caller passes its own. */
        snprintf(request, sizeof request, "{\"reference\":%s,\"cache_dir\":%s,\"timeout_ms\":60000}", ref,
                 cache);
        failed |= report("PullModel", PullModel(request));
        free(ref);
    }
    snprintf(request, sizeof request, "{\"cache_dir\":%s}", cache);
    failed |= report("CacheList", CacheList(request));
    free(cache);
    return failed;
}
