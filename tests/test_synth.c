/* test_synth.c — synthetic tasks: the Phonebook prompt layout (standard and reversed) byte for
 * byte, names, phones and indices; MQAR and copy documents and their loss masks; seeding. */
#include "test.h"
#include "train/data.h"
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------------- */

/* Splits s at '\n' into lines (pointers into *copy; the caller frees *lines and *copy). */
static int split_lines(const char *s, char ***lines, char **copy) {
    *copy = strdup(s);
    int n = 1;
    for (const char *c = s; *c; c++) n += *c == '\n';
    *lines = malloc((size_t)n * sizeof **lines);
    int k = 0;
    char *p = *copy;
    (*lines)[k++] = p;
    for (; *p; p++)
        if (*p == '\n') {
            *p = 0;
            (*lines)[k++] = p + 1;
        }
    return n;
}

static int in_list(int kind, const char *upper) {
    const ssmlm_name_list *l = ssmlm_names_builtin(kind);
    for (int64_t i = 0; i < l->n; i++)
        if (strcmp(l->names[i].name, upper) == 0) return 1;
    return 0;
}

/* A word capitalized like str.capitalize() whose upper-case form is in the list. */
static int name_ok(const char *w, size_t n, int kind1, int kind2) {
    char up[64];
    if (n == 0 || n >= sizeof up) return 0;
    if (!(w[0] >= 'A' && w[0] <= 'Z')) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = w[i];
        if (i > 0 && c >= 'A' && c <= 'Z') return 0;
        up[i] = (char)(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    up[n] = 0;
    return in_list(kind1, up) || (kind2 >= 0 && in_list(kind2, up));
}

/* Checks "First Last: dddddddddd"; returns the length of the name part (0 if malformed). */
static size_t check_entry(const char *line) {
    const char *colon = strchr(line, ':');
    const char *space = strchr(line, ' ');
    if (!colon || !space || space > colon) return 0;
    size_t name_len = (size_t)(colon - line);
    if (!name_ok(line, (size_t)(space - line), SSMLM_NAMES_MALE, SSMLM_NAMES_FEMALE)) return 0;
    if (!name_ok(space + 1, (size_t)(colon - space - 1), SSMLM_NAMES_LAST, -1)) return 0;
    const char *ph = colon + 1;
    if (ph[0] != ' ' || strlen(ph + 1) != 10) return 0;
    if (ph[1] < '6' || ph[1] > '9') return 0;
    for (int i = 1; i <= 10; i++)
        if (ph[i] < '0' || ph[i] > '9') return 0;
    return name_len;
}

typedef struct parsed_book {
    int n;                   /* entries */
    int a, b, q;             /* shot and query indices (-1 if not found) */
    int ok;                  /* layout exactly as expected */
} parsed_book;

static int find_entry(char **entries, int n, const char *line) {
    for (int i = 0; i < n; i++)
        if (strcmp(entries[i], line) == 0) return i;
    return -1;
}

/* Parses a prompt of N entries in the standard or reversed layout, and rebuilds it from the
 * parsed pieces to compare byte for byte. */
static parsed_book parse_book(const char *prompt, const char *label, int N, int reversed) {
    parsed_book pb = {N, -1, -1, -1, 0};
    char **L, *copy;
    int nl = split_lines(prompt, &L, &copy);
    int want_lines = reversed ? N + 7 : N + 5;
    if (nl != want_lines) goto out;
    char **book = reversed ? L + 5 : L;
    for (int i = 0; i < N; i++)
        if (!check_entry(book[i])) goto out;
    char *sa = reversed ? L[0] : L[N + 1], *sb = reversed ? L[1] : L[N + 2];
    char *query = L[nl - 1];
    pb.a = find_entry(book, N, sa);
    pb.b = find_entry(book, N, sb);
    size_t ql = strlen(query);
    if (ql < 2 || query[ql - 1] != ':') goto out;
    for (int i = 0; i < N; i++)
        if (strncmp(book[i], query, ql) == 0 && book[i][ql] == ' ') pb.q = i;
    if (pb.a < 0 || pb.b < 0 || pb.q < 0) goto out;
    if (strcmp(book[pb.q] + ql + 1, label) != 0) goto out;
    /* rebuild */
    size_t cap = strlen(prompt) + 256;
    char *re = malloc(cap), name[80];
    snprintf(name, sizeof name, "%.*s", (int)(ql - 1), query);
    size_t n = 0;
    if (reversed)
        n += (size_t)snprintf(re + n, cap - n, "%s\n%s\n\nWhat is the phone number of %s?\n\n", book[pb.a],
                              book[pb.b], name);
    for (int i = 0; i < N; i++) n += (size_t)snprintf(re + n, cap - n, "%s%s", i ? "\n" : "", book[i]);
    n += (size_t)snprintf(re + n, cap - n, "\n\n");
    if (!reversed) n += (size_t)snprintf(re + n, cap - n, "%s\n%s\n\n", book[pb.a], book[pb.b]);
    snprintf(re + n, cap - n, "%s:", name);
    pb.ok = strcmp(re, prompt) == 0;
    free(re);
out:
    free(L);
    free(copy);
    return pb;
}

/* ---- phonebook ------------------------------------------------------------------------------ */

static void test_phonebook_fixed(void) {
    /* a fixed seed gives a fixed prompt: pinned byte for byte */
    ssmlm_rng r;
    ssmlm_rng_seed(&r, 7);
    char *p, *l;
    CHECK_OK(ssmlm_phonebook_make(&r, 4, 0, 0, &p, &l));
    const char *want_p = "Donald Graham: 6416689367\n"
                         "Jessica Brown: 9457523264\n"
                         "Lillian Burton: 7204528878\n"
                         "Gerald Willis: 9757431444\n"
                         "\n"
                         "Jessica Brown: 9457523264\n"
                         "Donald Graham: 6416689367\n"
                         "\n"
                         "Gerald Willis:";
    CHECK(strcmp(p, want_p) == 0, "fixed-seed phonebook differs:\n%s", p);
    CHECK(strcmp(l, "9757431444") == 0, "fixed-seed label %s", l);
    free(p);
    free(l);

    ssmlm_rng_seed(&r, 7);
    CHECK_OK(ssmlm_phonebook_make(&r, 4, 1, 0, &p, &l));
    const char *want_r = "Jessica Brown: 9457523264\n"
                         "Donald Graham: 6416689367\n"
                         "\n"
                         "What is the phone number of Gerald Willis?\n"
                         "\n"
                         "Donald Graham: 6416689367\n"
                         "Jessica Brown: 9457523264\n"
                         "Lillian Burton: 7204528878\n"
                         "Gerald Willis: 9757431444\n"
                         "\n"
                         "Gerald Willis:";
    CHECK(strcmp(p, want_r) == 0, "fixed-seed reversed phonebook differs:\n%s", p);
    CHECK(strcmp(l, "9757431444") == 0, "fixed-seed reversed label %s", l);
    free(p);
    free(l);
}

static void test_phonebook_layout(void) {
    ssmlm_rng r;
    ssmlm_rng_seed(&r, 1234);
    int bad = 0, shot_bad = 0, q_seen[3] = {0, 0, 0}, first_digit[10] = {0};
    for (int trial = 0; trial < 300; trial++) {
        int N = 3 + trial % 9, rev = trial % 2;
        char *p, *l;
        CHECK_OK(ssmlm_phonebook_make(&r, N, rev, 0, &p, &l));
        parsed_book pb = parse_book(p, l, N, rev);
        if (!pb.ok) {
            if (!bad) fprintf(stderr, "bad layout (N=%d, reversed=%d):\n%s\nlabel %s\n", N, rev, p, l);
            bad++;
        }
        if (pb.a == pb.b || pb.q == pb.a || pb.q == pb.b) shot_bad++;
        if (N == 3 && pb.q >= 0) q_seen[pb.q]++;
        first_digit[l[0] - '0']++;
        free(p);
        free(l);
    }
    CHECK(bad == 0, "%d phonebooks with a wrong layout", bad);
    CHECK(shot_bad == 0, "%d phonebooks where shots repeat or the query is a shot", shot_bad);
    CHECK(q_seen[0] && q_seen[1] && q_seen[2], "N=3: query index not uniform: %d %d %d", q_seen[0], q_seen[1], q_seen[2]);
    int digits_ok = 1;
    for (int d = 0; d < 10; d++) digits_ok &= d >= 6 ? first_digit[d] > 40 : first_digit[d] == 0;
    CHECK(digits_ok, "first digits 6..9 only, each used: %d %d %d %d", first_digit[6], first_digit[7],
          first_digit[8], first_digit[9]);
}

/* Counts entries whose full name repeats a later entry's (entries are the first N lines). */
static int64_t count_duplicates(const char *prompt, int N) {
    char **L, *copy;
    split_lines(prompt, &L, &copy);
    int64_t dup = 0;
    for (int i = 0; i < N; i++) *strchr(L[i], ':') = 0;
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (strcmp(L[i], L[j]) == 0) {
                dup++;
                break;
            }
    free(L);
    free(copy);
    return dup;
}

static void test_phonebook_names(void) {
    ssmlm_rng r;
    ssmlm_rng_seed(&r, 99);
    char *p, *l;
    int N = 3000;
    CHECK_OK(ssmlm_phonebook_make(&r, N, 0, 0, &p, &l));
    CHECK(count_duplicates(p, N) == 0, "unique names requested, duplicates found");
    parsed_book pb = parse_book(p, l, N, 0);
    CHECK(pb.ok, "3000-entry book layout");
    /* frequency weighting: James and Smith are far more common than the tail of the lists */
    int64_t james = 0, smith = 0, wade = 0;
    for (const char *c = p; (c = strstr(c, "James ")); c++) james++;
    for (const char *c = p; (c = strstr(c, " Smith:")); c++) smith++;
    for (const char *c = p; (c = strstr(c, "Wade ")); c++) wade++;
    CHECK(james > 3 * (wade + 1) && smith > 30, "weighting: James %lld, Wade %lld, Smith %lld", (long long)james,
          (long long)wade, (long long)smith);
    free(p);
    free(l);
    /* without uniqueness, a big book repeats some full names (the reference behaviour) */
    CHECK_OK(ssmlm_phonebook_make(&r, N, 0, 1, &p, &l));
    CHECK(count_duplicates(p, N) > 0, "allow_dup: expected repeated names in %d entries", N);
    free(p);
    free(l);
    /* Python capitalize(): MCDONALD -> Mcdonald */
    CHECK(in_list(SSMLM_NAMES_LAST, "MCDONALD") && name_ok("Mcdonald", 8, SSMLM_NAMES_LAST, -1) &&
              !name_ok("McDonald", 8, SSMLM_NAMES_LAST, -1),
          "capitalization rule");
    /* lists: non-empty, upper case, weights positive */
    for (int k = SSMLM_NAMES_MALE; k <= SSMLM_NAMES_LAST; k++) {
        const ssmlm_name_list *nl = ssmlm_names_builtin(k);
        int ok = nl && nl->n >= 200;
        for (int64_t i = 0; ok && i < nl->n; i++) {
            ok &= nl->names[i].weight > 0;
            for (const char *c = nl->names[i].name; *c; c++) ok &= (*c >= 'A' && *c <= 'Z');
        }
        CHECK(ok, "name list %d malformed", k);
    }
    CHECK(ssmlm_names_builtin(7) == NULL, "unknown list kind");
    /* too few entries */
    CHECK(ssmlm_phonebook_make(&r, 2, 0, 0, &p, &l) == SSMLM_ERR_INVALID && p == NULL && l == NULL,
          "2 entries must be rejected");
    CHECK(strstr(ssmlm_last_error(), "entries") != NULL, "error names entries: %s", ssmlm_last_error());
}

/* ---- synthetic corpora -------------------------------------------------------------------- */

static void test_phonebook_docs(void) {
    ssmlm_synth_config c;
    ssmlm_synth_defaults(&c, SSMLM_SYNTH_PHONEBOOK);
    c.n_docs = 40;
    c.seed = 5;
    c.min_entries = 3;
    c.max_entries = 12;
    for (int rev = 0; rev < 2; rev++) {
        c.reversed = rev;
        ssmlm_docs *d;
        CHECK_OK(ssmlm_docs_synthetic(&d, &c));
        CHECK(ssmlm_docs_count(d) == 40, "40 documents");
        int bad = 0;
        int64_t min_n = 1 << 30, max_n = 0;
        for (int64_t i = 0; i < ssmlm_docs_count(d); i++) {
            int64_t len = ssmlm_docs_length(d, i);
            int32_t *t = malloc((size_t)len * sizeof *t);
            ssmlm_docs_read(d, i, 0, len, t);
            const uint8_t *m = ssmlm_docs_mask(d, i);
            /* prompt + " " + label + "\n" + EOD, mask on the 10 digits and the newline */
            char *s = malloc((size_t)len);
            for (int64_t k = 0; k + 1 < len; k++) s[k] = (char)t[k];
            s[len - 1] = 0;
            int ok = t[len - 1] == SSMLM_BYTE_EOD && len > 13 && s[len - 2] == '\n' && s[len - 13] == ' ';
            for (int64_t k = 0; ok && k < len; k++) ok &= m[k] == (k >= len - 12 && k < len - 1);
            if (ok) {
                char label[11];
                memcpy(label, s + len - 12, 10);
                label[10] = 0;
                s[len - 13] = 0;
                int N = 0;
                for (char *c2 = s; *c2; c2++) N += *c2 == '\n';
                N = rev ? N - 6 : N - 4;
                if (N < min_n) min_n = N;
                if (N > max_n) max_n = N;
                ok = parse_book(s, label, N, rev).ok;
            }
            if (!ok) bad++;
            free(s);
            free(t);
        }
        CHECK(bad == 0, "reversed=%d: %d malformed phonebook documents", rev, bad);
        CHECK(min_n >= 3 && max_n <= 12 && max_n > min_n, "entries in [3, 12]: %lld..%lld", (long long)min_n,
              (long long)max_n);
        CHECK(ssmlm_docs_max_token(d) == SSMLM_BYTE_EOD, "max token is EOD");
        ssmlm_docs_free(d);
    }
}

static void test_mqar(void) {
    ssmlm_synth_config c;
    ssmlm_synth_defaults(&c, SSMLM_SYNTH_MQAR);
    c.n_docs = 50;
    c.seed = 11;
    c.min_entries = 1;
    c.max_entries = 8;
    c.vocab = 16;
    ssmlm_docs *d;
    CHECK_OK(ssmlm_docs_synthetic(&d, &c));
    int bad = 0, seen_n[9] = {0};
    for (int64_t i = 0; i < ssmlm_docs_count(d); i++) {
        int64_t len = ssmlm_docs_length(d, i), n = (len - 3) / 4;
        int32_t t[64];
        const uint8_t *m = ssmlm_docs_mask(d, i);
        int ok = len <= 64 && (len - 3) % 4 == 0 && n >= 1 && n <= 8;
        if (ok) {
            ssmlm_docs_read(d, i, 0, len, t);
            seen_n[n]++;
            int val_of[8];
            for (int k = 0; k < 8; k++) val_of[k] = -1;
            for (int64_t k = 0; k < n; k++) {
                int key = t[2 * k] - 0x21, val = t[2 * k + 1] - 0x21;
                ok &= key >= 0 && key < 8 && val >= 8 && val < 16 && val_of[key] < 0;
                if (ok) val_of[key] = val;
                ok &= m[2 * k] == 0 && m[2 * k + 1] == 0;
            }
            ok &= t[2 * n] == '\n' && m[2 * n] == 0;
            int asked[8] = {0};
            for (int64_t k = 0; ok && k < n; k++) {
                int32_t qk = t[2 * n + 1 + 2 * k], qv = t[2 * n + 2 + 2 * k];
                int key = qk - 0x21;
                ok &= key >= 0 && key < 8 && val_of[key] >= 0 && !asked[key];
                if (ok) asked[key] = 1, ok &= qv - 0x21 == val_of[key];
                ok &= m[2 * n + 1 + 2 * k] == 0 && m[2 * n + 2 + 2 * k] == 1;
            }
            ok &= t[len - 2] == '\n' && t[len - 1] == SSMLM_BYTE_EOD && m[len - 2] == 0 && m[len - 1] == 0;
        }
        if (!ok) bad++;
    }
    CHECK(bad == 0, "%d malformed MQAR documents", bad);
    CHECK(seen_n[1] && seen_n[8], "pair counts cover [1, 8]");
    ssmlm_docs_free(d);

    /* limits */
    c.max_entries = 9;
    CHECK(ssmlm_docs_synthetic(&d, &c) == SSMLM_ERR_INVALID && d == NULL, "9 distinct keys from 8 symbols");
    CHECK(strstr(ssmlm_last_error(), "mqar") != NULL, "error names the task: %s", ssmlm_last_error());
    c.max_entries = 4;
    c.vocab = 15;
    CHECK(ssmlm_docs_synthetic(&d, &c) == SSMLM_ERR_INVALID, "odd alphabet rejected");
    c.vocab = 96;
    CHECK(ssmlm_docs_synthetic(&d, &c) == SSMLM_ERR_INVALID, "alphabet beyond printable ASCII rejected");
}

static void test_copy(void) {
    ssmlm_synth_config c;
    ssmlm_synth_defaults(&c, SSMLM_SYNTH_COPY);
    c.n_docs = 30;
    c.seed = 3;
    c.min_entries = 1;
    c.max_entries = 20;
    ssmlm_docs *d;
    CHECK_OK(ssmlm_docs_synthetic(&d, &c));
    int bad = 0;
    for (int64_t i = 0; i < ssmlm_docs_count(d); i++) {
        int64_t len = ssmlm_docs_length(d, i), n = (len - 3) / 2;
        int32_t t[64];
        const uint8_t *m = ssmlm_docs_mask(d, i);
        int ok = len <= 64 && (len - 3) % 2 == 0 && n >= 1 && n <= 20;
        if (ok) {
            ssmlm_docs_read(d, i, 0, len, t);
            for (int64_t k = 0; k < n; k++) {
                ok &= t[k] >= 0x21 && t[k] < 0x21 + 64 && t[n + 1 + k] == t[k];
                ok &= m[k] == 0 && m[n + 1 + k] == 1;
            }
            ok &= t[n] == '\n' && m[n] == 0 && t[2 * n + 1] == '\n' && m[2 * n + 1] == 1;
            ok &= t[len - 1] == SSMLM_BYTE_EOD && m[len - 1] == 0;
        }
        if (!ok) bad++;
    }
    CHECK(bad == 0, "%d malformed copy documents", bad);
    ssmlm_docs_free(d);
}

static int same_corpus(const ssmlm_docs *a, const ssmlm_docs *b, int64_t ndocs) {
    for (int64_t i = 0; i < ndocs; i++) {
        int64_t len = ssmlm_docs_length(a, i);
        if (len != ssmlm_docs_length(b, i)) return 0;
        int32_t *x = malloc((size_t)len * sizeof *x), *y = malloc((size_t)len * sizeof *y);
        ssmlm_docs_read(a, i, 0, len, x);
        ssmlm_docs_read(b, i, 0, len, y);
        int eq = memcmp(x, y, (size_t)len * sizeof *x) == 0 &&
                 memcmp(ssmlm_docs_mask(a, i), ssmlm_docs_mask(b, i), (size_t)len) == 0;
        free(x);
        free(y);
        if (!eq) return 0;
    }
    return 1;
}

static void test_seeding(void) {
    for (int task = SSMLM_SYNTH_PHONEBOOK; task <= SSMLM_SYNTH_COPY; task++) {
        ssmlm_synth_config c;
        ssmlm_synth_defaults(&c, task);
        c.n_docs = 12;
        c.seed = 42;
        if (task == SSMLM_SYNTH_PHONEBOOK) c.min_entries = 3, c.max_entries = 10;
        ssmlm_docs *a, *b, *e, *f;
        CHECK_OK(ssmlm_docs_synthetic(&a, &c));
        CHECK_OK(ssmlm_docs_synthetic(&b, &c));
        c.n_docs = 5; /* document i does not depend on n_docs */
        CHECK_OK(ssmlm_docs_synthetic(&e, &c));
        c.n_docs = 12;
        c.seed = 43;
        CHECK_OK(ssmlm_docs_synthetic(&f, &c));
        CHECK(same_corpus(a, b, 12), "%s: same seed, different corpus", ssmlm_synth_task_name(task));
        CHECK(same_corpus(a, e, 5), "%s: prefix depends on n_docs", ssmlm_synth_task_name(task));
        CHECK(!same_corpus(a, f, 12), "%s: another seed gives the same corpus", ssmlm_synth_task_name(task));
        /* one document on its own equals the corpus' copy; a small buffer reports the size */
        int64_t n = -1;
        c.seed = 42;
        CHECK(ssmlm_synth_document(&c, 3, NULL, NULL, 0, &n) == SSMLM_ERR_INVALID && n == ssmlm_docs_length(a, 3),
              "size query: %lld", (long long)n);
        int32_t *t = malloc((size_t)n * sizeof *t), *u = malloc((size_t)n * sizeof *u);
        uint8_t *m = malloc((size_t)n);
        CHECK_OK(ssmlm_synth_document(&c, 3, t, m, n, &n));
        ssmlm_docs_read(a, 3, 0, n, u);
        CHECK(memcmp(t, u, (size_t)n * sizeof *t) == 0 && memcmp(m, ssmlm_docs_mask(a, 3), (size_t)n) == 0,
              "single document equals the corpus document");
        free(t);
        free(u);
        free(m);
        ssmlm_docs_free(a);
        ssmlm_docs_free(b);
        ssmlm_docs_free(e);
        ssmlm_docs_free(f);
    }
}

/* queries: the document starts like the one-query document (same book, shots, query and
 * answer), then more queried book lines follow, distinct and none of them a shot or the first
 * query; each answer's digits and newline are scored. */
static void test_phonebook_queries(void) {
    ssmlm_synth_config c;
    ssmlm_synth_defaults(&c, SSMLM_SYNTH_PHONEBOOK);
    c.n_docs = 30;
    c.seed = 8;
    c.min_entries = 3;
    c.max_entries = 9;
    ssmlm_docs *one, *many;
    CHECK_OK(ssmlm_docs_synthetic(&one, &c));
    c.queries = 5;
    CHECK_OK(ssmlm_docs_synthetic(&many, &c));
    int bad = 0, extra_seen = 0;
    for (int64_t i = 0; i < 30; i++) {
        int64_t n1 = ssmlm_docs_length(one, i), n2 = ssmlm_docs_length(many, i);
        int32_t *t1 = malloc((size_t)n1 * sizeof *t1), *t2 = malloc((size_t)n2 * sizeof *t2);
        ssmlm_docs_read(one, i, 0, n1, t1);
        ssmlm_docs_read(many, i, 0, n2, t2);
        const uint8_t *m2 = ssmlm_docs_mask(many, i);
        /* the same text up to the first answer's newline */
        int ok = n2 >= n1 && memcmp(t1, t2, (size_t)(n1 - 1) * sizeof *t1) == 0 && t2[n2 - 1] == SSMLM_BYTE_EOD;
        char *text = malloc((size_t)n2);
        for (int64_t k = 0; k + 1 < n2; k++) text[k] = (char)t2[k];
        text[n2 - 1] = 0;
        int N = 0;
        for (const char *x = text; *x && !(x[0] == '\n' && x[1] == '\n'); x++) N += *x == '\n';
        N++;
        /* the extra lines: min(5, N - 2) - 1 of them, each a book line, all distinct, none a shot or the query */
        char **L, *copy;
        int nl = split_lines(text, &L, &copy);
        int want = (5 < N - 2 ? 5 : N - 2) - 1, first = N + 5; /* book, blank, 2 shots, blank, query line */
        ok &= nl == first + want + 1 && L[nl - 1][0] == 0;
        for (int e = 0; ok && e < want; e++) {
            const char *line = L[first + e];
            int in_book = 0;
            for (int b = 0; b < N; b++) in_book |= strcmp(L[b], line) == 0;
            ok &= in_book && strcmp(line, L[N + 1]) != 0 && strcmp(line, L[N + 2]) != 0;
            ok &= strncmp(line, L[N + 4], strchr(line, ':') - line + 1) != 0;
            for (int f = 0; f < e; f++) ok &= strcmp(line, L[first + f]) != 0;
        }
        extra_seen += want;
        /* scored: the digits and newline of every answer, nothing else */
        int64_t scored = 0;
        for (int64_t k = 0; k < n2; k++) scored += m2[k];
        ok &= scored == 11 * (want + 1);
        for (int64_t k = n1 - 1; ok && k + 1 < n2; k++)
            ok &= m2[k] == ((t2[k] >= '0' && t2[k] <= '9' && k > 0 && (t2[k - 1] == ' ' || (t2[k - 1] >= '0' && t2[k - 1] <= '9'))) ||
                            t2[k] == '\n');
        if (!ok && !bad) fprintf(stderr, "bad multi-query document %lld:\n%s\n", (long long)i, text);
        bad += !ok;
        free(L);
        free(copy);
        free(text);
        free(t1);
        free(t2);
    }
    CHECK(bad == 0, "%d malformed multi-query documents", bad);
    CHECK(extra_seen > 30, "extra queries generated: %d", extra_seen);
    c.queries = -1;
    CHECK(ssmlm_synth_validate(&c) == SSMLM_ERR_INVALID, "negative queries rejected");
    ssmlm_docs_free(one);
    ssmlm_docs_free(many);
}

/* mask_all: the same tokens, every one of them scored. */
static void test_mask_all(void) {
    for (int task = SSMLM_SYNTH_PHONEBOOK; task <= SSMLM_SYNTH_COPY; task++) {
        ssmlm_synth_config c;
        ssmlm_synth_defaults(&c, task);
        c.n_docs = 6;
        c.seed = 11;
        ssmlm_docs *a, *b;
        CHECK_OK(ssmlm_docs_synthetic(&a, &c));
        c.mask_all = 1;
        CHECK_OK(ssmlm_docs_synthetic(&b, &c));
        int same = ssmlm_docs_total_tokens(a) == ssmlm_docs_total_tokens(b), all = 1, partial = 0;
        for (int64_t i = 0; same && i < 6; i++) {
            int64_t len = ssmlm_docs_length(a, i);
            same &= len == ssmlm_docs_length(b, i);
            if (!same) break;
            int32_t *ta = malloc((size_t)len * sizeof *ta), *tb = malloc((size_t)len * sizeof *tb);
            ssmlm_docs_read(a, i, 0, len, ta);
            ssmlm_docs_read(b, i, 0, len, tb);
            same &= memcmp(ta, tb, (size_t)len * sizeof *ta) == 0;
            const uint8_t *ma = ssmlm_docs_mask(a, i), *mb = ssmlm_docs_mask(b, i);
            for (int64_t k = 0; k < len; k++) {
                all &= !mb || mb[k] == 1;
                partial |= ma && ma[k] == 0;
            }
            free(ta);
            free(tb);
        }
        CHECK(same, "%s: mask_all changes the tokens", ssmlm_synth_task_name(task));
        CHECK(all, "%s: mask_all leaves tokens unscored", ssmlm_synth_task_name(task));
        CHECK(partial, "%s: the default mask scores every token", ssmlm_synth_task_name(task));
        ssmlm_docs_free(a);
        ssmlm_docs_free(b);
    }
}

static void test_config(void) {
    CHECK(ssmlm_synth_task_parse("phonebook") == SSMLM_SYNTH_PHONEBOOK && ssmlm_synth_task_parse("mqar") == SSMLM_SYNTH_MQAR &&
              ssmlm_synth_task_parse("copy") == SSMLM_SYNTH_COPY && ssmlm_synth_task_parse("nope") == -1,
          "task names");
    ssmlm_synth_config c;
    ssmlm_synth_defaults(&c, SSMLM_SYNTH_PHONEBOOK);
    CHECK_OK(ssmlm_synth_validate(&c));
    c.min_entries = 2;
    CHECK(ssmlm_synth_validate(&c) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "min_entries"),
          "phonebook min_entries 2: %s", ssmlm_last_error());
    c.min_entries = 10, c.max_entries = 5;
    CHECK(ssmlm_synth_validate(&c) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "max_entries"),
          "max < min: %s", ssmlm_last_error());
    ssmlm_synth_defaults(&c, SSMLM_SYNTH_COPY);
    c.n_docs = 0;
    CHECK(ssmlm_synth_validate(&c) == SSMLM_ERR_INVALID && strstr(ssmlm_last_error(), "n_docs"),
          "n_docs 0: %s", ssmlm_last_error());
    c.n_docs = 1, c.task = 9;
    CHECK(ssmlm_synth_validate(&c) == SSMLM_ERR_INVALID, "unknown task");
    /* uniform integers */
    ssmlm_rng r;
    ssmlm_rng_seed(&r, 1);
    int hist[5] = {0}, ok = 1;
    for (int i = 0; i < 5000; i++) {
        uint64_t v = ssmlm_synth_below(&r, 5);
        ok &= v < 5;
        if (v < 5) hist[v]++;
        ok &= ssmlm_synth_below(&r, 1) == 0;
    }
    for (int k = 0; k < 5; k++) ok &= hist[k] > 850 && hist[k] < 1150;
    CHECK(ok, "ssmlm_synth_below(5): %d %d %d %d %d", hist[0], hist[1], hist[2], hist[3], hist[4]);
}

int main(void) {
    test_phonebook_fixed();
    test_phonebook_layout();
    test_phonebook_names();
    test_phonebook_docs();
    test_mqar();
    test_copy();
    test_seeding();
    test_mask_all();
    test_phonebook_queries();
    test_config();
    TEST_END();
}
