/* repro_ratio.c — `ssmlm reproduce attention-ratio`: the paper's Figure 4 at small scale.
 *
 * Seven Mamba-2-Hybrid models of one depth (24 layers, no MLP) whose patterns come from
 * Algorithm 1 with attention ratios 0 .. 0.5 (0, 1, 2, 4, 6, 8, 12 attention layers) are trained
 * identically (same data order, steps, schedule and init seed) on a seeded synthetic mixture of
 * language-like stories and in-context recall tasks; the validation loss of each on held-out
 * documents of the mixture is compared.  Two points (0% and 8%) are trained again with the next
 * seed to measure seed noise.  Writes results.json, table.md, three SVG plots (loss vs attention,
 * loss by part of the mixture, training curves) and report.md, and prints the table.
 *
 * The mixture (repro_mix_document): 55% stories, 15% phone books, 15% MQAR, 15% copying, every
 * token scored.  A story introduces 2-4 characters with made-up names, a trait, a role and a
 * home, then tells 3-8 events in which names, homes and found objects come back: its words
 * follow Zipf-weighted lists and fixed templates (local statistics), its repeated names and
 * attributes can only be predicted from earlier in the document (recall).  Each token also
 * carries a recall flag (answers of the tasks, repeated names and attributes of stories) so
 * the loss on what only in-context recall can predict is reported separately. */
#include "eval/reproduce.h"
#include "eval/svg.h"
#include <math.h>
#include <string.h>

const double repro_ratio_points[REPRO_RATIO_POINTS] = {0.0, 0.04, 0.08, 0.17, 0.25, 0.33, 0.5};

/* ---- models ------------------------------------------------------------------------------ */

ssmlm_status repro_ratio_config(double attn_ratio, ssmlm_config *c) {
    ssmlm_status s = ssmlm_preset(c, "tiny-mamba2");
    if (s != SSMLM_OK) return s;
    if ((s = ssmlm_pattern_allocate(REPRO_RATIO_LAYERS, attn_ratio, 0.0, c->pattern)) != SSMLM_OK) return s;
    c->n_layer = REPRO_RATIO_LAYERS;
    int64_t n_attn = 0;
    for (const char *p = c->pattern; *p; p++) n_attn += *p == '*';
    snprintf(c->name, sizeof c->name, "ratio-attn%lldof%d", (long long)n_attn, REPRO_RATIO_LAYERS);
    c->m2_chunk_size = 64;
    /* attention sized like a Mamba-2 layer: 7 heads x 16 (MHA) = 4 x 64 x 112 + 64 = 28,736
     * parameters against 28,152; no position encoding (the Mamba layers carry position) */
    c->attn_heads = 7;
    c->attn_kv_heads = 7;
    c->attn_head_dim = 16;
    c->attn_rotary_dim = 0;
    ssmlm_config_resolve(c);
    return ssmlm_config_validate(c);
}

/* ---- stories ----------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void doc_rng(ssmlm_rng *r, uint64_t seed, uint64_t stream, int64_t i) {
    ssmlm_rng_seed(r, mix64(mix64(seed * 0x9e3779b97f4a7c15ull + stream) ^ (uint64_t)i));
}

#define COUNT(a) (int)(sizeof a / sizeof a[0])
#define LIST(a) a, COUNT(a)
static const char *const k_roles[] = {"farmer", "baker",  "sailor", "teacher", "painter", "doctor",
                                      "miner",  "singer", "hunter", "weaver",  "guard",   "cook",
                                      "tailor", "merchant", "poet", "smith"};
static const char *const k_traits[] = {"kind", "brave", "quiet", "clever", "young", "old",
                                       "tall", "happy", "shy",   "proud",  "gentle", "curious"};
static const char *const k_home_adj[] = {"little", "green", "old", "big", "blue", "dark", "sunny", "white", "stone", "red"};
static const char *const k_homes[] = {"house", "tower", "farm", "cabin", "village", "castle",
                                      "garden", "mill", "island", "forest", "valley", "harbor"};
static const char *const k_colors[] = {"red", "blue", "green", "yellow", "black", "white", "golden", "silver", "brown", "purple"};
static const char *const k_objects[] = {"box", "key", "ring", "book", "lamp", "coin", "cup",
                                        "hat", "bell", "stone", "map", "flute", "basket", "kite"};
static const char *const k_spots[] = {"river", "bridge", "market", "road", "well", "hill", "lake", "gate", "field", "school"};
static const char *const k_feelings[] = {"happy", "sad", "tired", "afraid", "proud", "hungry", "calm", "angry"};
static const char *const k_sayings[] = {"It is a fine day", "We should go home", "I like this place",
                                        "Look at the sky",  "The rain is coming", "I am very tired",
                                        "Let us eat now",   "Where is my hat"};
static const char *const k_openers[] = {"", "Then ", "Later, ", "After that, ", "Soon "};

/* Index in [0, n) with probability proportional to 1 / (index + 1) (Zipf). */
static int zipf(ssmlm_rng *r, int n) {
    double h = 0;
    for (int k = 0; k < n; k++) h += 1.0 / (k + 1);
    double u = ssmlm_rng_uniform(r) * h;
    for (int k = 0; k < n; k++) {
        u -= 1.0 / (k + 1);
        if (u < 0) return k;
    }
    return n - 1;
}
static const char *pick(ssmlm_rng *r, const char *const *list, int n) { return list[zipf(r, n)]; }

#define STORY_MAX 4096
typedef struct story_buf {
    char c[STORY_MAX];
    uint8_t recall[STORY_MAX];
    int64_t n;
} story_buf;

static void put(story_buf *b, const char *s, int recall) {
    for (; *s && b->n < STORY_MAX; s++) b->c[b->n] = *s, b->recall[b->n++] = (uint8_t)recall;
}

typedef struct story_char {
    char name[16];
    int mentioned;
    int home_adj, home;
    int has_thing, color, object;
} story_char;

/* A made-up name of 2-3 consonant-vowel syllables, capitalized ("Tamiro"). */
static void make_name(ssmlm_rng *r, char *name) {
    static const char cons[] = "bdfgklmnprstvz", vow[] = "aeiou";
    int syl = 2 + (int)ssmlm_synth_below(r, 2), n = 0;
    for (int k = 0; k < syl; k++) {
        name[n++] = cons[ssmlm_synth_below(r, sizeof cons - 1)];
        name[n++] = vow[ssmlm_synth_below(r, sizeof vow - 1)];
    }
    name[0] = (char)(name[0] - 'a' + 'A');
    name[n] = 0;
}

/* A name: new on its first mention; later mentions are recall after the first letter (which
 * says which character is meant). */
static void put_name(story_buf *b, story_char *ch) {
    char first[2] = {ch->name[0], 0};
    put(b, first, 0);
    put(b, ch->name + 1, ch->mentioned);
    ch->mentioned = 1;
}

static int64_t other(ssmlm_rng *r, int64_t k, int64_t a) {
    return (a + 1 + (int64_t)ssmlm_synth_below(r, (uint64_t)(k - 1))) % k;
}

/* One event sentence about the characters (trailing space included). */
static void story_event(ssmlm_rng *r, story_char *ch, int64_t k, story_buf *s) {
    int type = (int)ssmlm_synth_below(r, 6);
    int64_t a = (int64_t)ssmlm_synth_below(r, (uint64_t)k), b = other(r, k, a);
    if (type == 1) { /* giving needs a character holding a thing */
        int64_t holders = 0;
        for (int64_t j = 0; j < k; j++) holders += ch[j].has_thing;
        if (!holders) {
            type = 0;
        } else {
            int64_t want = (int64_t)ssmlm_synth_below(r, (uint64_t)holders);
            for (a = 0; !ch[a].has_thing || want-- > 0; a++) {}
            b = other(r, k, a);
        }
    }
    const char *opener = pick(r, LIST(k_openers));
    put(s, opener, 0);
    switch (type) {
    case 0: /* find: a new thing (not recall) */
        if (!*opener) put(s, "One day ", 0);
        put_name(s, &ch[a]);
        ch[a].has_thing = 1;
        ch[a].color = zipf(r, COUNT(k_colors));
        ch[a].object = zipf(r, COUNT(k_objects));
        put(s, " found a ", 0);
        put(s, k_colors[ch[a].color], 0);
        put(s, " ", 0);
        put(s, k_objects[ch[a].object], 0);
        put(s, " near the ", 0);
        put(s, pick(r, LIST(k_spots)), 0);
        put(s, ". ", 0);
        break;
    case 1: /* give: the thing's color and kind are recall, and it changes hands */
        put_name(s, &ch[a]);
        put(s, " gave the ", 0);
        put(s, k_colors[ch[a].color], 1);
        put(s, " ", 1);
        put(s, k_objects[ch[a].object], 1);
        put(s, " to ", 0);
        put_name(s, &ch[b]);
        put(s, ". ", 0);
        ch[b].has_thing = 1, ch[b].color = ch[a].color, ch[b].object = ch[a].object;
        ch[a].has_thing = 0;
        break;
    case 2: /* visit: the other character's home is recall */
        put_name(s, &ch[a]);
        put(s, " walked to the ", 0);
        put(s, k_home_adj[ch[b].home_adj], 1);
        put(s, " ", 1);
        put(s, k_homes[ch[b].home], 1);
        put(s, " of ", 0);
        put_name(s, &ch[b]);
        put(s, ". ", 0);
        break;
    case 3: /* home: the character's own home is recall */
        put_name(s, &ch[a]);
        put(s, " went back to the ", 0);
        put(s, k_home_adj[ch[a].home_adj], 1);
        put(s, " ", 1);
        put(s, k_homes[ch[a].home], 1);
        put(s, " at night. ", 0);
        break;
    case 4:
        put(s, "\"", 0);
        put(s, pick(r, LIST(k_sayings)), 0);
        put(s, ",\" said ", 0);
        put_name(s, &ch[a]);
        put(s, " to ", 0);
        put_name(s, &ch[b]);
        put(s, ". ", 0);
        break;
    default:
        put_name(s, &ch[a]);
        put(s, " felt ", 0);
        put(s, pick(r, LIST(k_feelings)), 0);
        put(s, ". ", 0);
        break;
    }
}

/* Appends sentence s to doc when doc + s + EOD stays within max_len; returns 0 otherwise. */
static int story_append(story_buf *doc, const story_buf *s, int64_t max_len) {
    if (doc->n + s->n + 1 > max_len) return 0;
    memcpy(doc->c + doc->n, s->c, (size_t)s->n);
    memcpy(doc->recall + doc->n, s->recall, (size_t)s->n);
    doc->n += s->n;
    return 1;
}

ssmlm_status repro_story_document(uint64_t seed, int64_t i, int64_t max_len, int32_t *tok, uint8_t *recall,
                                  int64_t cap, int64_t *n) {
    *n = 0;
    if (max_len < 16 || max_len > STORY_MAX || cap < max_len)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "story: max_len %lld must be in [16, %d] and fit the buffer (%lld)",
                          (long long)max_len, STORY_MAX, (long long)cap);
    ssmlm_rng r;
    doc_rng(&r, seed, 0x5703, i);
    story_char ch[4];
    int64_t k = 2 + (int64_t)ssmlm_synth_below(&r, 3);
    memset(ch, 0, sizeof ch);
    for (int64_t j = 0; j < k; j++) {
        int dup;
        do { /* distinct names */
            make_name(&r, ch[j].name);
            dup = 0;
            for (int64_t q = 0; q < j; q++) dup |= !strcmp(ch[q].name, ch[j].name);
        } while (dup);
        ch[j].home_adj = zipf(&r, COUNT(k_home_adj));
        ch[j].home = zipf(&r, COUNT(k_homes));
    }
    static _Thread_local story_buf doc, s;
    doc.n = 0;
    int room = 1;
    for (int64_t j = 0; j < k && room; j++) {
        s.n = 0;
        put_name(&s, &ch[j]);
        put(&s, " was a ", 0);
        put(&s, pick(&r, LIST(k_traits)), 0);
        put(&s, " ", 0);
        put(&s, pick(&r, LIST(k_roles)), 0);
        put(&s, " who lived in the ", 0);
        put(&s, k_home_adj[ch[j].home_adj], 0);
        put(&s, " ", 0);
        put(&s, k_homes[ch[j].home], 0);
        put(&s, ". ", 0);
        room = story_append(&doc, &s, max_len);
        if (!room && doc.n == 0) { /* even the first sentence is too long: cut it */
            s.n = max_len - 1;
            story_append(&doc, &s, max_len);
        }
    }
    int64_t events = 3 + (int64_t)ssmlm_synth_below(&r, 6);
    for (int64_t e = 0; e < events && room; e++) {
        s.n = 0;
        story_event(&r, ch, k, &s);
        room = story_append(&doc, &s, max_len);
    }
    s.n = 0;
    put(&s, "The end.", 0);
    if (room) story_append(&doc, &s, max_len);
    if (doc.n > 0 && doc.c[doc.n - 1] == ' ') doc.n--;
    s.n = 0;
    put(&s, "\n", 0);
    story_append(&doc, &s, max_len);
    for (int64_t t = 0; t < doc.n; t++) tok[t] = (unsigned char)doc.c[t], recall[t] = doc.recall[t];
    tok[doc.n] = SSMLM_BYTE_EOD;
    recall[doc.n] = 0;
    *n = doc.n + 1;
    return SSMLM_OK;
}

/* ---- the mixture ------------------------------------------------------------------------- */

static const double k_mix_share[REPRO_MIX_KINDS] = {0.55, 0.15, 0.15, 0.15};

const char *repro_mix_kind_name(int kind) {
    static const char *const names[REPRO_MIX_KINDS] = {"story", "phonebook", "mqar", "copy"};
    return kind >= 0 && kind < REPRO_MIX_KINDS ? names[kind] : "?";
}

static void mix_synth_config(uint64_t seed, int kind, ssmlm_synth_config *sc) {
    static const int task[REPRO_MIX_KINDS] = {0, SSMLM_SYNTH_PHONEBOOK, SSMLM_SYNTH_MQAR, SSMLM_SYNTH_COPY};
    ssmlm_synth_defaults(sc, task[kind]);
    sc->seed = mix64(seed + 0x1000 + (uint64_t)kind);
    sc->vocab = 64;
    if (kind == REPRO_MIX_PHONEBOOK) sc->min_entries = 3, sc->max_entries = 8;
    if (kind == REPRO_MIX_MQAR) sc->min_entries = 4, sc->max_entries = 24;
    if (kind == REPRO_MIX_COPY) sc->min_entries = 8, sc->max_entries = 48;
}

ssmlm_status repro_mix_document(uint64_t seed, int64_t i, int64_t max_len, int32_t *tok, uint8_t *recall,
                                int64_t cap, int64_t *n, int *kind) {
    *n = 0;
    if (max_len < 16 || max_len > STORY_MAX || cap < max_len)
        return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "mixture: max_len %lld must be in [16, %d] and fit the buffer (%lld)",
                          (long long)max_len, STORY_MAX, (long long)cap);
    ssmlm_rng r;
    doc_rng(&r, seed, 0x4b1d, i);
    double u = ssmlm_rng_uniform(&r);
    int k = 0;
    while (k < REPRO_MIX_KINDS - 1 && u >= k_mix_share[k]) u -= k_mix_share[k++];
    *kind = k;
    if (k == REPRO_MIX_STORY) return repro_story_document(seed, i, max_len, tok, recall, cap, n);
    ssmlm_synth_config sc;
    mix_synth_config(seed, k, &sc);
    int64_t need = 0;
    ssmlm_synth_document(&sc, i, NULL, NULL, 0, &need); /* sizing call */
    if (need <= 0) return ssmlm_fail(SSMLM_ERR_INVALID, NULL, "mixture: %s document %lld is empty", repro_mix_kind_name(k), (long long)i);
    int32_t *t = malloc((size_t)need * sizeof *t);
    uint8_t *m = malloc((size_t)need);
    ssmlm_status s = t && m ? ssmlm_synth_document(&sc, i, t, m, need, &need)
                            : ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "mixture: out of memory for a document");
    if (s == SSMLM_OK) {
        /* longer than max_len: keep the beginning and end it with EOD */
        int64_t keep = need <= max_len ? need : max_len;
        for (int64_t j = 0; j < keep; j++) tok[j] = t[j], recall[j] = m[j];
        tok[keep - 1] = SSMLM_BYTE_EOD;
        recall[keep - 1] = 0;
        *n = keep;
    }
    free(t);
    free(m);
    return s;
}

void repro_mix_free(repro_mix *m) {
    ssmlm_docs_free(m->docs);
    free(m->kind);
    free(m->start);
    free(m->recall);
    free(m->tokens);
    memset(m, 0, sizeof *m);
}

ssmlm_status repro_mix_build(uint64_t seed, int64_t first, int64_t max_len, int64_t min_docs, int64_t min_tokens,
                             repro_mix *out) {
    memset(out, 0, sizeof *out);
    ssmlm_status s = SSMLM_OK;
    int64_t cap_docs = 0, cap_tok = 0;
    for (int64_t i = first; out->n < min_docs || out->n_tokens < min_tokens; i++) {
        if (out->n + 1 >= cap_docs) {
            cap_docs = cap_docs ? 2 * cap_docs : 1024;
            uint8_t *k = realloc(out->kind, (size_t)cap_docs);
            if (k) out->kind = k;
            int64_t *st = k ? realloc(out->start, (size_t)(cap_docs + 1) * sizeof *st) : NULL;
            if (st) out->start = st;
            if (!st) goto oom;
        }
        if (out->n_tokens + max_len > cap_tok) {
            cap_tok = cap_tok ? 2 * cap_tok : 256 * max_len;
            int32_t *t = realloc(out->tokens, (size_t)cap_tok * sizeof *t);
            if (t) out->tokens = t;
            uint8_t *m = t ? realloc(out->recall, (size_t)cap_tok) : NULL;
            if (m) out->recall = m;
            if (!m) goto oom;
        }
        int64_t n;
        int kind = 0;
        out->start[out->n] = out->n_tokens;
        s = repro_mix_document(seed, i, max_len, out->tokens + out->n_tokens, out->recall + out->n_tokens,
                               cap_tok - out->n_tokens, &n, &kind);
        if (s != SSMLM_OK) goto fail;
        out->kind[out->n++] = (uint8_t)kind;
        out->n_tokens += n;
    }
    out->start[out->n] = out->n_tokens;
    /* every token is scored: no mask */
    if ((s = ssmlm_docs_from_arrays(&out->docs, out->n, out->start, out->tokens, NULL)) != SSMLM_OK) goto fail;
    return SSMLM_OK;
oom:
    s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "mixture: out of memory after %lld documents", (long long)out->n);
fail:
    repro_mix_free(out);
    return s;
}

/* ---- evaluation -------------------------------------------------------------------------- */

/* Loss of every document packed into rows: document d of n tokens takes n-1 consecutive
 * positions of one row (ids d[0..n-2], labels d[1..n-1]) as its own segment; the rest of a row
 * is padding (label -1).  Per-token cross-entropy over the padded vocabulary, as the training
 * loss computes it. */
ssmlm_status repro_mix_eval(ssmlm_model *m, const repro_mix *val, int64_t T, int64_t rows, repro_mix_loss *out) {
    memset(out, 0, sizeof *out);
    const ssmlm_config *c = ssmlm_model_config(m);
    int64_t V = ssmlm_config_vocab_padded(c), BT = rows * T;
    if (ssmlm_model_dtype(m) != SSMLM_F32) return ssmlm_fail(SSMLM_ERR_UNSUPPORTED, NULL, "mixture evaluation needs an fp32 model");
    int32_t *ids = malloc((size_t)BT * sizeof *ids), *labels = malloc((size_t)BT * sizeof *labels),
            *seg = malloc((size_t)BT * sizeof *seg);
    int8_t *kind = malloc((size_t)BT);
    uint8_t *rec = malloc((size_t)BT);
    float *logits = malloc((size_t)(BT * V) * sizeof *logits);
    double sum[REPRO_MIX_KINDS] = {0}, sum_rec = 0, sum_other = 0;
    ssmlm_status s = SSMLM_OK;
    if (!ids || !labels || !seg || !kind || !rec || !logits) {
        s = ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "mixture evaluation: out of memory for %lld x %lld logits", (long long)BT, (long long)V);
        goto done;
    }
    for (int64_t d = 0; d < val->n;) {
        /* fill rows x T positions with whole documents */
        for (int64_t p = 0; p < BT; p++) ids[p] = 0, labels[p] = -1, kind[p] = -1, rec[p] = 0;
        for (int64_t r = 0; r < rows; r++) {
            int64_t t = 0, sg = 0;
            while (d < val->n) {
                int64_t n = val->start[d + 1] - val->start[d], len = n - 1;
                SSMLM_ASSERT(len <= T);
                if (t + len > T) break;
                const int32_t *dt = val->tokens + val->start[d];
                const uint8_t *dr = val->recall + val->start[d];
                for (int64_t j = 0; j < len; j++) {
                    int64_t p = r * T + t + j;
                    ids[p] = dt[j];
                    labels[p] = dt[j + 1];
                    seg[p] = (int32_t)sg;
                    kind[p] = (int8_t)val->kind[d];
                    rec[p] = dr[j + 1];
                }
                t += len, sg++, d++;
            }
            for (; t < T; t++) seg[r * T + t] = (int32_t)sg;
        }
        if ((s = ssmlm_model_set_segments(m, seg, BT)) != SSMLM_OK) goto done;
        if ((s = ssmlm_model_forward(m, ids, labels, rows, T, logits, NULL)) != SSMLM_OK) goto done;
        for (int64_t p = 0; p < BT; p++) {
            if (labels[p] < 0) continue;
            const float *z = logits + p * V;
            double mx = z[0], se = 0;
            for (int64_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
            for (int64_t v = 0; v < V; v++) se += exp((double)z[v] - mx);
            double ce = mx + log(se) - (double)z[labels[p]];
            sum[kind[p]] += ce;
            out->n_kind[kind[p]]++;
            if (rec[p]) sum_rec += ce, out->n_recall++;
            else sum_other += ce, out->n_other++;
        }
    }
    double all = 0;
    for (int k = 0; k < REPRO_MIX_KINDS; k++) {
        all += sum[k];
        out->n_all += out->n_kind[k];
        out->kind[k] = out->n_kind[k] ? sum[k] / (double)out->n_kind[k] : NAN;
    }
    out->all = out->n_all ? all / (double)out->n_all : NAN;
    out->recall = out->n_recall ? sum_rec / (double)out->n_recall : NAN;
    out->other = out->n_other ? sum_other / (double)out->n_other : NAN;
done:
    ssmlm_model_set_segments(m, NULL, 0);
    free(ids);
    free(labels);
    free(seg);
    free(kind);
    free(rec);
    free(logits);
    return s;
}

/* ---- the experiment ---------------------------------------------------------------------- */

typedef struct ratio_plan {
    int64_t T, rows, steps, warmup, val_docs, eval_rows;
    double lr, min_lr;
} ratio_plan;

/* Default: 400 steps of 4 x 512 tokens (0.82M tokens per model, about 2.5 minutes each on
 * 2 cores); --quick: 6 steps of 2 x 128 tokens.  --budget scales the steps. */
static void ratio_plan_make(const ssmlm_repro_options *o, ratio_plan *p) {
    double b = o->budget > 0 ? o->budget : 1;
    if (o->quick) {
        p->T = 128, p->rows = 2, p->steps = llround(6 * b), p->val_docs = 16, p->eval_rows = 2;
    } else {
        p->T = 512, p->rows = 4, p->steps = llround(400 * b), p->val_docs = 256, p->eval_rows = 4;
    }
    if (p->steps < 2) p->steps = 2;
    p->warmup = p->steps / 25 > 1 ? p->steps / 25 : 1;
    p->lr = 2e-3, p->min_lr = 2e-4;
}

/* Points trained a second time with seed + 1 (the comparison the rule rests on). */
static const int k_repeat_points[] = {0, 2};
#define N_REPEATS (int)(sizeof k_repeat_points / sizeof k_repeat_points[0])
#define N_RUNS (REPRO_RATIO_POINTS + N_REPEATS)

#define CURVE_POINTS 20
typedef struct ratio_run {
    int point;
    uint64_t seed;
    char name[64];
    ssmlm_config cfg;
    int64_t n_attn;
    repro_train_out tr;
    repro_mix_loss val;
    double eval_seconds;
    double quarter[4];     /* mean training loss over each quarter of the steps */
    double curve_x[CURVE_POINTS], curve_y[CURVE_POINTS]; /* mean training loss over equal windows */
    int curve_n;
} ratio_run;

/* The training loss of a run from its metrics.jsonl, averaged over each quarter of the steps
 * and over CURVE_POINTS equal windows.  Every model sees the same batches in the same order and
 * each batch is new to it (about one epoch), so these are paired held-out estimates too. */
static ssmlm_status run_curve(const ssmlm_repro_options *o, ratio_run *r, int64_t steps) {
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/runs/%s/metrics.jsonl", o->out_dir, r->name);
    FILE *f = fopen(path, "r");
    if (!f) return ssmlm_fail(SSMLM_ERR_IO, "the run folder was removed during the experiment", "cannot read %s", path);
    double qs[4] = {0}, cs[CURVE_POINTS] = {0}, cx[CURVE_POINTS] = {0};
    int64_t qn[4] = {0}, cn[CURVE_POINTS] = {0};
    while (fgets(line, sizeof line, f)) {
        const char *ps = strstr(line, "\"step\":"), *pl = strstr(line, "\"loss\":");
        if (!ps || !pl) continue;
        int64_t st = strtoll(ps + 7, NULL, 10);
        double l = strtod(pl + 7, NULL);
        if (st < 1 || st > steps || !isfinite(l)) continue;
        int q = (int)((st - 1) * 4 / steps), c = (int)((st - 1) * CURVE_POINTS / steps);
        qs[q] += l, qn[q]++;
        cs[c] += l, cx[c] += (double)st, cn[c]++;
    }
    fclose(f);
    for (int q = 0; q < 4; q++) r->quarter[q] = qn[q] ? qs[q] / (double)qn[q] : NAN;
    r->curve_n = 0;
    for (int c = 0; c < CURVE_POINTS; c++)
        if (cn[c]) {
            r->curve_x[r->curve_n] = cx[c] / (double)cn[c];
            r->curve_y[r->curve_n++] = cs[c] / (double)cn[c];
        }
    return SSMLM_OK;
}

typedef struct ratio_verdict {
    int argmin;            /* point with the lowest seed-1 loss */
    int n_pairs;
    double sigma;          /* seed standard deviation of one run's loss, from the repeats */
    double margin;         /* 2 sigma */
    double gain0;          /* loss(0%) - loss(best) */
    int near8;             /* argmin is at 4%, 8% or 17% */
    int helps;             /* gain0 > margin */
    int reproduced;
    /* how firm the verdict is */
    double sigma95;        /* 95% upper confidence bound of sigma */
    int helps95;           /* gain0 > 2 sigma95 */
    int flat;              /* the 50% model is within the margin of the lowest */
    int train_agrees;      /* the 4th-quarter training loss is lowest at 4-17% too */
    int copies;            /* some model recalls the copy: copy loss < 0.75 ln 64 */
    double copy_best;      /* lowest copy-document loss */
    int robust;
    int argmin_kind[REPRO_MIX_KINDS], argmin_recall, argmin_other;
    int argmin_quarter[4]; /* point with the lowest mean training loss in each quarter */
} ratio_verdict;

static double pct(const ratio_run *r) { return 100.0 * (double)r->n_attn / REPRO_RATIO_LAYERS; }

static void verdict_make(const ratio_run *runs, ratio_verdict *v) {
    memset(v, 0, sizeof *v);
    for (int p = 1; p < REPRO_RATIO_POINTS; p++)
        if (runs[p].val.all < runs[v->argmin].val.all) v->argmin = p;
    double ss = 0;
    for (int k = 0; k < N_REPEATS; k++) {
        double d = runs[REPRO_RATIO_POINTS + k].val.all - runs[k_repeat_points[k]].val.all;
        ss += d * d;
        v->n_pairs++;
    }
    /* Var(a - b) = 2 sigma^2 for two runs of one point */
    v->sigma = sqrt(ss / (2.0 * v->n_pairs));
    v->margin = 2 * v->sigma;
    v->gain0 = runs[0].val.all - runs[v->argmin].val.all;
    v->near8 = v->argmin >= 1 && v->argmin <= 3;
    v->helps = v->gain0 > v->margin;
    v->reproduced = v->near8 && v->helps;
    for (int k = 0; k < REPRO_MIX_KINDS; k++)
        for (int p = 1; p < REPRO_RATIO_POINTS; p++)
            if (runs[p].val.kind[k] < runs[v->argmin_kind[k]].val.kind[k]) v->argmin_kind[k] = p;
    /* chi-square with 2 degrees of freedom: P(X <= x) = 1 - exp(-x/2), so its 2.5% quantile is
     * -2 ln 0.975; sigma^2 <= 2 sigma_hat^2 / that with 95% confidence */
    _Static_assert(N_REPEATS == 2, "the sigma bound below assumes 2 repeated pairs");
    v->sigma95 = v->sigma * sqrt(2.0 / (-2.0 * log(0.975)));
    v->helps95 = v->gain0 > 2 * v->sigma95;
    v->flat = runs[REPRO_RATIO_POINTS - 1].val.all - runs[v->argmin].val.all <= v->margin;
    v->copy_best = runs[v->argmin_kind[REPRO_MIX_COPY]].val.kind[REPRO_MIX_COPY];
    v->copies = v->copy_best < 0.75 * log(64.0);
    for (int p = 1; p < REPRO_RATIO_POINTS; p++) {
        if (runs[p].val.recall < runs[v->argmin_recall].val.recall) v->argmin_recall = p;
        if (runs[p].val.other < runs[v->argmin_other].val.other) v->argmin_other = p;
        for (int q = 0; q < 4; q++)
            if (runs[p].quarter[q] < runs[v->argmin_quarter[q]].quarter[q]) v->argmin_quarter[q] = p;
    }
    v->train_agrees = v->argmin_quarter[3] >= 1 && v->argmin_quarter[3] <= 3;
    v->robust = v->reproduced && v->helps95 && !v->flat && v->train_agrees;
}

/* The results table (markdown); identical for identical seeds (no timings). */
static void table_write(ssmlm_text *t, const ratio_run *runs) {
    ssmlm_text_printf(t, "| attention | layers | pattern | parameters | val loss | vs 0%% | seed %llu | story | phonebook | mqar | copy | recall tokens | other tokens |\n",
                      (unsigned long long)runs[REPRO_RATIO_POINTS].seed);
    ssmlm_text_printf(t, "|---:|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int p = 0; p < REPRO_RATIO_POINTS; p++) {
        const ratio_run *r = &runs[p];
        char rep[32] = "-";
        for (int k = 0; k < N_REPEATS; k++)
            if (k_repeat_points[k] == p) snprintf(rep, sizeof rep, "%.4f", runs[REPRO_RATIO_POINTS + k].val.all);
        ssmlm_text_printf(t, "| %.1f%% | %lld/%d | `%s` | %lld | %.4f | %+.4f | %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f |\n", pct(r),
                          (long long)r->n_attn, REPRO_RATIO_LAYERS, r->cfg.pattern, (long long)r->tr.params, r->val.all,
                          r->val.all - runs[0].val.all, rep, r->val.kind[0], r->val.kind[1], r->val.kind[2],
                          r->val.kind[3], r->val.recall, r->val.other);
    }
}

/* Losses as JSON numbers; null where not finite (a part with no tokens, a quarter with no steps). */
static void json_loss(ssmlm_text *t, const repro_mix_loss *l) {
    ssmlm_text_printf(t, "{\"all\": ");
    ssmlm_json_number(t, l->all);
    ssmlm_text_printf(t, ", \"tokens\": %lld, \"recall\": ", (long long)l->n_all);
    ssmlm_json_number(t, l->recall);
    ssmlm_text_printf(t, ", \"recall_tokens\": %lld, \"other\": ", (long long)l->n_recall);
    ssmlm_json_number(t, l->other);
    ssmlm_text_printf(t, ", \"other_tokens\": %lld", (long long)l->n_other);
    for (int k = 0; k < REPRO_MIX_KINDS; k++) {
        ssmlm_text_printf(t, ", \"%s\": ", repro_mix_kind_name(k));
        ssmlm_json_number(t, l->kind[k]);
        ssmlm_text_printf(t, ", \"%s_tokens\": %lld", repro_mix_kind_name(k), (long long)l->n_kind[k]);
    }
    ssmlm_text_printf(t, "}");
}

static ssmlm_status results_json(const ssmlm_repro_options *o, const ratio_plan *pl, const ratio_run *runs,
                                 const ratio_verdict *v, const repro_mix *train, const repro_mix *val) {
    ssmlm_text t = {0};
    ssmlm_text_printf(&t, "{\n  \"experiment\": \"attention-ratio\",\n  \"seed\": %llu,\n  \"quick\": %s,\n  \"budget\": %g,\n",
                      (unsigned long long)o->seed, o->quick ? "true" : "false", o->budget);
    ssmlm_text_printf(&t, "  \"layers\": %d,\n  \"seq_len\": %lld,\n  \"batch_rows\": %lld,\n  \"steps\": %lld,\n  \"warmup\": %lld,\n"
                          "  \"lr\": %g,\n  \"min_lr\": %g,\n  \"train_documents\": %lld,\n  \"train_corpus_tokens\": %lld,\n"
                          "  \"val_documents\": %lld,\n  \"val_tokens\": %lld,\n  \"mixture\": {",
                      REPRO_RATIO_LAYERS, (long long)pl->T, (long long)pl->rows, (long long)pl->steps, (long long)pl->warmup,
                      pl->lr, pl->min_lr, (long long)train->n, (long long)train->n_tokens, (long long)val->n,
                      (long long)val->n_tokens);
    for (int k = 0; k < REPRO_MIX_KINDS; k++)
        ssmlm_text_printf(&t, "%s\"%s\": %g", k ? ", " : "", repro_mix_kind_name(k), k_mix_share[k]);
    ssmlm_text_printf(&t, "},\n  \"runs\": [\n");
    for (int i = 0; i < N_RUNS; i++) {
        const ratio_run *r = &runs[i];
        ssmlm_text_printf(&t,
                          "    {\"name\": \"%s\", \"attention_ratio\": %g, \"attention_layers\": %lld, \"attention_pct\": %.4f, "
                          "\"pattern\": \"%s\", \"params\": %lld, \"seed\": %llu, \"steps\": %lld, \"tokens\": %lld, "
                          "\"seconds\": %.2f, \"tokens_per_s\": %.1f, \"eval_seconds\": %.2f, \"train_loss\": ",
                          r->name, repro_ratio_points[r->point], (long long)r->n_attn, pct(r), r->cfg.pattern,
                          (long long)r->tr.params, (unsigned long long)r->seed, (long long)r->tr.res.steps_done,
                          (long long)r->tr.tokens, r->tr.res.seconds, r->tr.res.tokens_per_s, r->eval_seconds);
        ssmlm_json_number(&t, r->tr.res.last_loss);
        ssmlm_text_printf(&t, ", \"train_loss_quarters\": [");
        for (int k = 0; k < 4; k++) {
            if (k) ssmlm_text_printf(&t, ", ");
            ssmlm_json_number(&t, r->quarter[k]);
        }
        ssmlm_text_printf(&t, "], \"val\": ");
        json_loss(&t, &r->val);
        ssmlm_text_printf(&t, "}%s\n", i + 1 < N_RUNS ? "," : "");
    }
    ssmlm_text_printf(&t,
                      "  ],\n  \"verdict\": {\"rule\": \"lowest seed-%llu loss at 4, 8 or 17%% attention AND loss(0%%) - lowest > 2 sigma\", "
                      "\"argmin_pct\": %.4f, \"sigma\": %.6f, \"margin\": %.6f, \"gain_over_0pct\": %.6f, \"near_8pct\": %s, "
                      "\"attention_helps\": %s, \"reproduced\": %s, \"sigma_95_upper\": %.6f, \"helps_with_sigma_95\": %s, "
                      "\"flat_to_50pct\": %s, \"training_loss_agrees\": %s, \"copy_learned\": %s, \"robust\": %s}\n}\n",
                      (unsigned long long)o->seed, pct(&runs[v->argmin]), v->sigma, v->margin, v->gain0,
                      v->near8 ? "true" : "false", v->helps ? "true" : "false", v->reproduced ? "true" : "false", v->sigma95,
                      v->helps95 ? "true" : "false", v->flat ? "true" : "false", v->train_agrees ? "true" : "false",
                      v->copies ? "true" : "false", v->robust ? "true" : "false");
    ssmlm_status s = repro_text_save(&t, o->out_dir, "results.json");
    ssmlm_text_free(&t);
    return s;
}

static ssmlm_status plots_write(const ssmlm_repro_options *o, const ratio_run *runs) {
    double x[REPRO_RATIO_POINTS], y1[REPRO_RATIO_POINTS], y2[REPRO_RATIO_POINTS];
    double parts[REPRO_MIX_KINDS + 2][REPRO_RATIO_POINTS];
    for (int p = 0; p < REPRO_RATIO_POINTS; p++) {
        x[p] = pct(&runs[p]);
        y1[p] = runs[p].val.all;
        y2[p] = NAN;
        for (int k = 0; k < REPRO_MIX_KINDS; k++) parts[k][p] = runs[p].val.kind[k];
        parts[REPRO_MIX_KINDS][p] = runs[p].val.recall;
        parts[REPRO_MIX_KINDS + 1][p] = runs[p].val.other;
    }
    for (int k = 0; k < N_REPEATS; k++) y2[k_repeat_points[k]] = runs[REPRO_RATIO_POINTS + k].val.all;
    char n1[64], n2[64], path[4096];
    snprintf(n1, sizeof n1, "seed %llu", (unsigned long long)runs[0].seed);
    snprintf(n2, sizeof n2, "seed %llu (repeats)", (unsigned long long)runs[REPRO_RATIO_POINTS].seed);
    ssmlm_plot_series s1[2] = {{.name = n1, .x = x, .y = y1, .n = REPRO_RATIO_POINTS},
                               {.name = n2, .x = x, .y = y2, .n = REPRO_RATIO_POINTS, .dashed = 1}};
    ssmlm_plot pl = {.title = "Validation loss vs attention layers (24-layer Mamba-2 hybrids)",
                     .xlabel = "attention layers (%)", .ylabel = "validation loss (nats/token)", .series = s1, .n_series = 2};
    snprintf(path, sizeof path, "%s/validation_loss.svg", o->out_dir);
    ssmlm_status s = ssmlm_svg_plot(path, &pl);
    if (s != SSMLM_OK) return s;
    ssmlm_plot_series s2[REPRO_MIX_KINDS + 2];
    memset(s2, 0, sizeof s2);
    for (int k = 0; k < REPRO_MIX_KINDS + 2; k++) {
        s2[k].name = k < REPRO_MIX_KINDS ? repro_mix_kind_name(k) : k == REPRO_MIX_KINDS ? "recall tokens" : "other tokens";
        s2[k].x = x, s2[k].y = parts[k], s2[k].n = REPRO_RATIO_POINTS, s2[k].dashed = k >= REPRO_MIX_KINDS;
    }
    ssmlm_plot pp = {.title = "Validation loss by part of the mixture", .xlabel = "attention layers (%)",
                     .ylabel = "validation loss (nats/token)", .series = s2, .n_series = REPRO_MIX_KINDS + 2};
    snprintf(path, sizeof path, "%s/validation_loss_parts.svg", o->out_dir);
    if ((s = ssmlm_svg_plot(path, &pp)) != SSMLM_OK) return s;
    /* training curves of the seed-1 sweep */
    ssmlm_plot_series s3[REPRO_RATIO_POINTS];
    char names[REPRO_RATIO_POINTS][32];
    memset(s3, 0, sizeof s3);
    for (int p = 0; p < REPRO_RATIO_POINTS; p++) {
        snprintf(names[p], sizeof names[p], "%.1f%% attention", pct(&runs[p]));
        s3[p].name = names[p], s3[p].x = runs[p].curve_x, s3[p].y = runs[p].curve_y, s3[p].n = runs[p].curve_n;
    }
    ssmlm_plot pt = {.title = "Training loss (mean over windows of 5% of the steps)", .xlabel = "step",
                     .ylabel = "training loss (nats/token)", .series = s3, .n_series = REPRO_RATIO_POINTS};
    snprintf(path, sizeof path, "%s/training_loss.svg", o->out_dir);
    return ssmlm_svg_plot(path, &pt);
}

static ssmlm_status report_write(const ssmlm_repro_options *o, const ratio_plan *pl, const ratio_run *runs,
                                 const ratio_verdict *v, const repro_mix *train, const repro_mix *val, double wall,
                                 const ssmlm_text *table) {
    ssmlm_text t = {0};
    const ratio_run *best = &runs[v->argmin];
    int64_t pmin = runs[0].tr.params, pmax = pmin;
    for (int p = 0; p < REPRO_RATIO_POINTS; p++) {
        pmin = runs[p].tr.params < pmin ? runs[p].tr.params : pmin;
        pmax = runs[p].tr.params > pmax ? runs[p].tr.params : pmax;
    }
    ssmlm_text_printf(&t, "# Validation loss vs fraction of attention layers (paper Figure 4)\n\n");
    ssmlm_text_printf(&t, "`ssmlm reproduce attention-ratio%s --budget %g --seed %llu`%s\n\n", o->quick ? " --quick" : "", o->budget,
                      (unsigned long long)o->seed,
                      o->quick ? " — **smoke-test sizes: the numbers below say nothing about the finding**" : "");
    ssmlm_text_printf(&t,
                      "The paper (Waleffe et al. 2024, Figure 4) trains Mamba-2-Hybrid models of one depth and size with "
                      "different fractions of self-attention layers and finds the validation loss lowest with about 8%% "
                      "attention layers: a few attention layers help a lot, many more do not help further.\n\n");
    ssmlm_text_printf(&t, "## Setup\n\n");
    ssmlm_text_printf(&t,
                      "- **Models**: %d layers, each one pre-norm residual block (no MLP layers: with an MLP ratio of 0 the "
                      "attention fraction is the only thing that varies, as in the paper's MLP-free ablation patterns of "
                      "Table 11); d_model 64, byte vocabulary (257, padded to 264), tied embeddings. Mamba-2: d_state 16, "
                      "head dim 16 (8 heads), expand 2, conv 4, chunk 64. Attention: 7 heads x 16, no position encoding "
                      "(as in the paper's hybrid), sized so that an attention layer (28,736 parameters) matches a Mamba-2 "
                      "layer (28,152): the models' parameter counts differ by %.2f%% at most (%lld to %lld). Patterns from "
                      "Algorithm 1 with the paper's ratios 0, 0.04, 0.08, 0.17, 0.25, 0.33, 0.5 and MLP ratio 0.\n",
                      REPRO_RATIO_LAYERS, 100.0 * (double)(pmax - pmin) / (double)pmin, (long long)pmin, (long long)pmax);
    ssmlm_text_printf(&t,
                      "- **Data** (seeded, generated in memory, identical on every machine): a mixture of documents, "
                      "55%% stories, 15%% phone books, 15%% MQAR, 15%% copying, every token scored (plain language "
                      "modelling). Stories are language-like text: 2-4 characters with made-up names, traits, roles and "
                      "homes, then 3-8 events (finding, giving, visiting, going home, speaking, feeling) from Zipf-weighted "
                      "word lists; names, homes and found objects come back later in the story, so part of the text can "
                      "only be predicted by recalling the context. Phone books: 3-8 entries (evals.md §4.1 layout); MQAR: "
                      "4-24 key-value pairs over 64 symbols, then every key queried; copying: 8-48 random symbols written "
                      "twice. Documents are at most %lld tokens (longer ones are cut). Training corpus: %lld documents, "
                      "%lld tokens (about one epoch); validation: %lld other documents (%lld tokens) generated from indices "
                      "the training corpus never uses.\n",
                      (long long)pl->T + 1, (long long)train->n, (long long)train->n_tokens, (long long)val->n,
                      (long long)val->n_tokens);
    ssmlm_text_printf(&t,
                      "- **Training** (identical for every model): %lld steps of %lld rows x %lld tokens (%lld tokens), "
                      "documents packed with state and attention reset at document boundaries, the same data order "
                      "(seed %llu) and the same initialization seed; AdamW (0.9, 0.95), weight decay 0.1, clip 1.0, LR %g "
                      "-> %g cosine after %lld warmup steps; fp32.\n",
                      (long long)pl->steps, (long long)pl->rows, (long long)pl->T, (long long)(pl->steps * pl->rows * pl->T),
                      (unsigned long long)o->seed, pl->lr, pl->min_lr, (long long)pl->warmup);
    ssmlm_text_printf(&t,
                      "- **Evaluation**: mean cross-entropy (nats/token) over every token after the first of each validation "
                      "document (each document alone), also split by document kind and over the recall tokens (phone-book "
                      "numbers, MQAR answers, the copy, and the repeated names and attributes of stories: %lld of the %lld "
                      "scored tokens).\n",
                      (long long)runs[0].val.n_recall, (long long)runs[0].val.n_all);
    ssmlm_text_printf(&t,
                      "- **Seed noise**: the 0%% and 8%% models are trained again with seed %llu (data order and "
                      "initialization); the seed standard deviation of one run's loss is estimated as sigma = "
                      "sqrt(sum of squared differences / (2 x pairs)) = %.4f from %d pairs.\n\n",
                      (unsigned long long)runs[REPRO_RATIO_POINTS].seed, v->sigma, v->n_pairs);

    ssmlm_text_printf(&t, "## Results\n\nValidation loss (nats/token) of seed %llu; \"seed %llu\" is the repeat.\n\n",
                      (unsigned long long)o->seed, (unsigned long long)runs[REPRO_RATIO_POINTS].seed);
    ssmlm_text_printf(&t, "%s\n", table->s ? table->s : "");
    ssmlm_text_printf(&t, "Plots: `validation_loss.svg` (loss vs attention %%), `validation_loss_parts.svg` (by part), "
                          "`training_loss.svg` (training curves).\n\n");

    ssmlm_text_printf(&t, "## Timing\n\n| run | seed | tokens | wall time (s) | tokens/s | eval (s) |\n|:---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < N_RUNS; i++)
        ssmlm_text_printf(&t, "| %s | %llu | %lld | %.1f | %.0f | %.1f |\n", runs[i].name, (unsigned long long)runs[i].seed,
                          (long long)runs[i].tr.tokens, runs[i].tr.res.seconds, runs[i].tr.res.tokens_per_s,
                          runs[i].eval_seconds);
    ssmlm_text_printf(&t, "\nWhole experiment: %.1f s (threads: %d).\n\n", wall, ssmlm_get_threads());

    ssmlm_text_printf(&t, "## Learning curves\n\nMean training loss of the seed-%llu runs over each quarter of the steps "
                          "(the same batches for every model, each new to it: paired held-out estimates on %lld tokens per "
                          "quarter); `training_loss.svg` plots them over 20 windows.\n\n"
                          "| attention | 1st quarter | 2nd quarter | 3rd quarter | 4th quarter |\n|---:|---:|---:|---:|---:|\n",
                      (unsigned long long)o->seed, (long long)(pl->steps * pl->rows * pl->T / 4));
    for (int p = 0; p < REPRO_RATIO_POINTS; p++)
        ssmlm_text_printf(&t, "| %.1f%% | %.4f | %.4f | %.4f | %.4f |\n", pct(&runs[p]), runs[p].quarter[0], runs[p].quarter[1],
                          runs[p].quarter[2], runs[p].quarter[3]);
    ssmlm_text_printf(&t, "\n");

    ssmlm_text_printf(&t, "## Findings\n\n");
    ssmlm_text_printf(&t,
                      "**Rule** (fixed before the runs): the finding \"lowest loss near ~8%% attention\" reproduces when "
                      "(a) the lowest seed-%llu validation loss is at 4.2%%, 8.3%% or 16.7%% attention (1, 2 or 4 of 24 "
                      "layers), and (b) it is lower than the pure Mamba-2 model's (0%%) by more than the noise margin "
                      "2 sigma.\n\n",
                      (unsigned long long)o->seed);
    ssmlm_text_printf(&t, "- lowest loss: %.4f at %.1f%% attention (%lld of %d layers)%s\n", best->val.all, pct(best),
                      (long long)best->n_attn, REPRO_RATIO_LAYERS, v->near8 ? ": (a) holds" : ": (a) fails");
    ssmlm_text_printf(&t, "- 0%% minus lowest: %.4f; noise margin 2 sigma = %.4f%s\n", v->gain0, v->margin,
                      v->helps ? ": (b) holds" : ": (b) fails");
    ssmlm_text_printf(&t, "- 50%% minus lowest: %+.4f\n", runs[REPRO_RATIO_POINTS - 1].val.all - best->val.all);
    ssmlm_text_printf(&t, "- within the margin of the lowest:");
    for (int p = 0; p < REPRO_RATIO_POINTS; p++)
        if (runs[p].val.all - best->val.all <= v->margin) ssmlm_text_printf(&t, " %.1f%%", pct(&runs[p]));
    ssmlm_text_printf(&t, "\n- lowest loss by part:");
    for (int k = 0; k < REPRO_MIX_KINDS; k++)
        ssmlm_text_printf(&t, " %s %.1f%%,", repro_mix_kind_name(k), pct(&runs[v->argmin_kind[k]]));
    ssmlm_text_printf(&t, " recall tokens %.1f%%, other tokens %.1f%%\n", pct(&runs[v->argmin_recall]),
                      pct(&runs[v->argmin_other]));
    ssmlm_text_printf(&t, "- lowest mean training loss by quarter of the run: %.1f%%, %.1f%%, %.1f%%, %.1f%%\n\n",
                      pct(&runs[v->argmin_quarter[0]]), pct(&runs[v->argmin_quarter[1]]), pct(&runs[v->argmin_quarter[2]]),
                      pct(&runs[v->argmin_quarter[3]]));
    ssmlm_text_printf(&t, "How firm is it (computed from the same numbers):\n\n");
    ssmlm_text_printf(&t, "- sigma rests on %d pairs; its 95%% upper bound is %.4f, and with it (b) %s (margin %.4f)\n", v->n_pairs,
                      v->sigma95, v->helps95 ? "still holds" : "fails", 2 * v->sigma95);
    ssmlm_text_printf(&t, "- the 50%% model is %s the margin of the lowest%s\n", v->flat ? "within" : "outside",
                      v->flat ? ": beyond a few attention layers the curve is flat within noise" : "");
    ssmlm_text_printf(&t, "- the larger paired estimate (4th-quarter training loss) is lowest at %.1f%% attention%s\n",
                      pct(&runs[v->argmin_quarter[3]]), v->train_agrees ? ", also within 4-17%" : ", outside 4-17%");
    ssmlm_text_printf(&t,
                      "- in-context copying %s: the lowest copy-document loss is %.4f, against about ln 64 = %.4f for a model "
                      "that does not recall the copy and about half that for one that does\n\n",
                      v->copies ? "is learned" : "is not learned by any model", v->copy_best, log(64.0));
    ssmlm_text_printf(&t, "**Verdict: %s%s.** %s\n", v->reproduced ? "reproduced" : "not reproduced",
                      v->reproduced && !v->robust ? " (weakly: see the checks above)" : "",
                      v->reproduced ? "A few attention layers lower the validation loss by more than seed noise, and the "
                                      "lowest loss lies near 8% attention, as in the paper."
                      : !v->helps ? "The lowest loss is not lower than the pure Mamba-2 model's by more than seed noise "
                                    "at this scale and budget."
                                  : "Attention layers lower the loss by more than seed noise, but the lowest loss lies "
                                    "outside 4-17% attention.");
    ssmlm_status s = repro_text_save(&t, o->out_dir, "report.md");
    ssmlm_text_free(&t);
    return s;
}

ssmlm_status ssmlm_reproduce_attention_ratio(const ssmlm_repro_options *o) {
    ssmlm_status s = SSMLM_OK;
    ratio_plan pl;
    ratio_plan_make(o, &pl);
    repro_mix train = {0}, val = {0};
    ratio_run *runs = calloc(N_RUNS, sizeof *runs);
    ssmlm_text table = {0};
    double t0 = ssmlm_time();
    if (!runs) return ssmlm_fail(SSMLM_ERR_MEMORY, NULL, "attention-ratio: out of memory");
    if ((s = ssmlm_mkdir_p(o->out_dir)) != SSMLM_OK) goto done;
    /* training documents 0, 1, ...; validation documents from index 2^40 on (never trained on) */
    if ((s = repro_mix_build(o->seed, 0, pl.T + 1, 1, pl.steps * pl.rows * pl.T + pl.T, &train)) != SSMLM_OK) goto done;
    if ((s = repro_mix_build(o->seed, (int64_t)1 << 40, pl.T + 1, pl.val_docs, 0, &val)) != SSMLM_OK) goto done;
    for (int i = 0; i < N_RUNS; i++) {
        ratio_run *r = &runs[i];
        r->point = i < REPRO_RATIO_POINTS ? i : k_repeat_points[i - REPRO_RATIO_POINTS];
        r->seed = i < REPRO_RATIO_POINTS ? o->seed : o->seed + 1;
        if ((s = repro_ratio_config(repro_ratio_points[r->point], &r->cfg)) != SSMLM_OK) goto done;
        for (const char *p = r->cfg.pattern; *p; p++) r->n_attn += *p == '*';
        snprintf(r->name, sizeof r->name, "attn%02lldof%d-seed%llu", (long long)r->n_attn, REPRO_RATIO_LAYERS,
                 (unsigned long long)r->seed);
    }
    int64_t tok_done = 0, tok_all = N_RUNS * pl.steps * pl.rows * pl.T;
    for (int i = 0; i < N_RUNS; i++) {
        ratio_run *r = &runs[i];
        if (!o->quiet) {
            double el = ssmlm_time() - t0;
            char eta[32] = "--";
            if (tok_done > 0) ssmlm_progress_format_duration(eta, sizeof eta, el / (double)tok_done * (double)(tok_all - tok_done));
            fprintf(stderr, "[%d/%d] attention %.1f%% (%lld of %d layers), seed %llu; experiment ETA %s\n", i + 1, N_RUNS,
                    pct(r), (long long)r->n_attn, REPRO_RATIO_LAYERS, (unsigned long long)r->seed, eta);
        }
        repro_train_spec spec = {.name = r->name, .steps = pl.steps, .batch_rows = pl.rows, .seq_len = pl.T,
                                 .lr = pl.lr, .min_lr = pl.min_lr, .warmup = pl.warmup, .weight_decay = -1,
                                 .val_fraction = 0, .seed = r->seed};
        ssmlm_model *m = NULL;
        if ((s = repro_train(o, &r->cfg, train.docs, &spec, &m, &r->tr)) != SSMLM_OK) goto done;
        if ((s = run_curve(o, r, pl.steps)) != SSMLM_OK) {
            ssmlm_model_free(m);
            goto done;
        }
        double te = ssmlm_time();
        s = repro_mix_eval(m, &val, pl.T, pl.eval_rows, &r->val);
        r->eval_seconds = ssmlm_time() - te;
        ssmlm_model_free(m);
        if (s != SSMLM_OK) {
            ssmlm_error_context("evaluating %s", r->name);
            goto done;
        }
        tok_done += r->tr.tokens;
        if (!o->quiet)
            fprintf(stderr, "%s: validation loss %.4f (story %.4f, recall tokens %.4f), %.0f tokens/s\n", r->name, r->val.all,
                    r->val.kind[REPRO_MIX_STORY], r->val.recall, r->tr.res.tokens_per_s);
    }
    ratio_verdict v;
    verdict_make(runs, &v);
    table_write(&table, runs);
    if ((s = repro_text_save(&table, o->out_dir, "table.md")) != SSMLM_OK) goto done;
    if ((s = results_json(o, &pl, runs, &v, &train, &val)) != SSMLM_OK) goto done;
    if ((s = plots_write(o, runs)) != SSMLM_OK) goto done;
    if ((s = report_write(o, &pl, runs, &v, &train, &val, ssmlm_time() - t0, &table)) != SSMLM_OK) goto done;
    printf("%s\nlowest loss near ~8%% attention: %s (rule in %s/report.md)\n", table.s ? table.s : "",
           !v.reproduced ? "not reproduced" : v.robust ? "reproduced" : "reproduced, weakly", o->out_dir);
    fflush(stdout);
done:
    ssmlm_text_free(&table);
    repro_mix_free(&train);
    repro_mix_free(&val);
    free(runs);
    return s;
}
