/* synth.c — seeded synthetic task documents: Phonebook (evals.md §4.1 / §4.2), multi-query
 * associative recall and copying.  The exact formats are documented in synth.h. */
#include "train/synth.h"
#include "train/data.h"
#include <string.h>

#define SYNTH_BYTE(s) (0x21 + (int32_t)(s)) /* symbol s of the MQAR / copy alphabet */
#define SYNTH_MAX_ALPHABET 94
#define SYNTH_DEFAULT_ALPHABET 64
#define PHONEBOOK_MAX_ENTRIES 1000000
#define COPY_MAX_LENGTH (1 << 28)
#define NAME_MAX_TRIES 100000

uint64_t ssmlm_synth_below(ssmlm_rng *r, uint64_t n) {
    SSMLM_ASSERT(n >= 1);
    /* accept x >= 2^64 mod n: the accepted range is a multiple of n, so x % n is uniform */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t x = ssmlm_rng_u64(r);
        if (x >= threshold) return x % n;
    }
}

void ssmlm_synth_defaults(ssmlm_synth_config *cfg, int task) {
    memset(cfg, 0, sizeof *cfg);
    cfg->task = task;
    cfg->n_docs = 1000;
    cfg->seed = 0;
    switch (task) {
    case SSMLM_SYNTH_PHONEBOOK: cfg->min_entries = 20, cfg->max_entries = 60; break;
    case SSMLM_SYNTH_MQAR: cfg->min_entries = 4, cfg->max_entries = 16; break;
    default: cfg->min_entries = 8, cfg->max_entries = 32; break;
    }
}

int ssmlm_synth_task_parse(const char *name) {
    if (!name) return -1;
    if (strcmp(name, "phonebook") == 0) return SSMLM_SYNTH_PHONEBOOK;
    if (strcmp(name, "mqar") == 0) return SSMLM_SYNTH_MQAR;
    if (strcmp(name, "copy") == 0) return SSMLM_SYNTH_COPY;
    return -1;
}

const char *ssmlm_synth_task_name(int task) {
    switch (task) {
    case SSMLM_SYNTH_PHONEBOOK: return "phonebook";
    case SSMLM_SYNTH_MQAR: return "mqar";
    case SSMLM_SYNTH_COPY: return "copy";
    }
    return NULL;
}

static int64_t synth_alphabet(const ssmlm_synth_config *cfg) {
    return cfg->vocab ? cfg->vocab : SYNTH_DEFAULT_ALPHABET;
}

ssmlm_status ssmlm_synth_validate(const ssmlm_synth_config *cfg) {
    const char *task = ssmlm_synth_task_name(cfg->task);
    if (!task)
        return ssmlm_fail(SSMLM_ERR_INVALID, "use phonebook, mqar or copy",
                          "synthetic task %d is unknown", cfg->task);
    if (cfg->n_docs < 1)
        return ssmlm_fail(SSMLM_ERR_INVALID, "ask for at least 1 document",
                          "synthetic %s: n_docs %lld must be at least 1", task, (long long)cfg->n_docs);
    if (cfg->max_entries < cfg->min_entries)
        return ssmlm_fail(SSMLM_ERR_INVALID, "make max_entries >= min_entries",
                          "synthetic %s: max_entries %lld is below min_entries %lld", task,
                          (long long)cfg->max_entries, (long long)cfg->min_entries);
    int64_t A = synth_alphabet(cfg);
    switch (cfg->task) {
    case SSMLM_SYNTH_PHONEBOOK:
        if (cfg->min_entries < 3)
            return ssmlm_fail(SSMLM_ERR_INVALID, "a phonebook needs 3 entries: two shots and a query",
                              "synthetic phonebook: min_entries %lld must be at least 3",
                              (long long)cfg->min_entries);
        if (cfg->queries < 0)
            return ssmlm_fail(SSMLM_ERR_INVALID, "use 1 query (the protocol's) or more",
                              "synthetic phonebook: queries %lld is negative", (long long)cfg->queries);
        if (cfg->max_entries > PHONEBOOK_MAX_ENTRIES)
            return ssmlm_fail(SSMLM_ERR_INVALID, NULL,
                              "synthetic phonebook: max_entries %lld is above %d",
                              (long long)cfg->max_entries, PHONEBOOK_MAX_ENTRIES);
        break;
    case SSMLM_SYNTH_MQAR:
        if (A < 4 || A > SYNTH_MAX_ALPHABET || A % 2)
            return ssmlm_fail(SSMLM_ERR_INVALID, "use an even alphabet such as 64",
                              "synthetic mqar: vocab %lld must be even and in [4, %d]", (long long)A,
                              SYNTH_MAX_ALPHABET);
        if (cfg->min_entries < 1 || cfg->max_entries > A / 2)
            return ssmlm_fail(SSMLM_ERR_INVALID, "keys are distinct: at most vocab/2 pairs",
                              "synthetic mqar: pairs [%lld, %lld] must lie in [1, %lld]",
                              (long long)cfg->min_entries, (long long)cfg->max_entries, (long long)(A / 2));
        break;
    case SSMLM_SYNTH_COPY:
        if (A < 2 || A > SYNTH_MAX_ALPHABET)
            return ssmlm_fail(SSMLM_ERR_INVALID, "use an alphabet such as 64",
                              "synthetic copy: vocab %lld must be in [2, %d]", (long long)A, SYNTH_MAX_ALPHABET);
        if (cfg->min_entries < 1 || cfg->max_entries > COPY_MAX_LENGTH)
            return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "synthetic copy: length [%lld, %lld] must lie in [1, %d]",
                              (long long)cfg->min_entries, (long long)cfg->max_entries, COPY_MAX_LENGTH);
        break;
    }
    return SSMLM_OK;
}

/* ---- phonebook ----------------------------------------------------------------------------- */

/* Frequency-weighted draw from a name list. */
static const char *draw_name(ssmlm_rng *r, int kind) {
    const ssmlm_name_list *l = ssmlm_names_builtin(kind);
    uint64_t total = 0;
    for (int64_t i = 0; i < l->n; i++) total += l->names[i].weight;
    uint64_t u = ssmlm_synth_below(r, total);
    for (int64_t i = 0; i < l->n; i++) {
        if (u < l->names[i].weight) return l->names[i].name;
        u -= l->names[i].weight;
    }
    return l->names[l->n - 1].name;
}

/* Python's str.capitalize() on ASCII: first character upper case, the rest lower case. */
static size_t put_capitalized(char *dst, const char *src) {
    size_t n = 0;
    for (; src[n]; n++) {
        char c = src[n];
        if (n == 0 && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        if (n > 0 && c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        dst[n] = c;
    }
    dst[n] = 0;
    return n;
}

#define PB_NAME_CAP 64
typedef struct pb_entry {
    char name[PB_NAME_CAP]; /* "First Last" */
    char phone[11];
    uint32_t name_len;
} pb_entry;

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/* Inserts entry e into the open-addressing set of names (slots hold index + 1); returns 0 if
 * an equal name is already there. */
static int name_set_insert(int64_t *slots, uint64_t mask, const pb_entry *all, int64_t e) {
    const pb_entry *x = &all[e];
    for (uint64_t h = fnv1a(x->name, x->name_len) & mask;; h = (h + 1) & mask) {
        if (!slots[h]) {
            slots[h] = e + 1;
            return 1;
        }
        const pb_entry *y = &all[slots[h] - 1];
        if (y->name_len == x->name_len && memcmp(y->name, x->name, x->name_len) == 0) return 0;
    }
}

static size_t put_entry(char *dst, const pb_entry *e) {
    memcpy(dst, e->name, e->name_len);
    memcpy(dst + e->name_len, ": ", 2);
    memcpy(dst + e->name_len + 2, e->phone, 10);
    return e->name_len + 12;
}

/* The phonebook prompt and label; with extra > 0 also `extra` more queried entries, distinct
 * from a, b, q and from each other, drawn after them, as lines "First Last: phone\n" in
 * *more (NULL when extra is 0). */
static ssmlm_status phonebook_make(ssmlm_rng *r, int64_t n_entries, int reversed, int allow_dup, int64_t extra,
                                   char **prompt, char **label, char **more) {
    *prompt = NULL;
    *label = NULL;
    *more = NULL;
    if (n_entries < 3 || n_entries > PHONEBOOK_MAX_ENTRIES)
        return ssmlm_fail(SSMLM_ERR_INVALID, "a phonebook needs two shots and a query",
                          "phonebook: %lld entries must lie in [3, %d]", (long long)n_entries,
                          PHONEBOOK_MAX_ENTRIES);
    int64_t N = n_entries;
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)N) cap *= 2;
    pb_entry *e = malloc((size_t)N * sizeof *e);
    int64_t *slots = allow_dup ? NULL : calloc(cap, sizeof *slots);
    if (!e || (!allow_dup && !slots)) {
        free(e);
        free(slots);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "phonebook: out of memory for %lld entries", (long long)N);
    }
    for (int64_t i = 0; i < N; i++) {
        for (int tries = 0;; tries++) {
            if (tries == NAME_MAX_TRIES) {
                free(e);
                free(slots);
                return ssmlm_fail(SSMLM_ERR_INVALID, "allow duplicate names or use fewer entries",
                                  "phonebook: no unique full name found for entry %lld of %lld after %d draws",
                                  (long long)i, (long long)N, NAME_MAX_TRIES);
            }
            int gender = (int)ssmlm_synth_below(r, 2);
            const char *first = draw_name(r, gender ? SSMLM_NAMES_FEMALE : SSMLM_NAMES_MALE);
            const char *last = draw_name(r, SSMLM_NAMES_LAST);
            SSMLM_ASSERT(strlen(first) + strlen(last) + 2 <= PB_NAME_CAP);
            size_t n = put_capitalized(e[i].name, first);
            e[i].name[n++] = ' ';
            n += put_capitalized(e[i].name + n, last);
            e[i].name_len = (uint32_t)n;
            if (allow_dup || name_set_insert(slots, cap - 1, e, i)) break;
        }
        /* phone: first digit uniform in {6,7,8,9}, then 9 uniform digits */
        e[i].phone[0] = (char)('6' + ssmlm_synth_below(r, 4));
        for (int k = 1; k < 10; k++) e[i].phone[k] = (char)('0' + ssmlm_synth_below(r, 10));
        e[i].phone[10] = 0;
    }
    free(slots);

    /* three distinct indices a, b, q, uniform, drawn in that order */
    int64_t a = (int64_t)ssmlm_synth_below(r, (uint64_t)N);
    int64_t b = (int64_t)ssmlm_synth_below(r, (uint64_t)N - 1);
    if (b >= a) b++;
    int64_t q = (int64_t)ssmlm_synth_below(r, (uint64_t)N - 2);
    int64_t lo = a < b ? a : b, hi = a < b ? b : a;
    if (q >= lo) q++;
    if (q >= hi) q++;

    size_t book = 0;
    for (int64_t i = 0; i < N; i++) book += e[i].name_len + 12 + 1;
    static const char question[] = "What is the phone number of ";
    size_t size = book + 2 * (PB_NAME_CAP + 13) + 3 * PB_NAME_CAP + sizeof question + 16;
    char *p = malloc(size), *l = malloc(11);
    if (!p || !l) {
        free(e);
        free(p);
        free(l);
        return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "phonebook: out of memory for the prompt (%zu bytes)", size);
    }
    size_t n = 0;
    if (reversed) {
        n += put_entry(p + n, &e[a]);
        p[n++] = '\n';
        n += put_entry(p + n, &e[b]);
        memcpy(p + n, "\n\n", 2), n += 2;
        memcpy(p + n, question, sizeof question - 1), n += sizeof question - 1;
        memcpy(p + n, e[q].name, e[q].name_len), n += e[q].name_len;
        memcpy(p + n, "?\n\n", 3), n += 3;
    }
    for (int64_t i = 0; i < N; i++) {
        if (i) p[n++] = '\n';
        n += put_entry(p + n, &e[i]);
    }
    memcpy(p + n, "\n\n", 2), n += 2;
    if (!reversed) {
        n += put_entry(p + n, &e[a]);
        p[n++] = '\n';
        n += put_entry(p + n, &e[b]);
        memcpy(p + n, "\n\n", 2), n += 2;
    }
    memcpy(p + n, e[q].name, e[q].name_len), n += e[q].name_len;
    p[n++] = ':';
    SSMLM_ASSERT(n < size);
    p[n] = 0;
    memcpy(l, e[q].phone, 11);
    if (extra > 0) {
        /* a partial Fisher-Yates shuffle of the entries other than a, b, q */
        int64_t *pool = malloc((size_t)N * sizeof *pool), k = 0;
        char *x = malloc((size_t)extra * (PB_NAME_CAP + 14) + 1);
        if (!pool || !x) {
            free(e), free(p), free(l), free(pool), free(x);
            return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "phonebook: out of memory for %lld queries", (long long)extra);
        }
        for (int64_t i = 0; i < N; i++)
            if (i != a && i != b && i != q) pool[k++] = i;
        SSMLM_ASSERT(extra <= k);
        size_t xn = 0;
        for (int64_t j = 0; j < extra; j++) {
            int64_t pick = j + (int64_t)ssmlm_synth_below(r, (uint64_t)(k - j));
            int64_t t = pool[j];
            pool[j] = pool[pick], pool[pick] = t;
            xn += put_entry(x + xn, &e[pool[j]]);
            x[xn++] = '\n';
        }
        x[xn] = 0;
        free(pool);
        *more = x;
    }
    free(e);
    *prompt = p;
    *label = l;
    return SSMLM_OK;
}

ssmlm_status ssmlm_phonebook_make(ssmlm_rng *r, int64_t n_entries, int reversed, int allow_dup,
                                  char **prompt, char **label) {
    char *more;
    return phonebook_make(r, n_entries, reversed, allow_dup, 0, prompt, label, &more);
}

/* ---- documents ----------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Appends one token (if it fits) and counts it. */
#define PUT(tok_, m_)                                                                       \
    do {                                                                                    \
        if (n < cap) tok[n] = (tok_), mask[n] = (uint8_t)((m_) || cfg->mask_all);           \
        n++;                                                                                \
    } while (0)

ssmlm_status ssmlm_synth_document(const ssmlm_synth_config *cfg, int64_t i, int32_t *tok,
                                  uint8_t *mask, int64_t cap, int64_t *out_n) {
    *out_n = 0;
    ssmlm_status s = ssmlm_synth_validate(cfg);
    if (s != SSMLM_OK) return s;
    if (i < 0)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "synthetic document index %lld is negative", (long long)i);
    ssmlm_rng r;
    ssmlm_rng_seed(&r, mix64(mix64(cfg->seed + 0x9e3779b97f4a7c15ull) ^ (uint64_t)i));
    int64_t count = cfg->min_entries + (int64_t)ssmlm_synth_below(&r, (uint64_t)(cfg->max_entries - cfg->min_entries + 1));
    int64_t n = 0, A = synth_alphabet(cfg);

    if (cfg->task == SSMLM_SYNTH_PHONEBOOK) {
        char *prompt, *label, *more;
        /* queries are distinct entries other than the two shots: at most count - 2 */
        int64_t extra = (cfg->queries < count - 2 ? cfg->queries : count - 2) - 1;
        if (extra < 0) extra = 0;
        s = phonebook_make(&r, count, cfg->reversed, cfg->allow_dup_names, extra, &prompt, &label, &more);
        if (s != SSMLM_OK) {
            ssmlm_error_context("synthetic phonebook document %lld", (long long)i);
            return s;
        }
        /* prompt + " " + label + "\n" [+ more queried lines] + EOD; the digits of every
         * answer and its newline are scored */
        for (const char *c = prompt; *c; c++) PUT((unsigned char)*c, 0);
        PUT(' ', 0);
        for (const char *c = label; *c; c++) PUT((unsigned char)*c, 1);
        PUT('\n', 1);
        for (const char *c = more ? more : ""; *c; c++) {
            /* "First Last: dddddddddd\n": the 10 digits and the newline follow ": " */
            const char *colon = strchr(c, ':');
            for (; c < colon + 2; c++) PUT((unsigned char)*c, 0);
            for (int k = 0; k < 11; k++, c++) PUT((unsigned char)*c, 1);
            c--;
        }
        free(prompt);
        free(label);
        free(more);
    } else if (cfg->task == SSMLM_SYNTH_MQAR) {
        int64_t half = A / 2;
        int64_t keys[SYNTH_MAX_ALPHABET / 2], vals[SYNTH_MAX_ALPHABET / 2], pool[SYNTH_MAX_ALPHABET / 2];
        /* n distinct keys: a partial Fisher-Yates shuffle of the key symbols */
        for (int64_t k = 0; k < half; k++) pool[k] = k;
        for (int64_t k = 0; k < count; k++) {
            int64_t j = k + (int64_t)ssmlm_synth_below(&r, (uint64_t)(half - k));
            int64_t t = pool[k];
            pool[k] = pool[j], pool[j] = t;
            keys[k] = pool[k];
            vals[k] = half + (int64_t)ssmlm_synth_below(&r, (uint64_t)half);
        }
        for (int64_t k = 0; k < count; k++) {
            PUT(SYNTH_BYTE(keys[k]), 0);
            PUT(SYNTH_BYTE(vals[k]), 0);
        }
        PUT('\n', 0);
        /* query order: a uniform shuffle of the pairs */
        int64_t order[SYNTH_MAX_ALPHABET / 2];
        for (int64_t k = 0; k < count; k++) order[k] = k;
        for (int64_t k = count - 1; k > 0; k--) {
            int64_t j = (int64_t)ssmlm_synth_below(&r, (uint64_t)k + 1);
            int64_t t = order[k];
            order[k] = order[j], order[j] = t;
        }
        for (int64_t k = 0; k < count; k++) {
            PUT(SYNTH_BYTE(keys[order[k]]), 0);
            PUT(SYNTH_BYTE(vals[order[k]]), 1);
        }
        PUT('\n', 0);
    } else {
        /* copy: the string is drawn once and written twice; only the copy is scored */
        int64_t start = n;
        for (int64_t k = 0; k < count; k++) PUT(SYNTH_BYTE(ssmlm_synth_below(&r, (uint64_t)A)), 0);
        PUT('\n', 0);
        for (int64_t k = 0; k < count; k++) PUT(start + k < cap ? tok[start + k] : 0, 1);
        PUT('\n', 1);
    }
    PUT(SSMLM_BYTE_EOD, 0);
    *out_n = n;
    if (n > cap)
        return ssmlm_fail(SSMLM_ERR_INVALID, "call again with a larger buffer",
                          "synthetic document %lld needs %lld tokens, the buffer holds %lld", (long long)i,
                          (long long)n, (long long)cap);
    return SSMLM_OK;
}
